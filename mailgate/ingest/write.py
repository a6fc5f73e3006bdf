"""Writing classified new requests: their tickets, decision records, conversation
messages, outbox rows, and the inbox items marked done.

A group (up to ``pipeline.GROUP_LIMIT`` requests, rendered already) is written by one
transaction with one INSERT per table, each an executemany of plain values: the ORM's
unit of work cost about as much as classifying a message, and nothing here needs it (no
object is read back; ids come from ``RETURNING`` in the order the rows were given).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, insert, inspect
from sqlalchemy.orm import Session

from mailgate.app import App
from mailgate.conversation.replies import notification_rows
from mailgate.db import queries
from mailgate.db.models import Decision as DecisionRow
from mailgate.db.models import Message, OutboxMessage, Ticket
from mailgate.ingest.common import finish_inboxes
from mailgate.ingest.result import Result
from mailgate.mail.compose import Outgoing
from mailgate.model import Outcome, ParsedMail
from mailgate.policy.decide import Decision
from mailgate.policy.facts import Facts
from mailgate.policy.rules.subscription import resolve_subscription

_TICKETS: Table = Ticket.__table__  # type: ignore[assignment]
_DECISIONS: Table = DecisionRow.__table__  # type: ignore[assignment]
_MESSAGES: Table = Message.__table__  # type: ignore[assignment]
_OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]
_TICKET_COLUMNS = tuple(c.key for c in _TICKETS.columns if c.key != "id")


@dataclass
class Planned:
    """A new request, classified and not written yet."""

    inbox_id: int
    source: str
    mail: ParsedMail
    facts: Facts
    decision: Decision
    received_at: dt.datetime
    now: dt.datetime
    started: float = 0.0
    parent: Ticket | None = None  # the resolved ticket a late reply follows up


@dataclass
class Prepared:
    """A planned request with everything computed and rendered: only rows to write.
    ``ticket`` is a transient object holding the new ticket's values (never added to a
    session)."""

    planned: Planned
    ticket: Ticket | None = None
    ack: Outgoing | None = None
    notification: Outgoing | None = None
    refusal: Outgoing | None = None


def write_prepared(app: App, session: Session, prepared: list[Prepared]) -> dict[int, Result]:
    """Write every row of ``prepared`` in the caller's transaction; the results by inbox id."""
    conn = session.connection()
    tickets = [item.ticket for item in prepared if item.ticket is not None]
    ticket_ids = _insert(conn, _TICKETS, [_ticket_values(t) for t in tickets])
    for ticket, ticket_id in zip(tickets, ticket_ids, strict=True):
        ticket.id = ticket_id  # the transient object answers Result and the ack's rows
    decisions = [_decision_values(item) for item in prepared]
    decision_ids = _insert(conn, _DECISIONS, decisions)

    messages: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    refusals: dict[str, list[tuple[Planned, dict[str, Any]]]] = {}
    results: dict[int, Result] = {}
    finished: list[tuple[int, Outcome, dt.datetime, str | None, int | None]] = []
    for item, decision, decision_id in zip(prepared, decisions, decision_ids, strict=True):
        p, outcome = item.planned, _outcome(item)
        if item.ticket is not None:
            ticket_id = item.ticket.id
            assert item.ack is not None
            messages += _ticket_messages(app, item)
            outbox.append(
                queries.outbox_values(item.ack, f"ack:{p.inbox_id}", p.now, ticket_id, decision_id)
            )
            if item.notification is not None:
                rows = notification_rows(
                    app, ticket_id, item.notification, inbox_id=p.inbox_id, now=p.now
                )
                outbox.append(rows[0])
                messages.append(rows[1])
            results[p.inbox_id] = Result.for_ticket(
                p.inbox_id, outcome, item.ticket, p.mail.message_id
            )
            finished.append((p.inbox_id, outcome, p.now, None, ticket_id))
            continue
        reason = p.decision.reason or (None if outcome is Outcome.IGNORED else "rejected")
        if item.refusal is not None:
            row = queries.outbox_values(
                item.refusal, f"rejection:{p.inbox_id}", p.now, None, decision_id
            )
            outbox.append(row)
            if p.facts.sender:  # the limit counts by the decision's sender
                refusals.setdefault(p.facts.sender, []).append((p, row))
        rejected = outcome is Outcome.REJECTED
        sub_info, _ = resolve_subscription(p.facts)
        results[p.inbox_id] = Result(
            p.inbox_id,
            outcome,
            reason=reason,
            tier=sub_info.tier if sub_info and rejected else None,
            subscription=decision["subscription_id"] if rejected else None,
            message_id=p.mail.message_id,
        )
        finished.append((p.inbox_id, outcome, p.now, reason, None))
    if messages:
        conn.execute(insert(_MESSAGES), messages)
    # After the decisions are written: under SQLite's write lock, and counting this
    # group's refusals (queued just below) as sent.
    _apply_refusal_limit(app, session, refusals)
    if outbox:
        conn.execute(insert(_OUTBOX), outbox)
    finish_inboxes(session, finished)
    return results


