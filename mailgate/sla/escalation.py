"""Escalations: warn the right people as a request's response time runs out (R-CLOCK, R-ACK).

A rule names a fraction of the response target (0.5, 0.8, 1.0 = breach; 0.0 = at once)
and who is told, optionally only for some tiers and levels. Each threshold is an instant
in covered time (:func:`mailgate.sla.deadlines.threshold_at`), so nothing falls due
while a ticket's clock is stopped: a Standard request's 80% never falls due at night
or on a weekend, and a Premier L1 "at once" rule for a request received on a weekday
night falls due when its clock starts (08:00), since weekday nights are covered for
nobody (R-CLOCK).

The scheduler (:func:`tick`) reads only tickets whose indexed ``next_check_at`` has
passed, so a pass costs in proportion to the due work, not to the open tickets. Per
ticket, in one transaction: claim it (a row lock, or SQLite's write lock), insert
one ``Escalation`` row per threshold that fell due and queue its mail, then move
``next_check_at`` to the next threshold instant (or NULL). The unique (ticket, threshold)
key makes each warning exactly once across processes; an IntegrityError on it means
another process sent it, and that ticket's work is rolled back and skipped.

This module also holds the ``[escalation]`` and ``[digest]`` settings sections.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailgate.db.models import Escalation, OutboxMessage, Subscription, Ticket
from mailgate.db.queries import queue_outgoing
from mailgate.errors import ConfigValueError
from mailgate.sla.calendar import CoverageCalendar
from mailgate.sla.deadlines import response_due, target_covered_time, threshold_at
from mailgate.sla.settings import LEVELS, TIERS, SlaSettings

if TYPE_CHECKING:
    from mailgate.app import App

log = logging.getLogger("mailgate.sla")

LEVEL_LABELS: Final = {1: "urgent", 2: "high", 3: "normal", 4: "low"}
TIER_LABELS: Final = {"standard": "Standard", "premier": "Premier"}
GROUPS: Final = ("oncall", "support_lead", "managers")
"""Recipient group names a rule (or the digest) may use instead of addresses."""


# ---------------------------------------------------------------------------- settings


def _check_address(name: str, value: str) -> None:
    _, addr = parseaddr(value)
    if not addr or "@" not in addr or addr != value.strip():
        raise ConfigValueError(name, f"not a plain e-mail address: {value!r}")


def _check_recipients(name: str, values: Sequence[str], *, allow_empty: bool = False) -> None:
    if not values and not allow_empty:
        raise ConfigValueError(name, "at least one recipient is needed")
    for i, value in enumerate(values):
        if value not in GROUPS:
            _check_address(f"{name}[{i}]", value)


def threshold_label(fraction: float) -> str:
    """The stored name of a threshold: ``immediate``, ``50%``, ``80%``, ``breach``, ``150%``."""
    if fraction == 0:
        return "immediate"
    if fraction == 1:
        return "breach"
    return f"{round(fraction * 100, 2):g}%"


@dataclass(frozen=True)
class EscalationRule:
    """``[[escalation.rules]]``: at ``fraction`` of the target, tell ``recipients``.

    ``recipients`` are addresses or the group names ``oncall``, ``support_lead`` and
    ``managers`` (defined in ``[escalation]``). ``tiers``/``levels`` limit the rule to
    some tickets; rules with the same fraction that match one ticket send one mail to
    all their recipients.
    """

    # Required: 0 = at once (when the clock starts), 0.5 = half the target, 1 = breach.
    fraction: float = -1.0
    recipients: tuple[str, ...] = ()
    tiers: tuple[str, ...] = TIERS
    levels: tuple[int, ...] = LEVELS

    def __post_init__(self) -> None:
        if self.fraction == -1.0:
            raise ConfigValueError("fraction", "is required (0 = at once, 0.5, 1 = breach)")
        if not (math.isfinite(self.fraction) and 0 <= self.fraction <= 10):
            raise ConfigValueError("fraction", f"must be between 0 and 10, got {self.fraction}")
        _check_recipients("recipients", self.recipients)
        for tier in self.tiers:
            if tier not in TIERS:
                raise ConfigValueError("tiers", f"unknown tier {tier!r}; use {' or '.join(TIERS)}")
        for level in self.levels:
            if level not in LEVELS:
                raise ConfigValueError("levels", f"level {level!r} is not 1, 2, 3 or 4")

    def applies(self, tier: str, level: int) -> bool:
        return tier in self.tiers and level in self.levels


DEFAULT_RULES: Final = (
    # Half the response time used: the engineers on duty.
    EscalationRule(fraction=0.5, recipients=("oncall",)),
    # 80%: the support lead.
    EscalationRule(fraction=0.8, recipients=("support_lead",)),
    # The deadline itself (breach): the managers.
    EscalationRule(fraction=1.0, recipients=("managers",)),
    # Premier L1 (production down, paid tier): the managers at once, i.e. when the
    # request's clock starts (R-CLOCK).
    EscalationRule(fraction=0.0, recipients=("managers",), tiers=("premier",), levels=(1,)),
)


@dataclass(frozen=True)
class EscalationSettings:
    """``[escalation]``: who is warned when, and how often ``serve`` looks."""

    enabled: bool = True
    # Seconds between scheduler passes in `serve`.
    interval: float = 60.0
    # Most tickets one pass handles; the rest wait for the next pass.
    max_per_pass: int = 5000
    # Display name on escalation mail (sent from mail.support_address).
    from_name: str = "IREX Support SLA"
    # Recipient groups, usable by name in rules and in [digest].recipients.
    oncall: tuple[str, ...] = ("oncall@irex.example",)
    support_lead: tuple[str, ...] = ("support-lead@irex.example",)
    managers: tuple[str, ...] = ("managers@irex.example",)
    rules: tuple[EscalationRule, ...] = DEFAULT_RULES

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ConfigValueError("interval", "must be greater than 0")
        if self.max_per_pass < 1:
            raise ConfigValueError("max_per_pass", "must be at least 1")
        for group in GROUPS:
            for i, addr in enumerate(getattr(self, group)):
                _check_address(f"{group}[{i}]", addr)
        labels: dict[str, float] = {}
        for i, rule in enumerate(self.rules):
            label = threshold_label(rule.fraction)
            if labels.setdefault(label, rule.fraction) != rule.fraction:
                raise ConfigValueError(
                    f"rules[{i}].fraction", f"too close to {labels[label]} (both read {label})"
                )

    def resolve(self, names: Iterable[str]) -> tuple[str, ...]:
        """Group names expanded to addresses; duplicates removed, order kept."""
        out: list[str] = []
        for name in names:
            for addr in getattr(self, name) if name in GROUPS else (name,):
                if addr.lower() not in (a.lower() for a in out):
                    out.append(addr)
        return tuple(out)


@dataclass(frozen=True)
class DigestSettings:
    """``[digest]``: the managers' daily SLA digest."""

    enabled: bool = True
    # Addresses or [escalation] group names.
    recipients: tuple[str, ...] = ("managers",)
    # Sent once a business day (P-COV-BD days, holidays excluded) at this local time in
    # the policy zone (R-TZ); a gateway started later that day sends it then.
    send_at: dt.time = dt.time(8, 0)
    # "At risk": open, unanswered, due within this many covered hours.
    at_risk_hours: float = 4.0
    # Attainment windows, in days before the digest.
    windows: tuple[int, ...] = (7, 30)
    # Most tickets listed in each section (the counts are always complete).
    list_limit: int = 25
    # Seconds between `serve`'s checks whether the digest is due.
    check_interval: float = 60.0

    def __post_init__(self) -> None:
        _check_recipients("recipients", self.recipients)
        if not 0 < self.at_risk_hours <= 24 * 14:
            raise ConfigValueError("at_risk_hours", "must be between 0 and 336")
        if not self.windows or any(d < 1 for d in self.windows):
            raise ConfigValueError("windows", "at least one window of 1 day or more")
        if self.list_limit < 1:
            raise ConfigValueError("list_limit", "must be at least 1")
        if self.check_interval <= 0:
            raise ConfigValueError("check_interval", "must be greater than 0")


