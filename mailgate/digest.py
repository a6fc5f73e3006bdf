"""The managers' SLA digest: what is breached, what is at risk, what came in, what was
refused, and how well the response targets were met (R-CLOCK, R-ACK, P-L1..P-L4).

Numbers are read from the database as of ``now`` (a parameter, like everywhere):

* **breached**: open tickets with no first response whose deadline has passed;
* **at risk**: open, unanswered, not yet due, and due within ``at_risk_hours`` of
  *covered* time (on Friday at 15:30 a Standard ticket due Monday 09:00 is 1h30
  away: the weekend does not count);
* **new** tickets and **refusals by reason** since the previous digest (``DigestRun``),
  or the last 24 hours for the first one;
* **attainment** per tier and level over each window (7 and 30 days by default) of
  tickets *received* in the window. A ticket counts once its outcome is known: answered
  (in time when the first response came by ``due_at``), or unanswered past its deadline
  (missed; a ticket resolved before its deadline without a reply is left out). The
  first-response times are covered time (``calendar.covered_between``) on the ticket's
  own clock; the median is the middle value (mean of the two middle ones for an even
  count) and the 90th percentile is the nearest-rank one (the ceil(0.9 n)-th smallest).

Scheduling: :func:`send_scheduled_digest` is called by ``serve`` every minute; on a
business day (holidays excluded) at or after ``send_at`` in the policy zone it sends
the day's digest once. The unique ``DigestRun.period_key`` (``daily:YYYY-MM-DD``) makes
it once across processes: the loser of the insert rolls back and sends nothing.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailgate.db.models import Decision, DigestRun, Subscription, Ticket
from mailgate.db.queries import queue_outgoing
from mailgate.mail.compose import Outgoing
from mailgate.sla.escalation import LEVEL_LABELS, TIER_LABELS, when
from mailgate.sla.settings import LEVELS, TIERS

if TYPE_CHECKING:
    from mailgate.app import App

FIRST_DIGEST_LOOKBACK: Final = dt.timedelta(days=1)
REJECTED: Final = "rejected"  # Outcome.REJECTED: a refusal (P-OUT-*)


@dataclass(frozen=True)
class TicketLine:
    id: str
    subject: str
    organization: str
    requester: str
    tier: str
    level: int
    status: str
    received_at: dt.datetime
    due_at: dt.datetime | None
    # Covered time left until the deadline (at risk) or past it (breached).
    covered_left: dt.timedelta | None = None
    covered_over: dt.timedelta | None = None


@dataclass(frozen=True)
class Attainment:
    """How one tier and level (or ``level=None``: the whole tier) did over a window."""

    tier: str
    level: int | None
    decided: int  # answered + missed
    in_time: int
    pending: int  # not answered, not yet due: no outcome yet
    response_hours: tuple[float, ...]  # covered hours to first response, sorted

    @property
    def missed(self) -> int:
        return self.decided - self.in_time

    @property
    def share(self) -> float | None:
        return self.in_time / self.decided if self.decided else None

    @property
    def median_hours(self) -> float | None:
        return statistics.median(self.response_hours) if self.response_hours else None

    @property
    def p90_hours(self) -> float | None:
        return nearest_rank(self.response_hours, 0.9)


def nearest_rank(sorted_values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile: the ceil(q n)-th smallest value."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Digest:
    now: dt.datetime
    since: dt.datetime
    at_risk_hours: float
    breached: tuple[TicketLine, ...]
    breached_count: int
    at_risk: tuple[TicketLine, ...]
    at_risk_count: int
    new: tuple[TicketLine, ...]
    new_count: int
    refusals: tuple[tuple[str, int], ...]  # (reason, count), most frequent first
    attainment: dict[int, tuple[Attainment, ...]] = field(default_factory=dict)

    @property
    def refusals_total(self) -> int:
        return sum(count for _, count in self.refusals)

    def as_json(self) -> dict[str, Any]:
        def line(t: TicketLine) -> dict[str, Any]:
            return {
                "ticket": t.id,
                "subject": t.subject,
                "organization": t.organization,
                "requester": t.requester,
                "tier": t.tier,
                "level": t.level,
                "status": t.status,
                "received_at": t.received_at.isoformat(),
                "due_at": t.due_at.isoformat() if t.due_at else None,
                "covered_hours_left": _h(t.covered_left),
                "covered_hours_over": _h(t.covered_over),
            }

        return {
            "now": self.now.isoformat(),
            "since": self.since.isoformat(),
            "breached": {"count": self.breached_count, "tickets": [line(t) for t in self.breached]},
            "at_risk": {
                "hours": self.at_risk_hours,
                "count": self.at_risk_count,
                "tickets": [line(t) for t in self.at_risk],
            },
            "new": {"count": self.new_count, "tickets": [line(t) for t in self.new]},
            "refusals": {"total": self.refusals_total, "by_reason": dict(self.refusals)},
            "attainment": {
                f"{days}d": [
                    {
                        "tier": a.tier,
                        "level": a.level,
                        "decided": a.decided,
                        "in_time": a.in_time,
                        "missed": a.missed,
                        "pending": a.pending,
                        "share": a.share,
                        "median_hours": a.median_hours,
                        "p90_hours": a.p90_hours,
                    }
                    for a in rows
                ]
                for days, rows in self.attainment.items()
            },
        }


def _h(value: dt.timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds() / 3600, 4)


# ---------------------------------------------------------------------------- numbers


def previous_run(session: Session, now: dt.datetime) -> DigestRun | None:
    return session.scalar(
        select(DigestRun).where(DigestRun.ran_at < now).order_by(DigestRun.ran_at.desc()).limit(1)
    )


def digest_since(session: Session, now: dt.datetime) -> dt.datetime:
    """The previous digest's time, or 24 hours ago for the first digest."""
    run = previous_run(session, now)
    return run.ran_at if run is not None else now - FIRST_DIGEST_LOOKBACK


