"""The shared vocabulary: a parsed mail, the policy's reason codes, and processing outcomes."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Callable, Mapping
from dataclasses import FrozenInstanceError, dataclass
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


def ascii_domain(addr: str) -> str:
    """``addr`` with a non-ASCII domain in its IDNA form (``admin@xn--bcher-kva.example``
    for ``admin@bücher.example``), which every relay and mailbox accepts; left as it is
    when the domain is ASCII or has no IDNA form. Only a non-ASCII local part then still
    needs SMTPUTF8 (RFC 6531)."""
    local, at, domain = addr.rpartition("@")
    if not at or domain.isascii():
        return addr
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:  # empty or over-long labels: no ASCII form
        return addr


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


class Attachment:
    """One attached file. ``data`` is the decoded content: given to the constructor, or,
    for ``Attachment.deferred``, decoded on first access and then kept. The parser defers
    it: most attachments are only listed, and decoding each one is wasted work.

    Immutable like the other values here; equal when all five fields are."""

    __slots__ = ("_data", "_load", "content_id", "content_type", "filename", "inline")

    filename: str | None
    content_type: str
    inline: bool
    content_id: str | None
    _data: bytes | None
    _load: Callable[[], bytes] | None

    def __init__(
        self,
        filename: str | None,
        content_type: str,
        data: bytes,
        inline: bool = False,
        content_id: str | None = None,
    ) -> None:
        init = object.__setattr__  # the fields cannot be assigned after this
        init(self, "filename", filename)
        init(self, "content_type", content_type)
        init(self, "inline", inline)
        init(self, "content_id", content_id)
        init(self, "_data", data)
        init(self, "_load", None)

    @classmethod
    def deferred(
        cls,
        filename: str | None,
        content_type: str,
        load: Callable[[], bytes],
        *,
        inline: bool = False,
        content_id: str | None = None,
    ) -> Attachment:
        """An attachment whose ``data`` is ``load()``, called on first access only."""
        att = cls(filename, content_type, b"", inline=inline, content_id=content_id)
        object.__setattr__(att, "_data", None)
        object.__setattr__(att, "_load", load)
        return att

    @property
    def data(self) -> bytes:
        if self._data is None:
            load = self._load
            if load is not None:  # None: another thread has just stored the data
                object.__setattr__(self, "_data", load())
                # Dropped after the data is stored, so a reader sees one or the other.
                object.__setattr__(self, "_load", None)
        assert self._data is not None
        return self._data

    @property
    def size(self) -> int:
        return len(self.data)

    def _fields(self) -> tuple[object, ...]:
        return (self.filename, self.content_type, self.data, self.inline, self.content_id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Attachment):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:  # without the data, which may be large (or not decoded yet)
        return (
            f"Attachment(filename={self.filename!r}, content_type={self.content_type!r}, "
            f"inline={self.inline!r}, content_id={self.content_id!r})"
        )

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[object, ...]:  # copy and pickle: a plain, decoded copy
        return (Attachment, self._fields())


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