# ---------------------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class Step:
    """One threshold of one ticket: when it falls due and who is told."""

    label: str
    fraction: float
    recipients: tuple[str, ...]  # resolved addresses
    at: dt.datetime


def steps_for(
    settings: EscalationSettings, tier: str, level: int
) -> list[tuple[str, float, tuple[str, ...]]]:
    """(label, fraction, addresses) of the rules matching ``tier``/``level``, by fraction."""
    merged: dict[float, list[str]] = {}
    for rule in settings.rules:
        if rule.applies(tier, level):
            merged.setdefault(rule.fraction, []).extend(rule.recipients)
    return [
        (threshold_label(fraction), fraction, settings.resolve(names))
        for fraction, names in sorted(merged.items())
    ]


def plan(
    received: dt.datetime,
    tier: str,
    level: int,
    calendar: CoverageCalendar,
    settings: EscalationSettings,
) -> list[Step]:
    """Every threshold of a request, each as an instant in covered time, in order."""
    return [
        Step(
            label,
            fraction,
            recipients,
            threshold_at(received, tier, level, fraction, calendar, calendar.settings),
        )
        for label, fraction, recipients in steps_for(settings, tier, level)
    ]


def needs_watch(ticket: Ticket) -> bool:
    """R-ACK: only open requests without a first public reply are escalated."""
    return ticket.status == "open" and ticket.first_response_at is None


