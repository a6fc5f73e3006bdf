"""The one way raw mail enters mailgate: commit the bytes to the inbox, unaltered.

Every intake (SMTP, IMAP, pipe) calls ``store_raw`` (or, for several messages at once,
``store_raw_batch``) and acknowledges its peer only after it returns. The inbox's unique
dedupe key (Message-ID, else a hash of the bytes) makes a second arrival of the same
message a duplicate, whichever intake it comes through.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from mailgate.db.engine import Database
from mailgate.db.models import InboxItem
from mailgate.errors import StoreError
from mailgate.mail.parse import header_message_id

_MAX_KEY = 250
# Built once: a statement built per message (``.values(row)``) cost more than its run.
_INSERT = insert(InboxItem).returning(InboxItem.id)
# For a batch in one transaction: a duplicate returns no row instead of failing the
# transaction (a savepoint around each insert would cost more than the commits saved).
_INSERT_NEW = {
    name: dialect.insert(InboxItem)
    .on_conflict_do_nothing(index_elements=[InboxItem.dedupe_key])
    .returning(InboxItem.id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}
_BY_KEY = select(InboxItem.id).where(InboxItem.dedupe_key == bindparam("key"))


@dataclass(frozen=True)
class Stored:
    inbox_id: int
    duplicate: bool


def dedupe_key(raw: bytes) -> tuple[str, str | None, str]:
    """(dedupe key, Message-ID, sha256 of the bytes)."""
    digest = hashlib.sha256(raw).hexdigest()
    try:
        message_id = header_message_id(raw)
    except Exception:  # a header block we cannot read still gets stored, by its hash
        message_id = None
    if message_id:
        key = f"mid:{message_id}"
        if len(key) > _MAX_KEY:
            key = "mid-sha256:" + hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()
        return key, message_id, digest
    return f"sha256:{digest}", None, digest


def store_raw(
    db: Database,
    raw: bytes,
    *,
    source: str,
    received_at: dt.datetime,
    origin: str | None = None,
    envelope_from: str | None = None,
    envelope_to: Sequence[str] = (),
) -> Stored:
    """Commit ``raw`` to the inbox; raises StoreError when it could not be committed."""
    row = _row(raw, source, received_at, origin, envelope_from, envelope_to)
    key = row["dedupe_key"]
    try:
        # A Core INSERT on a connection of its own: this runs for every message the
        # listener accepts, and the ORM's unit of work was a third of its cost.
        with db.engine.begin() as conn:
            inserted = conn.execute(_INSERT, row)
            return Stored(inserted.scalar_one(), duplicate=False)
    except IntegrityError:
        pass  # the same message is already stored: look it up below
    except SQLAlchemyError as exc:
        raise StoreError(f"could not store the message: {type(exc).__name__}: {exc}") from exc
    try:
        with db.transaction() as session:
            existing = session.scalar(select(InboxItem.id).where(InboxItem.dedupe_key == key))
    except SQLAlchemyError as exc:
        raise StoreError(f"could not check for a duplicate: {exc}") from exc
    if existing is None:
        raise StoreError("the message conflicted with a stored one that then vanished")
    return Stored(existing, duplicate=True)


@dataclass(frozen=True)
class Incoming:
    """One message for ``store_raw_batch``."""

    raw: bytes
    source: str
    received_at: dt.datetime
    origin: str | None = None


def store_raw_batch(db: Database, messages: Sequence[Incoming]) -> list[Stored]:
    """Commit ``messages`` to the inbox in one transaction, in order: all of them, or none
    (StoreError). A message already stored, or twice in the batch, is a duplicate.

    One commit instead of one per message: on PostgreSQL each commit waits for the write-
    ahead log to reach the disk, about a millisecond.
    """
    statement = _INSERT_NEW[db.dialect]  # config admits these two databases only
    stored: list[Stored] = []
    try:
        with db.engine.begin() as conn:
            for message in messages:
                row = _row(message.raw, message.source, message.received_at, message.origin)
                new = conn.execute(statement, row).scalar_one_or_none()
                if new is None:
                    existing = conn.execute(_BY_KEY, {"key": row["dedupe_key"]}).scalar_one()
                    stored.append(Stored(existing, duplicate=True))
                else:
                    stored.append(Stored(new, duplicate=False))
    except SQLAlchemyError as exc:
        raise StoreError(f"could not store the messages: {type(exc).__name__}: {exc}") from exc
    return stored


def _row(
    raw: bytes,
    source: str,
    received_at: dt.datetime,
    origin: str | None,
    envelope_from: str | None = None,
    envelope_to: Sequence[str] = (),
) -> dict[str, Any]:
    key, message_id, digest = dedupe_key(raw)
    return {
        "received_at": received_at,
        "source": source,
        "origin": origin,
        "dedupe_key": key,
        "message_id": message_id[:998] if message_id else None,
        "sha256": digest,
        "size": len(raw),
        "raw": raw,
        "envelope_from": envelope_from,
        "envelope_to": list(envelope_to),
        "status": "pending",
        "attempts": 0,
    }
