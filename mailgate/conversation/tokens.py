"""Signed reply addresses: ``support+IREX-000123.k3j5m2q9xa@irex.example``.

The signature is an HMAC-SHA256 of the ticket ID under the configured secret, so a
reply address cannot be made up for someone else's ticket. Every mail mailgate sends
about a ticket carries it in Reply-To; replies come back to it whatever the client does
with the threading headers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

_SIG_LEN = 10


def load_secret(secret: str, env: str | None, secret_file: Path) -> bytes:
    if env:
        return os.environ[env].encode()
    if secret:
        return secret.encode()
    try:
        return secret_file.read_bytes().strip()
    except FileNotFoundError:
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_hex(32).encode()
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(value)
        return value


@dataclass(frozen=True)
class TokenParts:
    ticket: str
    kind: str  # "support" or "comment": which base address it was sent to


class ReplyTokens:
    def __init__(self, secret: bytes, support_address: str, comment_address: str = "") -> None:
        self.secret = secret
        self.support_local, _, self.support_domain = support_address.lower().rpartition("@")
        self.comment_local, _, self.comment_domain = comment_address.lower().rpartition("@")
        self._re = re.compile(
            r"^(?P<local>[^+@]+)\+(?P<ticket>[A-Za-z]+-?\d+)\.(?P<sig>[a-z2-7]+)@"
            r"(?P<domain>.+)$",
            re.IGNORECASE,
        )

    def signature(self, ticket: str) -> str:
        digest = hmac.new(self.secret, ticket.upper().encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode().lower()[:_SIG_LEN]

    def address(self, ticket: str, *, comment: bool = False) -> str:
        local, domain = (
            (self.comment_local, self.comment_domain)
            if comment and self.comment_local
            else (self.support_local, self.support_domain)
        )
        return f"{local}+{ticket.upper()}.{self.signature(ticket)}@{domain}"

    def parse(self, address: str) -> TokenParts | None:
        """The ticket of a validly signed reply address, else None."""
        m = self._re.match(address.strip().lower())
        if not m:
            return None
        ticket = m.group("ticket").upper()
        if not hmac.compare_digest(m.group("sig"), self.signature(ticket)):
            return None
        local, domain = m.group("local"), m.group("domain")
        if local == self.support_local and domain == self.support_domain:
            return TokenParts(ticket, "support")
        if self.comment_local and local == self.comment_local and domain == self.comment_domain:
            return TokenParts(ticket, "comment")
        return None

    def is_comment_address(self, address: str) -> bool:
        if not self.comment_local:
            return False
        local, _, domain = address.lower().rpartition("@")
        return local.split("+", 1)[0] == self.comment_local and domain == self.comment_domain