def sent_labels(session: Session, ticket_id: int) -> set[str]:
    return set(
        session.scalars(select(Escalation.threshold).where(Escalation.ticket_id == ticket_id))
    )


def next_check(steps: Sequence[Step], sent: set[str]) -> dt.datetime | None:
    """The earliest threshold not sent yet (possibly past: the next pass sends it)."""
    return min((s.at for s in steps if s.label not in sent), default=None)


def schedule(
    session: Session | None,
    ticket: Ticket,
    calendar: CoverageCalendar,
    settings: EscalationSettings,
) -> dt.datetime | None:
    """Set ``due_at`` from the original ``received_at`` and ``next_check_at`` to the next
    unsent threshold (NULL for answered, waiting or resolved tickets). Idempotent."""
    ticket.due_at = response_due(ticket.received_at, ticket.tier, ticket.severity, calendar)
    if not needs_watch(ticket):
        ticket.next_check_at = None
        return None
    sent = (
        sent_labels(session, ticket.id)
        if session is not None and ticket.id is not None  # else nothing can have been sent
        else set()
    )
    steps = plan(ticket.received_at, ticket.tier, ticket.severity, calendar, settings)
    ticket.next_check_at = next_check(steps, sent)
    return ticket.next_check_at


# ---------------------------------------------------------------------------- the pass


@dataclass(frozen=True)
class SentEscalation:
    ticket: str
    threshold: str
    fraction: float
    due_at: dt.datetime
    recipients: tuple[str, ...]
    outbox_id: int


@dataclass
class TickResult:
    now: dt.datetime
    due: int = 0  # tickets selected (next_check_at <= now)
    sent: list[SentEscalation] = field(default_factory=list)
    cleared: int = 0  # answered, waiting or resolved: taken off the work list
    rescheduled: int = 0  # next_check_at moved to a later threshold
    finished: int = 0  # every threshold sent: next_check_at NULL
    skipped: int = 0  # another process had the ticket (claimed it first, or won the insert)
    errors: int = 0
    more: bool = False  # max_per_pass reached: more is due

    def as_json(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "due": self.due,
            "escalations": [
                {
                    "ticket": s.ticket,
                    "threshold": s.threshold,
                    "fraction": s.fraction,
                    "due_at": s.due_at.isoformat(),
                    "recipients": list(s.recipients),
                    "outbox_id": s.outbox_id,
                }
                for s in self.sent
            ],
            "cleared": self.cleared,
            "rescheduled": self.rescheduled,
            "finished": self.finished,
            "skipped": self.skipped,
            "errors": self.errors,
            "more": self.more,
        }


def due_ticket_ids(session: Session, now: dt.datetime, limit: int) -> list[int]:
    """Tickets whose next check has come: an index range scan on ``next_check_at``."""
    return list(
        session.scalars(
            select(Ticket.id)
            .where(Ticket.next_check_at <= now)
            .order_by(Ticket.next_check_at)
            .limit(limit)
        )
    )


