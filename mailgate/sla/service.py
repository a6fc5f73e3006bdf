"""Changes to a ticket that move its SLA clock: first response, level, tier and status.

Each function takes the caller's session (it never opens one or commits), changes the
ticket and keeps its scheduler entry right: ``due_at`` is always recomputed from the
ORIGINAL ``received_at`` (R-ACK: the clock started when the request was accepted, and a
new level does not restart it), and ``next_check_at`` points at the next escalation
threshold not yet sent, or is NULL when nothing is to be watched.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from sqlalchemy.orm import Session

from mailgate.db.models import Message, Ticket
from mailgate.sla.deadlines import response_due
from mailgate.sla.escalation import schedule
from mailgate.sla.settings import LEVELS, TIERS

if TYPE_CHECKING:
    from mailgate.app import App

STATUSES: Final = ("open", "waiting", "resolved")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime, name: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got {value.isoformat()}")
    return value.astimezone(dt.UTC)


def schedule_ticket(session: Session | None, ticket: Ticket, app: App) -> dt.datetime | None:
    """(Re)compute ``due_at`` and ``next_check_at``; call it when a ticket is created.

    Returns the new ``next_check_at``. A threshold already sent (an ``Escalation`` row)
    is never scheduled again; a ticket not written yet has none, and needs no session.
    """
    return schedule(session, ticket, app.calendar, app.settings.escalation)


def record_first_response(session: Session, ticket: Ticket, at: dt.datetime) -> bool:
    """R-ACK: the first public reply from an engineer stops the clock, once.

    Sets ``first_response_at`` unless it is set already (then returns False and changes
    nothing) and takes the ticket off the escalation work list. The automatic
    acknowledgement is not a response and must not be recorded here.
    """
    at = _aware(at, "at")
    if ticket.first_response_at is not None:
        return False
    if at < ticket.received_at:
        raise ValueError(
            f"a response at {at.isoformat()} cannot precede the request "
            f"({ticket.received_at.isoformat()})"
        )
    ticket.first_response_at = at
    ticket.next_check_at = None
    ticket.updated_at = at
    session.flush()
    return True


def change_level(
    session: Session,
    ticket: Ticket,
    level: int,
    app: App,
    now: dt.datetime | None = None,
    *,
    source: str = "engineer",
) -> bool:
    """R-NOTAG: an engineer raises or lowers the level. The deadline and the thresholds
    are recomputed from the original ``received_at``; False if the level is unchanged."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; use 1, 2, 3 or 4")
    if ticket.severity == level:
        return False
    ticket.severity = level
    ticket.severity_source = source
    ticket.updated_at = _aware(now or _utcnow(), "now")
    schedule_ticket(session, ticket, app)
    session.flush()
    return True


def change_tier(
    session: Session, ticket: Ticket, tier: str, app: App, now: dt.datetime | None = None
) -> bool:
    """P-TIER: the ticket's tier changes (e.g. Premier agreed while it is open); deadline
    and thresholds recomputed from the original ``received_at``."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; use {' or '.join(TIERS)}")
    if ticket.tier == tier:
        return False
    ticket.tier = tier
    ticket.updated_at = _aware(now or _utcnow(), "now")
    schedule_ticket(session, ticket, app)
    session.flush()
    return True


def set_status(
    session: Session, ticket: Ticket, status: str, app: App, now: dt.datetime | None = None
) -> bool:
    """``waiting`` and ``resolved`` stop escalations; ``open`` (reopening) schedules them
    again. The clock itself only stops at the first response (R-ACK): a ticket reopened
    unanswered gets, at once, the thresholds that fell due while it was not watched."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; use {', '.join(STATUSES)}")
    if ticket.status == status:
        return False
    now = _aware(now or _utcnow(), "now")
    ticket.status = status
    ticket.resolved_at = now if status == "resolved" else None
    ticket.updated_at = now
    schedule_ticket(session, ticket, app)
    session.flush()
    return True


@dataclass(frozen=True)
class ResponseTime:
    """How long a first response took, in covered time, against the target (R-ACK)."""

    received_at: dt.datetime
    responded_at: dt.datetime
    due_at: dt.datetime
    covered: dt.timedelta

    @property
    def in_time(self) -> bool:
        return self.responded_at <= self.due_at


def response_time(ticket: Ticket, app: App) -> ResponseTime | None:
    """The covered time from receipt to the first response; None if unanswered."""
    if ticket.first_response_at is None:
        return None
    sla = app.settings.sla
    weekend = sla.weekend_covered(ticket.tier, ticket.severity)
    return ResponseTime(
        received_at=ticket.received_at,
        responded_at=ticket.first_response_at,
        due_at=ticket.due_at
        or response_due(ticket.received_at, ticket.tier, ticket.severity, app.calendar),
        covered=app.calendar.covered_between(
            ticket.received_at, ticket.first_response_at, weekend=weekend
        ),
    )


def respond_by_hand(
    session: Session, ticket: Ticket, app: App, at: dt.datetime, *, by: str | None = None
) -> bool:
    """``mailgate tickets respond``: record the first response by hand (an engineer
    answered outside the gateway, e.g. by phone), with an internal note saying so."""
    if not record_first_response(session, ticket, at):
        return False
    session.add(
        Message(
            ticket_id=ticket.id,
            direction="out",
            kind="internal_note",
            author=by,
            subject=None,
            body_text=f"First response recorded by hand at {at.astimezone(dt.UTC).isoformat()}"
            + (f" by {by}" if by else "")
            + " (R-ACK: the response clock stops here).",
            public=False,
            created_at=at,
        )
    )
    session.flush()
    return True
