"""The tables: raw inbox, subscriptions, tickets and their messages, stored decisions,
and the outbox. Alembic (``migrations/``) owns the schema; these models describe it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailgate.db.base import Base, CleanString, CleanText, JSONType, UTCDateTime


class InboxItem(Base):
    """One raw message exactly as received, committed before anything else happens."""

    __tablename__ = "inbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(CleanString(16))  # smtp | imap | pipe
    origin: Mapped[str | None] = mapped_column(CleanString(255))  # peer address, mailbox, file
    # Message-ID when the message has one, else "sha256:<hex of the raw bytes>".
    dedupe_key: Mapped[str] = mapped_column(CleanString(255), unique=True)
    message_id: Mapped[str | None] = mapped_column(CleanString(998))
    sha256: Mapped[str] = mapped_column(CleanString(64))
    size: Mapped[int] = mapped_column(Integer)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    envelope_from: Mapped[str | None] = mapped_column(CleanString(998))
    envelope_to: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # pending -> processing -> done | quarantined
    status: Mapped[str] = mapped_column(CleanString(16), default="pending", index=True)
    outcome: Mapped[str | None] = mapped_column(CleanString(32))
    reason: Mapped[str | None] = mapped_column(CleanString(64))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    error: Mapped[str | None] = mapped_column(CleanText)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(CleanString(128))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Subscription(Base):
    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(CleanString(64), primary_key=True)
    organization: Mapped[str] = mapped_column(CleanString(255))
    tier: Mapped[str] = mapped_column(CleanString(16))  # standard | premier (P-TIER)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    # Registered non-production environments (P-PREM-NONPROD: at most 2 for Premier).
    nonprod_environments: Mapped[list[str]] = mapped_column(JSONType, default=list)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    contacts: Mapped[list[SubscriptionContact]] = relationship(
        back_populates="subscription",
        cascade="all, delete-orphan",
        order_by="SubscriptionContact.id",
    )


class SubscriptionContact(Base):
    """A registered administrator contact: a whole address, or ``@domain`` for a domain."""

    __tablename__ = "subscription_contacts"
    __table_args__ = (UniqueConstraint("subscription_id", "pattern"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    pattern: Mapped[str] = mapped_column(CleanString(320), index=True)  # lower-cased

    subscription: Mapped[Subscription] = relationship(back_populates="contacts")


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Public form, e.g. IREX-000123; set from the row id within the creating transaction.
    public_id: Mapped[str | None] = mapped_column(CleanString(32), unique=True)
    subscription_id: Mapped[str | None] = mapped_column(ForeignKey("subscriptions.id"))
    tier: Mapped[str] = mapped_column(CleanString(16))
    severity: Mapped[int] = mapped_column(Integer)
    # How the level was set: tag | default (R-NOTAG) | capped (R-NONPROD) | engineer
    severity_source: Mapped[str] = mapped_column(CleanString(16))
    environment: Mapped[str | None] = mapped_column(CleanString(32))
    production: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(CleanString(16), default="open")  # open|waiting|resolved
    requester: Mapped[str] = mapped_column(CleanString(320), index=True)
    requester_name: Mapped[str | None] = mapped_column(CleanString(255))
    subject: Mapped[str] = mapped_column(CleanText)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    first_response_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    assignee: Mapped[str | None] = mapped_column(CleanString(320))
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # The SLA scheduler's indexed work list: the next instant this ticket needs a look.
    next_check_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    messages: Mapped[list[Message]] = relationship(
        back_populates="ticket", order_by="Message.id", cascade="all, delete-orphan"
    )


class Message(Base):
    """A message in a ticket's conversation, inbound or outbound, public or internal."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"))
    direction: Mapped[str] = mapped_column(CleanString(8))  # in | out
    # request | reply | auto_reply | engineer_reply | internal_note | ack | relay | ...
    kind: Mapped[str] = mapped_column(CleanString(24))
    # The RFC 5322 Message-ID (without angle brackets): threading looks these up.
    message_id: Mapped[str | None] = mapped_column(CleanString(998), index=True)
    author: Mapped[str | None] = mapped_column(CleanString(320))
    subject: Mapped[str | None] = mapped_column(CleanText)
    body_text: Mapped[str] = mapped_column(CleanText, default="")
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship(back_populates="messages")

    __table_args__ = (Index("ix_messages_ticket_id_id", "ticket_id", "id"),)