def build_digest(
    session: Session, app: App, now: dt.datetime, since: dt.datetime | None = None
) -> Digest:
    """Every number of the digest as of ``now``."""
    now = now.astimezone(dt.UTC)
    since = since or digest_since(session, now)
    settings = app.settings.digest
    limit = settings.list_limit
    orgs = dict(session.execute(select(Subscription.id, Subscription.organization)).all())
    breached = _breached(session, app, now, orgs)
    at_risk = _at_risk(session, app, now, orgs)
    new = [
        _line(t, orgs)
        for t in session.scalars(
            select(Ticket)
            .where(Ticket.received_at >= since, Ticket.received_at < now)
            .order_by(Ticket.received_at)
        )
    ]
    refusals = session.execute(
        select(Decision.reason, func.count())
        .where(
            Decision.outcome == REJECTED, Decision.created_at >= since, Decision.created_at < now
        )
        .group_by(Decision.reason)
    ).all()
    by_reason = sorted(((r or "unspecified", n) for r, n in refusals), key=lambda x: (-x[1], x[0]))
    return Digest(
        now=now,
        since=since,
        at_risk_hours=settings.at_risk_hours,
        breached=tuple(breached[:limit]),
        breached_count=len(breached),
        at_risk=tuple(at_risk[:limit]),
        at_risk_count=len(at_risk),
        new=tuple(new[:limit]),
        new_count=len(new),
        refusals=tuple(by_reason),
        attainment={days: attainment(session, app, now, days) for days in settings.windows},
    )


def _line(t: Ticket, orgs: dict[str, str], **extra: Any) -> TicketLine:
    return TicketLine(
        id=t.public_id or str(t.id),
        subject=t.subject,
        organization=orgs.get(t.subscription_id or "", "-"),
        requester=t.requester,
        tier=t.tier,
        level=t.severity,
        status=t.status,
        received_at=t.received_at,
        due_at=t.due_at,
        **extra,
    )


def _unanswered_open() -> Any:
    return (Ticket.status == "open") & Ticket.first_response_at.is_(None)


def _breached(
    session: Session, app: App, now: dt.datetime, orgs: dict[str, str]
) -> list[TicketLine]:
    sla = app.settings.sla
    rows = session.scalars(
        select(Ticket).where(_unanswered_open(), Ticket.due_at <= now).order_by(Ticket.due_at)
    )
    return [
        _line(
            t,
            orgs,
            covered_over=app.calendar.covered_between(
                t.due_at, now, weekend=sla.weekend_covered(t.tier, t.severity)
            ),
        )
        for t in rows
        if t.due_at is not None
    ]


