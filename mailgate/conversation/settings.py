"""Settings for conversations: who the engineers are, the reply-address secret, reopening."""

from __future__ import annotations

import os
from dataclasses import dataclass

from mailgate.errors import ConfigValueError


@dataclass(frozen=True)
class ConversationSettings:
    # Engineers: addresses or whole domains ("@irex.example"). Their replies to ticket
    # mail are relayed to the customer; their command lines are applied.
    engineers: tuple[str, ...] = ()
    # Who is on duty: notified of every new ticket (and of customer replies on tickets
    # nobody is assigned to).
    on_duty: tuple[str, ...] = ()
    # Mail to this address (or its +token form) is an internal note, never relayed.
    comment_address: str = ""
    # Secret for the signed reply addresses (support+IREX-000123.<sig>@...). Set it (or
    # hmac_secret_env) when several gateway processes share a database; without either,
    # a random secret is created once in `secret_file`.
    hmac_secret: str = ""
    hmac_secret_env: str | None = None
    secret_file: str = "var/hmac.secret"
    # A customer reply to a ticket resolved at most this many days ago reopens it;
    # after that it opens a new ticket linked to the old one.
    reopen_days: int = 14
    # Require our own mail server's Authentication-Results header to show DKIM or SPF
    # "pass" for the engineer's domain before any command is applied.
    require_authentication: bool = False
    # The authserv-id our mail server writes in Authentication-Results (RFC 8601);
    # headers from anyone else are ignored, since senders can forge them.
    authserv_id: str = ""

    def __post_init__(self) -> None:
        for name in ("engineers", "on_duty"):
            for i, value in enumerate(getattr(self, name)):
                if "@" not in value or value.count("@") != 1:
                    raise ConfigValueError(f"{name}[{i}]", f"not an address or @domain: {value!r}")
        if self.comment_address and "@" not in self.comment_address:
            raise ConfigValueError("comment_address", "not an e-mail address")
        if self.reopen_days < 0:
            raise ConfigValueError("reopen_days", "must be 0 or more")
        if self.hmac_secret_env and self.hmac_secret_env not in os.environ:
            raise ConfigValueError(
                "hmac_secret_env", f"environment variable {self.hmac_secret_env} is not set"
            )
        if self.require_authentication and not self.authserv_id:
            raise ConfigValueError("authserv_id", "required when require_authentication is on")

    def is_engineer(self, address: str | None) -> bool:
        if not address:
            return False
        address = address.lower()
        domain = "@" + address.rpartition("@")[2]
        entries = {e.lower() for e in self.engineers}
        return address in entries or domain in entries
