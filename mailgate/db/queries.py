"""Query functions. Each takes a session; none opens one."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from mailgate.db.models import (
    Counter,
    Decision,
    InboxItem,
    OutboxMessage,
    Ticket,
)
from mailgate.mail.compose import Outgoing
from mailgate.model import Outcome


def refusals_sent_since(
    session: Session, senders: Sequence[str], since: dt.datetime
) -> dict[str, int]:
    """Refusal mails queued (not suppressed) to each of ``senders`` since ``since``, in
    one statement (a sender with none is left out)."""
    if not senders:
        return {}
    # ``kind || ''``: not by ix_outbox_kind. SQLite's planner, without statistics, would
    # otherwise start from every refusal ever queued instead of the sender's decisions.
    rows = session.execute(
        select(Decision.sender, func.count(OutboxMessage.id))
        .join(OutboxMessage, OutboxMessage.decision_id == Decision.id)
        .where(
            Decision.sender.in_(senders),
            (OutboxMessage.kind + "") == "rejection",
            OutboxMessage.state != "suppressed",
            OutboxMessage.created_at >= since,
        )
        .group_by(Decision.sender)
    )
    return {sender: count for sender, count in rows if sender is not None}


def claim_inbox_items(
    session: Session, ids: Sequence[int], owner: str, now: dt.datetime, lease: dt.timedelta
) -> Sequence[Row[int, bytes, dt.datetime, str | None, list[str], str]]:
    """Atomically take inbox items for processing (pending, or a lapsed claim), in one
    statement; returns what processing needs of the ones taken (id, raw bytes, receipt
    time, envelope, source). Items done already or held by a live claim are left out."""
    if not ids:
        return []
    return session.execute(
        update(InboxItem)
        .where(
            InboxItem.id.in_(ids),
            or_(
                InboxItem.status == "pending",
                (InboxItem.status == "processing") & (InboxItem.claimed_until < now),
            ),
        )
        .values(
            status="processing",
            claimed_by=owner,
            claimed_until=now + lease,
            attempts=InboxItem.attempts + 1,
        )
        .returning(
            InboxItem.id,
            InboxItem.raw,
            InboxItem.received_at,
            InboxItem.envelope_from,
            InboxItem.envelope_to,
            InboxItem.source,
        )
        .execution_options(synchronize_session=False)
    ).all()


MAX_CLAIMS = 3  # claims of an item whose processor died before it is quarantined


def release_dead_claims(session: Session, host: str) -> int:
    """Put back to pending the items claimed by processes of ``host`` that no longer
    run (claims are ``host:pid``): a killed ``poll --once`` or serve leaves its batch
    claimed, and waiting out the lease would delay that mail for minutes. A pid that
    was reused only makes the claim look alive, and the lease then decides."""
    owners = session.scalars(
        select(InboxItem.claimed_by)
        .where(
            InboxItem.status == "processing",
            InboxItem.claimed_by.startswith(f"{host}:", autoescape=True),
        )
        .distinct()
    ).all()
    dead = [o for o in owners if o is not None and not _pid_alive(o.rpartition(":")[2])]
    return release_claims(session, dead, "the process that was processing this message died")


def release_claims(
    session: Session, owners: Sequence[str], error: str, ids: Sequence[int] | None = None
) -> int:
    """Put back to pending the items (of ``ids``, or all) that ``owners`` claimed and
    will never finish; an item claimed ``MAX_CLAIMS`` times is quarantined with
    ``error`` instead, so a message that kills whoever processes it stops there.
    Returns how many were put back."""
    if not owners:
        return 0
    theirs = [InboxItem.status == "processing", InboxItem.claimed_by.in_(owners)]
    if ids is not None:
        theirs.append(InboxItem.id.in_(ids))
    session.execute(
        update(InboxItem)
        .where(*theirs, InboxItem.attempts >= MAX_CLAIMS)
        .values(
            status="quarantined", outcome=str(Outcome.QUARANTINED), error=error, claimed_until=None
        )
        .execution_options(synchronize_session=False)
    )
    result = session.execute(
        update(InboxItem)
        .where(*theirs)
        .values(status="pending", claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _pid_alive(pid: str) -> bool:
    if not pid.isdigit():
        return True  # not a claim of ours: leave it to its lease
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, run by another user
    return True


def pending_inbox_ids(session: Session, now: dt.datetime, limit: int = 500) -> list[int]:
    return list(
        session.scalars(
            select(InboxItem.id)
            .where(
                or_(
                    InboxItem.status == "pending",
                    (InboxItem.status == "processing") & (InboxItem.claimed_until < now),
                )
            )
            .order_by(InboxItem.id)
            .limit(limit)
        )
    )


def take_number(
    session: Session, name: str, start_after: ColumnElement[int], count: int = 1
) -> int:
    """Take the next ``count`` numbers of counter ``name``; returns the last. Only one
    statement: the row is created on first use (starting after ``start_after``), and
    incremented under its row lock on PostgreSQL or the write lock on SQLite, so
    concurrent processes never share a number."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(Counter)
        .values(name=name, value=select(start_after + count).scalar_subquery())
        .on_conflict_do_update(index_elements=[Counter.name], set_={"value": Counter.value + count})
        .returning(Counter.value)
    )
    return int(session.execute(statement).scalar_one())


def take_ticket_numbers(session: Session, count: int = 1) -> list[int]:
    """``count`` consecutive public ticket numbers, in ascending order."""
    last = take_number(session, "ticket", func.coalesce(func.max(Ticket.id), 0), count)
    return list(range(last - count + 1, last + 1))


def ticket_by_public_id(session: Session, public_id: str) -> Ticket | None:
    return session.scalar(select(Ticket).where(Ticket.public_id == public_id.upper()))


def outbox_values(
    out: Outgoing,
    dedupe_key: str,
    now: dt.datetime,
    ticket_id: int | None = None,
    decision_id: int | None = None,
    state: str = "pending",
) -> dict[str, Any]:
    """An outbox row for ``out``: due now when pending."""
    return {
        "kind": out.kind,
        "dedupe_key": dedupe_key,
        "message_id": out.message_id,
        "ticket_id": ticket_id,
        "decision_id": decision_id,
        "mail_from": out.mail_from,
        "recipients": list(out.recipients),
        "subject": out.subject,
        "raw": out.raw,
        "state": state,
        "attempts": 0,
        "next_attempt_at": now if state == "pending" else None,
        "created_at": now,
    }


def sent_message_values(
    ticket_id: int,
    out: Outgoing,
    *,
    kind: str,
    public: bool,
    author: str,
    now: dt.datetime,
    body: str = "",
) -> dict[str, Any]:
    """A ticket's conversation record of a mail it sent (acknowledgement, relay,
    notification, ...): the outbox row holds the mail itself."""
    return {
        "ticket_id": ticket_id,
        "inbox_id": None,
        "direction": "out",
        "kind": kind,
        "message_id": out.message_id,
        "author": author,
        "subject": out.subject,
        "body_text": body,
        "public": public,
        "created_at": now,
    }


def queue_outgoing(
    session: Session,
    out: Outgoing,
    *,
    dedupe_key: str,
    now: dt.datetime,
    ticket_id: int | None = None,
    decision_id: int | None = None,
    state: str = "pending",
) -> OutboxMessage:
    """Add an outgoing mail to the session."""
    row = OutboxMessage(**outbox_values(out, dedupe_key, now, ticket_id, decision_id, state))
    session.add(row)
    return row