def tick(app: App, now: dt.datetime) -> TickResult:
    """One scheduler pass at ``now``: send what fell due, schedule the next look."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    now = now.astimezone(dt.UTC)
    settings = app.settings.escalation
    result = TickResult(now)
    with app.db.transaction() as session:
        ids = due_ticket_ids(session, now, settings.max_per_pass)
    result.due = len(ids)
    result.more = len(ids) >= settings.max_per_pass
    for ticket_id in ids:
        try:
            with app.db.transaction() as session:
                _check_ticket(app, session, ticket_id, now, result)
        except IntegrityError:
            # Another process inserted this (ticket, threshold) first and sent it.
            result.skipped += 1
        except Exception:
            log.exception("escalation check of ticket %s failed", ticket_id)
            result.errors += 1
    if result.sent:
        log.info(
            "escalations sent=%d due=%d skipped=%d", len(result.sent), result.due, result.skipped
        )
    return result


def _claim(session: Session, ticket_id: int, now: dt.datetime) -> Ticket | None:
    """Take the ticket for this transaction if it is still due, or None.

    PostgreSQL: a row lock, and a ticket another process holds is skipped rather than
    waited for (SKIP LOCKED), so concurrent passes share the work. SQLite has no row
    locks: a conditional UPDATE takes the database's write lock, and a second process's
    identical UPDATE, run after the first commits, matches nothing.
    """
    due = (Ticket.id == ticket_id) & (Ticket.next_check_at <= now)
    if session.get_bind().dialect.name != "sqlite":
        return session.scalar(select(Ticket).where(due).with_for_update(skip_locked=True))
    claimed = session.execute(
        update(Ticket)
        .where(due)
        .values(next_check_at=Ticket.next_check_at)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        return None
    return session.get(Ticket, ticket_id)


def _check_ticket(
    app: App, session: Session, ticket_id: int, now: dt.datetime, result: TickResult
) -> None:
    ticket = _claim(session, ticket_id, now)
    if ticket is None:
        result.skipped += 1
        return
    if not needs_watch(ticket):
        ticket.next_check_at = None
        result.cleared += 1
        return
    settings = app.settings.escalation
    steps = plan(ticket.received_at, ticket.tier, ticket.severity, app.calendar, settings)
    sent = sent_labels(session, ticket.id)
    new: list[SentEscalation] = []
    for step in steps:
        if step.label in sent or step.at > now:
            continue
        new.append(_escalate(app, session, ticket, step, now))
        sent.add(step.label)
    ticket.next_check_at = next_check(steps, sent)
    session.flush()  # an IntegrityError surfaces here, inside this ticket's transaction
    result.sent.extend(new)
    if ticket.next_check_at is None:
        result.finished += 1
    else:
        result.rescheduled += 1


def _escalate(
    app: App, session: Session, ticket: Ticket, step: Step, now: dt.datetime
) -> SentEscalation:
    row = Escalation(
        ticket_id=ticket.id,
        threshold=step.label,
        fraction=step.fraction,
        severity=ticket.severity,
        due_at=step.at,
        sent_at=now,
        recipients=list(step.recipients),
    )
    session.add(row)
    session.flush()  # claim the (ticket, threshold) key before composing anything
    previous = list(
        session.scalars(
            select(OutboxMessage.message_id)
            .where(OutboxMessage.ticket_id == ticket.id, OutboxMessage.kind == "escalation")
            .order_by(OutboxMessage.id)
        )
    )
    out = app.composer.compose(
        kind="escalation",
        template="escalation",
        context=escalation_context(app, session, ticket, step, now),
        to=list(step.recipients),
        subject=escalation_subject(ticket, step),
        label="sla",
        from_name=app.settings.escalation.from_name,
        # Internal warnings of one ticket thread together in the managers' mail client.
        in_reply_to=previous[-1] if previous else None,
        references=previous,
        # RFC 3834 5: not a reply to anyone, generated by the SLA clock.
        auto_submitted="auto-generated",
        now=now,
    )
    outbox = queue_outgoing(
        session,
        out,
        dedupe_key=f"escalation:{ticket.id}:{step.label}",
        now=now,
        ticket_id=ticket.id,
    )
    session.flush()
    row.outbox_id = outbox.id
    return SentEscalation(
        ticket=ticket.public_id or str(ticket.id),
        threshold=step.label,
        fraction=step.fraction,
        due_at=step.at,
        recipients=step.recipients,
        outbox_id=outbox.id,
    )


# ---------------------------------------------------------------------------- the mail


def escalation_subject(ticket: Ticket, step: Step) -> str:
    what = {
        "immediate": f"{TIER_LABELS.get(ticket.tier, ticket.tier)} L{ticket.severity} received",
        "breach": "response deadline breached",
    }.get(step.label, f"{step.label} of response time used")
    return f"[{ticket.public_id}] SLA: {what} - {ticket.subject}"


def when(instant: dt.datetime, zone: ZoneInfo) -> dict[str, str]:
    """An instant for people: local in the policy zone (R-TZ), and UTC."""
    local = instant.astimezone(zone)
    return {
        "local": f"{local:%a %d %b %Y %H:%M} {local.tzname()} ({zone.key})",
        "utc": f"{instant.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC",
    }


def coverage_text(sla: SlaSettings, tier: str, level: int) -> str:
    days = ", ".join(d.capitalize() for d in sla.business_days)
    text = f"{days} {sla.business_start:%H:%M}-{sla.business_end:%H:%M} {sla.timezone}"
    if sla.weekend_covered(tier, level):
        text += f", and {sla.weekend_start} to {sla.weekend_end}"
    return text


def escalation_context(
    app: App, session: Session, ticket: Ticket, step: Step, now: dt.datetime
) -> dict[str, Any]:
    sla = app.settings.sla
    zone = sla.zone
    calendar = app.calendar
    weekend = sla.weekend_covered(ticket.tier, ticket.severity)
    due = response_due(ticket.received_at, ticket.tier, ticket.severity, calendar)
    allowed = target_covered_time(ticket.received_at, ticket.tier, ticket.severity, calendar)
    used = calendar.covered_between(ticket.received_at, now, weekend=weekend)
    sub = session.get(Subscription, ticket.subscription_id) if ticket.subscription_id else None
    target = sla.tier_targets(ticket.tier).text(ticket.severity)
    target_text_is_duration = isinstance(sla.target(ticket.tier, ticket.severity), dt.timedelta)
    headline = {
        "immediate": f"New {TIER_LABELS.get(ticket.tier, ticket.tier)} Level "
        f"{ticket.severity} request: answer it now",
        "breach": "The response deadline has passed without a first reply",
    }.get(step.label, f"{step.label} of the response time is used, no reply yet")
    return {
        "support_name": app.settings.mail.support_name,
        "support_address": app.settings.mail.support_address,
        "headline": headline,
        "threshold": {
            "label": step.label,
            "percent": f"{step.fraction:.0%}",
            "fell_due": when(step.at, zone),
            # Sent later than it fell due (the scheduler was not running, or the level
            # was raised after the fact).
            "late": now - step.at > dt.timedelta(minutes=5),
            "recipients": ", ".join(step.recipients),
        },
        "ticket": {
            "id": ticket.public_id,
            "subject": ticket.subject,
            "requester": ticket.requester,
            "requester_name": ticket.requester_name or "",
            "organization": sub.organization if sub else "(no subscription)",
            "subscription": ticket.subscription_id or "-",
            "tier_label": TIER_LABELS.get(ticket.tier, ticket.tier),
            "level": ticket.severity,
            "level_label": LEVEL_LABELS.get(ticket.severity, ""),
            "environment": ticket.environment or "production",
            "assignee": ticket.assignee or "nobody",
            "received": when(ticket.received_at, zone),
            "deadline": when(due, zone),
            "target": target,
            # "4h of covered time", or R-NBD: "next business day (8h of covered time)".
            "target_text": f"{target} of covered time"
            if target_text_is_duration
            else f"{target.replace('_', ' ')} ({_hours(allowed)} of covered time)",
            "coverage": coverage_text(sla, ticket.tier, ticket.severity),
            "allowed": allowed,
            "used": used,
            "remaining": max(allowed - used, dt.timedelta(0)),
            "overdue": max(used - allowed, dt.timedelta(0)),
        },
        "now": when(now, zone),
    }


def _hours(value: dt.timedelta) -> str:
    minutes = round(value.total_seconds() / 60)
    return f"{minutes // 60}h{minutes % 60:02d}" if minutes % 60 else f"{minutes // 60}h"


# ---------------------------------------------------------------------------- serve


def periodic_jobs(
    app: App, clock: Callable[[], dt.datetime] | None = None
) -> list[tuple[str, float, Callable[[], object]]]:
    """The jobs ``serve`` runs: the escalation pass and the daily digest check."""
    from mailgate.digest import send_scheduled_digest

    now = clock or (lambda: dt.datetime.now(dt.UTC))
    jobs: list[tuple[str, float, Callable[[], object]]] = []
    if app.settings.escalation.enabled:
        jobs.append(("sla-tick", app.settings.escalation.interval, lambda: tick(app, now())))
    if app.settings.digest.enabled:
        jobs.append(
            (
                "sla-digest",
                app.settings.digest.check_interval,
                lambda: send_scheduled_digest(app, now()),
            )
        )
    return jobs
