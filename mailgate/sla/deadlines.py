"""Response deadlines and warning thresholds of a request (R-CLOCK, R-NBD, R-ACK, P-L1..P-L4).

R-ACK: the clock starts at ``received``, the instant the gateway accepted the request,
and counts only covered time (R-CLOCK):

* Standard counts business-day coverage (P-COV-BD);
* Premier counts P-COV-BD plus the weekend window (P-COV-WE) for the levels in
  ``weekend_levels`` (L1 and L2 by default).

A duration target ("1h", "24h") is reached when that much covered time has passed. A
``next_business_day`` target (R-NBD) is the end of coverage on the first business day
after the arrival date; its thresholds are fractions of the covered time between
receipt and that deadline. The clock stops at the first public reply from an engineer
(R-ACK); callers pass that instant as ``now`` to :func:`elapsed_fraction` once it exists.

``settings`` may be left out: it defaults to the settings the calendar was built from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from mailgate.sla.calendar import CoverageCalendar, Gap
from mailgate.sla.settings import NEXT_BUSINESS_DAY, SlaSettings

DEFAULT_THRESHOLDS = (0.5, 0.8, 1.0)


def response_due(
    received: datetime,
    tier: str,
    level: int,
    calendar: CoverageCalendar,
    settings: SlaSettings | None = None,
) -> datetime:
    """The response deadline (aware, UTC) of a ``tier`` request at ``level``."""
    settings = settings or calendar.settings
    target = settings.target(tier, level)
    if target == NEXT_BUSINESS_DAY:
        return calendar.next_business_day_end(received)
    assert isinstance(target, timedelta)
    return calendar.add_covered(received, target, weekend=settings.weekend_covered(tier, level))


def target_covered_time(
    received: datetime,
    tier: str,
    level: int,
    calendar: CoverageCalendar,
    settings: SlaSettings | None = None,
) -> timedelta:
    """How much covered time the target allows: the duration itself, or for R-NBD the
    covered time between receipt and the next-business-day deadline."""
    settings = settings or calendar.settings
    target = settings.target(tier, level)
    if isinstance(target, timedelta):
        return target
    deadline = calendar.next_business_day_end(received)
    return calendar.covered_between(
        received, deadline, weekend=settings.weekend_covered(tier, level)
    )


def threshold_at(
    received: datetime,
    tier: str,
    level: int,
    fraction: float,
    calendar: CoverageCalendar,
    settings: SlaSettings | None = None,
) -> datetime:
    """The instant (UTC) when ``fraction`` of the target's covered time has passed.

    ``fraction`` 1.0 is the deadline itself; above 1.0 is overdue time (e.g. 1.5 for a
    second escalation), counted on the same clock.
    """
    if not fraction >= 0:
        raise ValueError(f"fraction must be >= 0, got {fraction!r}")
    settings = settings or calendar.settings
    if fraction == 1.0:
        return response_due(received, tier, level, calendar, settings)
    allowed = target_covered_time(received, tier, level, calendar, settings)
    return calendar.add_covered(
        received, allowed * fraction, weekend=settings.weekend_covered(tier, level)
    )


def elapsed_fraction(
    received: datetime,
    now: datetime,
    tier: str,
    level: int,
    calendar: CoverageCalendar,
    settings: SlaSettings | None = None,
) -> float:
    """Covered time from receipt to ``now`` over the target's covered time (1.0 = due)."""
    settings = settings or calendar.settings
    allowed = target_covered_time(received, tier, level, calendar, settings)
    used = calendar.covered_between(received, now, weekend=settings.weekend_covered(tier, level))
    return used / allowed


# Explaining a deadline.


@dataclass(frozen=True)
class CountedSpan:
    """A covered interval that counts towards the target."""

    start: datetime
    end: datetime

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class Threshold:
    """The instant at which ``fraction`` of the target's covered time has passed."""

    fraction: float
    at: datetime


@dataclass(frozen=True)
class Timeline:
    """Why a request is due when it is: what was counted, what was skipped, and why."""

    tier: str
    level: int
    target: str  # as written in config, e.g. "1h" or "next_business_day"
    weekend: bool  # does this clock count the weekend window (P-COV-WE)?
    timezone: str  # the policy zone (R-TZ)
    received: datetime
    clock_start: datetime
    counted: tuple[CountedSpan, ...]
    skipped: tuple[Gap, ...]
    thresholds: tuple[Threshold, ...]
    deadline: datetime

    @property
    def covered_total(self) -> timedelta:
        return sum((span.duration for span in self.counted), timedelta(0))


def explain(
    received: datetime,
    tier: str,
    level: int,
    calendar: CoverageCalendar,
    settings: SlaSettings | None = None,
    *,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> Timeline:
    """The full reasoning behind :func:`response_due` for one request."""
    settings = settings or calendar.settings
    weekend = settings.weekend_covered(tier, level)
    deadline = response_due(received, tier, level, calendar, settings)
    return Timeline(
        tier=tier,
        level=level,
        target=settings.tier_targets(tier).text(level),
        weekend=weekend,
        timezone=settings.timezone,
        received=received.astimezone(UTC),
        clock_start=calendar.clock_start(received, weekend=weekend),
        counted=tuple(
            CountedSpan(first, last)
            for first, last in calendar.covered_intervals(received, deadline, weekend=weekend)
        ),
        skipped=tuple(calendar.gaps(received, deadline, weekend=weekend)),
        thresholds=tuple(
            Threshold(fraction, threshold_at(received, tier, level, fraction, calendar, settings))
            for fraction in thresholds
        ),
        deadline=deadline,
    )


def render_text(timeline: Timeline, tz: str | tzinfo | None = None) -> str:
    """A readable account of ``timeline``, times in ``tz`` (default: the policy zone) and UTC."""
    zone = (
        ZoneInfo(timeline.timezone) if tz is None else ZoneInfo(tz) if isinstance(tz, str) else tz
    )
    clock = "business days + weekend window" if timeline.weekend else "business days only"

    def at(instant: datetime) -> str:
        local = instant.astimezone(zone)
        return f"{local:%a %Y-%m-%d %H:%M %Z} ({instant.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"

    def span(start: datetime, end: datetime) -> str:
        return f"{at(start)} -> {at(end)}  [{_hours(end - start)}]"

    lines = [
        f"{timeline.tier.capitalize()} L{timeline.level}: target {timeline.target}, "
        f"counting {clock} ({timeline.timezone})",
        f"  received     {at(timeline.received)}",
        f"  clock start  {at(timeline.clock_start)}",
    ]
    entries: list[tuple[datetime, str]] = [
        (piece.start, f"  counted      {span(piece.start, piece.end)}")
        for piece in timeline.counted
    ]
    entries += [
        (gap.start, f"  skipped      {span(gap.start, gap.end)}  {', '.join(gap.reasons)}")
        for gap in timeline.skipped
    ]
    lines += [text for _, text in sorted(entries, key=lambda entry: entry[0])]
    lines.append(f"  covered      {_hours(timeline.covered_total)} in total")
    lines += [f"  {f'{point.fraction:.0%}':<12} {at(point.at)}" for point in timeline.thresholds]
    lines.append(f"  deadline     {at(timeline.deadline)}")
    return "\n".join(lines)


def _hours(duration: timedelta) -> str:
    minutes = int(duration.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"