def _at_risk(
    session: Session, app: App, now: dt.datetime, orgs: dict[str, str]
) -> list[TicketLine]:
    sla = app.settings.sla
    window = dt.timedelta(hours=app.settings.digest.at_risk_hours)
    # The business-days-only clock is the slowest: no ticket at risk is due later.
    horizon = app.calendar.add_covered(now, window, weekend=False)
    out = []
    for t in session.scalars(
        select(Ticket)
        .where(_unanswered_open(), Ticket.due_at > now, Ticket.due_at <= horizon)
        .order_by(Ticket.due_at)
    ):
        assert t.due_at is not None
        left = app.calendar.covered_between(
            now, t.due_at, weekend=sla.weekend_covered(t.tier, t.severity)
        )
        if left <= window:
            out.append(_line(t, orgs, covered_left=left))
    return out


def attainment(session: Session, app: App, now: dt.datetime, days: int) -> tuple[Attainment, ...]:
    """Per tier and level (levels with tickets only), then the tier's total row."""
    sla = app.settings.sla
    start = now - dt.timedelta(days=days)
    rows = session.execute(
        select(
            Ticket.tier,
            Ticket.severity,
            Ticket.received_at,
            Ticket.due_at,
            Ticket.first_response_at,
            Ticket.resolved_at,
        ).where(Ticket.received_at >= start, Ticket.received_at < now)
    ).all()
    cells: dict[tuple[str, int], dict[str, Any]] = {}
    for tier, level, received, due, responded, resolved in rows:
        if responded is None and resolved is not None and (due is None or resolved <= due):
            continue  # closed before its deadline without a reply: no SLA outcome
        cell = cells.setdefault(
            (tier, level), {"decided": 0, "in_time": 0, "pending": 0, "hours": []}
        )
        if responded is not None:
            cell["decided"] += 1
            cell["in_time"] += int(due is None or responded <= due)
            covered = app.calendar.covered_between(
                received, responded, weekend=sla.weekend_covered(tier, level)
            )
            cell["hours"].append(covered.total_seconds() / 3600)
        elif due is not None and due <= now:
            cell["decided"] += 1  # missed: unanswered past the deadline (R-ACK)
        else:
            cell["pending"] += 1
    out: list[Attainment] = []
    for tier in TIERS:
        levels = [lv for lv in LEVELS if (tier, lv) in cells]
        if not levels:
            continue
        for lv in levels:
            c = cells[(tier, lv)]
            out.append(
                Attainment(
                    tier, lv, c["decided"], c["in_time"], c["pending"], tuple(sorted(c["hours"]))
                )
            )
        tier_cells = [cells[(tier, lv)] for lv in levels]
        out.append(
            Attainment(
                tier,
                None,
                sum(c["decided"] for c in tier_cells),
                sum(c["in_time"] for c in tier_cells),
                sum(c["pending"] for c in tier_cells),
                tuple(sorted(h for c in tier_cells for h in c["hours"])),
            )
        )
    return tuple(out)


# ---------------------------------------------------------------------------- rendering


def _hours_text(hours: float | None) -> str:
    if hours is None:
        return "-"
    minutes = round(hours * 60)
    h, m = divmod(minutes, 60)
    return f"{h}h{m:02d}" if m else f"{h}h"