def _insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` with one executemany; their new ids, in the order given."""
    if not rows:
        return []
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(conn.execute(statement, rows).scalars())


def _ticket_values(ticket: Ticket) -> dict[str, Any]:
    """The columns the transient ticket has values for; the others take their defaults."""
    state = inspect(ticket).dict
    return {key: state[key] for key in _TICKET_COLUMNS if key in state}


def _outcome(item: Prepared) -> Outcome:
    if item.ticket is not None:
        return Outcome.TICKET_CREATED
    return Outcome.IGNORED if item.planned.decision.outcome == "ignore" else Outcome.REJECTED


def _decision_values(item: Prepared) -> dict[str, Any]:
    p = item.planned
    sub_info, _ = resolve_subscription(p.facts)
    return {
        "inbox_id": p.inbox_id,
        "ticket_id": item.ticket.id if item.ticket is not None else None,
        "outcome": str(_outcome(item)),
        "reason": p.decision.reason,
        "sender": p.facts.sender,
        "subject": p.mail.subject[:2000],
        "subscription_id": sub_info.id if sub_info else p.facts.tags.subscription_id,
        "record": p.decision.record_json(),
        "created_at": p.now,
    }


def _ticket_messages(app: App, item: Prepared) -> list[dict[str, Any]]:
    """The request itself and the acknowledgement, as the ticket's first two messages."""
    p, ticket, ack = item.planned, item.ticket, item.ack
    assert ticket is not None and ack is not None and p.mail.sender is not None
    request = {
        "ticket_id": ticket.id,
        "inbox_id": p.inbox_id,
        "direction": "in",
        "kind": "request",
        "message_id": p.mail.message_id,
        "author": p.mail.sender.lower,
        "subject": p.mail.subject[:2000],
        "body_text": p.facts.own_text or p.mail.text,
        "public": True,
        "created_at": p.received_at,
    }
    support = app.settings.mail.support_address
    acknowledgement = queries.sent_message_values(
        ticket.id, ack, kind="ack", public=True, author=support, now=p.now
    )
    return [request, acknowledgement]


def _apply_refusal_limit(
    app: App, session: Session, refusals: dict[str, list[tuple[Planned, dict[str, Any]]]]
) -> None:
    """At most ``refusals_per_sender_per_day`` refusal mails per sender (policy-zone day);
    the rest are written to the outbox as ``suppressed``. Counted under the write lock
    (the group's decisions are written), with this group's refusals added: neither a
    group nor two processes can both send the day's last one. The latest ones are the
    ones held back."""
    limit = app.settings.policy.refusals_per_sender_per_day
    tz = ZoneInfo(app.settings.sla.timezone)
    by_day: dict[dt.datetime, list[str]] = {}  # one count per policy-zone day in the group
    for sender, rows in refusals.items():
        local = rows[-1][0].now.astimezone(tz)
        day_start = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
        by_day.setdefault(day_start, []).append(sender)
    for day_start, senders in by_day.items():
        sent = queries.refusals_sent_since(session, senders, day_start)
        for sender in senders:
            rows = refusals[sender]
            over = sent.get(sender, 0) + len(rows) - limit
            for _, row in rows[len(rows) - min(max(over, 0), len(rows)) :]:
                row["state"], row["next_attempt_at"] = "suppressed", None