class Decision(Base):
    """How one inbound message was classified: the outcome and every rule's verdict.

    "Why was this rejected?" is answered from here, not from logs.
    """

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inbox.id"), unique=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    outcome: Mapped[str] = mapped_column(CleanString(32), index=True)
    reason: Mapped[str | None] = mapped_column(CleanString(64), index=True)
    sender: Mapped[str | None] = mapped_column(CleanString(320), index=True)
    subject: Mapped[str | None] = mapped_column(CleanText)
    subscription_id: Mapped[str | None] = mapped_column(CleanString(64))
    record: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class OutboxMessage(Base):
    """A fully composed outgoing message waiting for (or past) delivery."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    # ack | rejection | relay | notification | receipt | escalation | digest | error
    kind: Mapped[str] = mapped_column(CleanString(24), index=True)
    # One row per purpose: e.g. "ack:<inbox id>". A replayed message queues nothing new.
    dedupe_key: Mapped[str] = mapped_column(CleanString(255), unique=True)
    message_id: Mapped[str] = mapped_column(CleanString(998), unique=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # Indexed: the daily refusal limit counts a sender's refusals through it.
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"), index=True)
    mail_from: Mapped[str] = mapped_column(CleanString(320))
    recipients: Mapped[list[str]] = mapped_column(JSONType)
    subject: Mapped[str] = mapped_column(CleanText)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    # pending -> sent | failed (gave up) | suppressed (recorded, deliberately not sent)
    state: Mapped[str] = mapped_column(CleanString(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(CleanText)
    lease_owner: Mapped[str | None] = mapped_column(CleanString(128))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),)


class OutboxAttempt(Base):
    __tablename__ = "outbox_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ok: Mapped[bool] = mapped_column(Boolean)
    transport: Mapped[str] = mapped_column(CleanString(16))
    error: Mapped[str | None] = mapped_column(CleanText)
    owner: Mapped[str | None] = mapped_column(CleanString(128))


class Escalation(Base):
    """One escalation threshold of one ticket, sent exactly once.

    The unique (ticket, threshold) pair is what makes several gateway processes on one
    database send each warning once: the first to insert the row sends it.
    """

    __tablename__ = "escalations"
    __table_args__ = (UniqueConstraint("ticket_id", "threshold"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    threshold: Mapped[str] = mapped_column(CleanString(32))  # e.g. "50%", "80%", "breach"
    fraction: Mapped[float] = mapped_column(Float)
    severity: Mapped[int] = mapped_column(Integer)  # the level when it fell due
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recipients: Mapped[list[str]] = mapped_column(JSONType, default=list)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))


class DigestRun(Base):
    """A manager digest that was produced; the unique period key makes it once per period."""

    __tablename__ = "digest_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    period_key: Mapped[str] = mapped_column(CleanString(64), unique=True)
    ran_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))


class ImapCursor(Base):
    """Where the IMAP poller stopped in one mailbox folder (RFC 3501 UIDVALIDITY + UID)."""

    __tablename__ = "imap_cursors"
    __table_args__ = (UniqueConstraint("account", "folder"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(CleanString(128))
    folder: Mapped[str] = mapped_column(CleanString(255))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Counter(Base):
    """A named number handed out once each: ``ticket`` numbers the public ticket IDs.

    Taken in a transaction of its own before a ticket's acknowledgement is rendered, so
    the ticket's write transaction holds the database (SQLite's single write lock) only
    for its inserts. A number taken by a message that then fails is not reused.
    """

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(CleanString(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