def digest_context(app: App, digest: Digest) -> dict[str, Any]:
    zone = app.settings.sla.zone

    def line(t: TicketLine) -> dict[str, Any]:
        return {
            "id": t.id,
            "subject": t.subject if len(t.subject) <= 70 else t.subject[:67] + "...",
            "organization": t.organization,
            "requester": t.requester,
            "tier_label": TIER_LABELS.get(t.tier, t.tier),
            "tier_short": "Prem" if t.tier == "premier" else "Std",
            "level": t.level,
            "level_label": LEVEL_LABELS.get(t.level, ""),
            "received": when(t.received_at, zone),
            "due": when(t.due_at, zone) if t.due_at else {"local": "-", "utc": "-"},
            "due_short": f"{t.due_at.astimezone(zone):%a %d %b %H:%M}" if t.due_at else "-",
            "left": _hours_text(_h(t.covered_left)),
            "over": _hours_text(_h(t.covered_over)),
        }

    def row(a: Attainment) -> dict[str, Any]:
        share = a.share
        return {
            "label": f"{TIER_LABELS.get(a.tier, a.tier)} {f'L{a.level}' if a.level else 'all'}",
            "total": a.level is None,
            "decided": a.decided,
            "in_time": a.in_time,
            "missed": a.missed,
            "pending": a.pending,
            "percent": "-" if share is None else f"{share:.0%}",
            "bar": 0 if share is None else round(share * 100),
            "median": _hours_text(a.median_hours),
            "p90": _hours_text(a.p90_hours),
        }

    local_now = digest.now.astimezone(zone)
    return {
        "support_name": app.settings.mail.support_name,
        "support_address": app.settings.mail.support_address,
        "title": f"SLA digest {local_now:%a %d %b %Y}",
        "now": when(digest.now, zone),
        "since": when(digest.since, zone),
        "at_risk_hours": _hours_text(digest.at_risk_hours),
        "breached": [line(t) for t in digest.breached],
        "breached_count": digest.breached_count,
        "at_risk": [line(t) for t in digest.at_risk],
        "at_risk_count": digest.at_risk_count,
        "new": [line(t) for t in digest.new],
        "new_count": digest.new_count,
        "refusals": [{"reason": r, "count": n} for r, n in digest.refusals],
        "refusals_total": digest.refusals_total,
        "windows": [
            {"days": days, "rows": [row(a) for a in rows]}
            for days, rows in digest.attainment.items()
        ],
        "timezone": app.settings.sla.timezone,
    }


def digest_subject(digest: Digest, app: App) -> str:
    local = digest.now.astimezone(app.settings.sla.zone)
    return (
        f"SLA digest {local:%a %d %b}: {digest.breached_count} breached, "
        f"{digest.at_risk_count} at risk, {digest.new_count} new"
    )


def render_digest(app: App, digest: Digest) -> tuple[str, str | None]:
    """(text, html) bodies."""
    return app.composer.render("digest", digest_context(app, digest))


def compose_digest(app: App, digest: Digest) -> Outgoing:
    return app.composer.compose(
        kind="digest",
        template="digest",
        context=digest_context(app, digest),
        to=list(app.settings.escalation.resolve(app.settings.digest.recipients)),
        subject=digest_subject(digest, app),
        label="digest",
        from_name=app.settings.escalation.from_name,
        auto_submitted="auto-generated",  # RFC 3834 5: a report, not a reply
        now=digest.now,
    )


# ---------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class SentDigest:
    period_key: str
    outbox_id: int
    digest: Digest


def daily_key(app: App, now: dt.datetime) -> str:
    return f"daily:{now.astimezone(app.settings.sla.zone).date().isoformat()}"


def send_digest(app: App, now: dt.datetime, period_key: str) -> SentDigest | None:
    """Build, record and queue the digest for ``period_key``, once: None if that period's
    digest exists already (here or in another process)."""
    now = now.astimezone(dt.UTC)
    try:
        with app.db.transaction() as session:
            since = digest_since(session, now)
            run = DigestRun(period_key=period_key, ran_at=now, since=since)
            session.add(run)
            session.flush()  # the unique period key: the loser stops here
            digest = build_digest(session, app, now, since)
            out = compose_digest(app, digest)
            row = queue_outgoing(session, out, dedupe_key=f"digest:{period_key}", now=now)
            session.flush()
            run.outbox_id = row.id
            return SentDigest(period_key, row.id, digest)
    except IntegrityError:
        return None


def scheduled_key(app: App, now: dt.datetime) -> str | None:
    """The period whose digest is due at ``now``: today's, on a business day at or after
    ``send_at`` (policy zone); None on other days and before that time."""
    local = now.astimezone(app.settings.sla.zone)
    if not app.calendar.is_business_day(local.date()):
        return None
    if local.time() < app.settings.digest.send_at:
        return None
    return daily_key(app, now)


def send_scheduled_digest(app: App, now: dt.datetime) -> SentDigest | None:
    """``serve``'s periodic job: send today's digest if it is due and not sent yet."""
    key = scheduled_key(app, now)
    if key is None:
        return None
    with app.db.transaction() as session:
        done = session.scalar(select(DigestRun.id).where(DigestRun.period_key == key))
    if done is not None:
        return None
    return send_digest(app, now, key)
