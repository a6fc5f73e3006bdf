"""The shared vocabulary: a parsed mail, the policy's reason codes, and processing outcomes."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Reason(StrEnum):
    """Reason codes from POLICY.md section 2 (and the automatic-mail guard)."""

    NON_ENGLISH = "non_english"  # P-OUT-LANG
    END_USER = "end_user"  # P-OUT-ENDUSER
    NO_SUBSCRIPTION = "no_subscription"  # P-OUT-SUB
    EXPIRED_SUBSCRIPTION = "expired_subscription"  # P-OUT-SUB
    NOT_STARTED_SUBSCRIPTION = "not_started_subscription"  # P-OUT-SUB (R-SUB)
    UNKNOWN_SUBSCRIPTION = "unknown_subscription"  # P-OUT-SUB
    DEVELOPMENT = "development"  # P-OUT-DEV
    THIRD_PARTY = "third_party"  # P-OUT-3P
    REMOTE_ADMIN = "remote_admin"  # P-OUT-REMOTE
    UNSUPPORTED_VERSION = "unsupported_version"  # P-OUT-VERSION
    PROFESSIONAL_SERVICES = "professional_services"  # P-OUT-PS
    HARDWARE = "hardware"  # P-HW
    AUTOMATIC = "automatic"  # RFC 3834: never answer an automatic message


class Outcome(StrEnum):
    """What happened to one inbound message (the ``outcome`` of ``mailgate ingest``)."""

    TICKET_CREATED = "ticket_created"
    REPLY_ADDED = "reply_added"
    REJECTED = "rejected"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"


_SPECIALS = re.compile(r'[][\\()<>@,:;".]')


@dataclass(frozen=True)
class Address:
    name: str
    addr: str

    @property
    def lower(self) -> str:
        return self.addr.lower()

    @property
    def domain(self) -> str:
        return self.addr.rpartition("@")[2].lower()

    def formatted(self) -> str:
        """``Name <addr>`` for a header, the name quoted when it holds a comma or another
        RFC 5322 special ("Dupont, Jean" is one person, not two addresses)."""
        if not self.name:
            return self.addr
        name = self.name
        if _SPECIALS.search(name):
            name = f'"{email.utils.quote(name)}"'
        return f"{name} <{self.addr}>"


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    data: bytes = field(repr=False)
    inline: bool = False
    content_id: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class ParsedMail:
    """One inbound message, parsed once; the raw bytes stay in the inbox beside it."""

    message_id: str | None
    subject: str
    from_: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    date: dt.datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]
    # Lower-cased header name -> decoded values, for the headers rules look at.
    headers: Mapping[str, tuple[str, ...]]
    content_type: str
    envelope_from: str | None = None
    envelope_to: tuple[str, ...] = ()
    defects: tuple[str, ...] = ()
    text_from_html: bool = False  # no text/plain part: ``text`` was made from the HTML

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def sender(self) -> Address | None:
        """Who the reply goes to: Reply-To when given, else From."""
        return self.reply_to[0] if self.reply_to else self.from_

    @property
    def recipients(self) -> tuple[Address, ...]:
        return self.to + self.cc
