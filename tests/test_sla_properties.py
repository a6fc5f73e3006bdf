"""Property tests of the SLA calendar maths (R-CLOCK, R-TZ, R-NBD, P-COV-BD, P-COV-WE).

Deterministic (derandomized, no example database) and bounded. The reference for
"is this instant covered" is a minute-by-minute oracle written straight from the policy
text, independent of the calendar's day-window implementation.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mailgate.sla.calendar import CoverageCalendar
from mailgate.sla.deadlines import response_due, target_covered_time, threshold_at
from mailgate.sla.settings import SlaSettings

PROPERTY = hypothesis_settings(max_examples=150, deadline=None, derandomize=True, database=None)
ORACLE = hypothesis_settings(max_examples=60, deadline=None, derandomize=True, database=None)

ZONES = ("Europe/Paris", "Etc/GMT-2", "America/New_York", "Australia/Lord_Howe")
TIERS = ("standard", "premier")
LEVELS = (1, 2, 3, 4)
FIRST_DAY, LAST_DAY = date(2025, 1, 1), date(2028, 12, 31)

CALENDARS = {
    "Europe/Paris+FR": CoverageCalendar.from_settings(SlaSettings(holiday_country="FR")),
    "Etc/GMT-2": CoverageCalendar.from_settings(SlaSettings(timezone="Etc/GMT-2")),
    "America/New_York": CoverageCalendar.from_settings(SlaSettings(timezone="America/New_York")),
}

tiers = st.sampled_from(TIERS)
levels = st.sampled_from(LEVELS)
calendars = st.sampled_from(sorted(CALENDARS)).map(CALENDARS.__getitem__)

# Instants anywhere (with microseconds), plus local instants on or next to the window
# edges and the daylight-saving hours, where mistakes hide.
_anywhere = st.datetimes(
    min_value=datetime.combine(FIRST_DAY, time()),
    max_value=datetime.combine(LAST_DAY, time()),
    timezones=st.just(UTC),
)
_EDGES = [
    time(h, m)
    for h, m in [
        (0, 0),
        (1, 30),
        (2, 0),
        (2, 30),
        (3, 0),
        (7, 59),
        (8, 0),
        (12, 0),
        (15, 59),
        (16, 0),
        (16, 1),
        (23, 59),
    ]
]
_near_edges = st.builds(
    lambda day, moment, fold: (
        datetime.combine(day, moment, tzinfo=ZoneInfo("Europe/Paris"))
        .replace(fold=fold)
        .astimezone(UTC)
    ),
    st.dates(FIRST_DAY, LAST_DAY),
    st.sampled_from(_EDGES),
    st.integers(0, 1),
)
instants = st.one_of(_anywhere, _near_edges)


def duration_target(tier: str, level: int) -> bool:
    return isinstance(SlaSettings().target(tier, level), timedelta)


@PROPERTY
@given(calendars, instants, tiers, levels)
def test_R_CLOCK_deadline_is_never_before_receipt(
    cal: CoverageCalendar, received: datetime, tier: str, level: int
) -> None:
    due = response_due(received, tier, level, cal)
    assert due > received
    assert due.tzinfo is UTC


@PROPERTY
@given(calendars, instants, st.timedeltas(timedelta(0), timedelta(days=10)), tiers, levels)
def test_R_CLOCK_a_later_receipt_never_gives_an_earlier_deadline(
    cal: CoverageCalendar, received: datetime, later_by: timedelta, tier: str, level: int
) -> None:
    assert response_due(received + later_by, tier, level, cal) >= response_due(
        received, tier, level, cal
    )


@PROPERTY
@given(st.sampled_from(ZONES), instants, st.integers(-3, 12), tiers, levels)
def test_R_TZ_adding_a_holiday_never_makes_a_deadline_earlier(
    zone: str, received: datetime, day_offset: int, tier: str, level: int
) -> None:
    base = CoverageCalendar.from_settings(SlaSettings(timezone=zone))
    holiday = received.astimezone(ZoneInfo(zone)).date() + timedelta(days=day_offset)
    with_holiday = CoverageCalendar.from_settings(SlaSettings(timezone=zone, holidays=(holiday,)))
    assert response_due(received, tier, level, with_holiday) >= response_due(
        received, tier, level, base
    )


@PROPERTY
@given(calendars, instants, tiers, levels)
def test_P_L_covered_time_from_receipt_to_deadline_equals_the_target(
    cal: CoverageCalendar, received: datetime, tier: str, level: int
) -> None:
    target = cal.settings.target(tier, level)
    if not isinstance(target, timedelta):
        return  # R-NBD targets are a wall-clock instant, checked below
    weekend = cal.settings.weekend_covered(tier, level)
    due = response_due(received, tier, level, cal)
    assert cal.covered_between(received, due, weekend=weekend) == target
    # The deadline is reached while covered: the instant just before it is covered.
    assert cal.is_covered(due - timedelta(microseconds=1), weekend=weekend)


@PROPERTY
@given(calendars, instants)
def test_R_NBD_deadline_is_business_end_on_the_first_business_day_after_arrival(
    cal: CoverageCalendar, received: datetime
) -> None:
    due = response_due(received, "standard", 4, cal).astimezone(cal.zone)
    arrival = received.astimezone(cal.zone).date()
    assert due.time() == time(16)
    assert due.date() > arrival
    assert due.weekday() < 5 and cal.holiday_name(due.date()) is None
    day = arrival + timedelta(days=1)
    while day < due.date():  # nothing in between was a business day
        assert day.weekday() >= 5 or cal.holiday_name(day) is not None
        day += timedelta(days=1)


@PROPERTY
@given(calendars, instants, tiers, levels, st.lists(st.floats(0, 2), min_size=2, max_size=5))
def test_thresholds_rise_with_the_fraction_and_1_0_is_the_deadline(
    cal: CoverageCalendar, received: datetime, tier: str, level: int, fractions: list[float]
) -> None:
    instants_in_order = [threshold_at(received, tier, level, f, cal) for f in sorted(fractions)]
    assert instants_in_order == sorted(instants_in_order)
    assert threshold_at(received, tier, level, 1.0, cal) == response_due(received, tier, level, cal)
    weekend = cal.settings.weekend_covered(tier, level)
    assert threshold_at(received, tier, level, 0.0, cal) == cal.clock_start(
        received, weekend=weekend
    )
    half = threshold_at(received, tier, level, 0.5, cal)
    allowed = target_covered_time(received, tier, level, cal)
    assert abs(cal.covered_between(received, half, weekend=weekend) - allowed / 2) <= timedelta(
        microseconds=1
    )


@PROPERTY
@given(calendars, instants, st.timedeltas(timedelta(0), timedelta(hours=120)))
def test_P_COV_WE_more_coverage_never_gives_a_later_instant(
    cal: CoverageCalendar, start: datetime, duration: timedelta
) -> None:
    assert cal.add_covered(start, duration, weekend=True) <= cal.add_covered(
        start, duration, weekend=False
    )


@PROPERTY
@given(calendars, instants, st.timedeltas(timedelta(0), timedelta(hours=200)), st.booleans())
def test_add_covered_is_the_inverse_of_covered_between(
    cal: CoverageCalendar, start: datetime, duration: timedelta, weekend: bool
) -> None:
    end = cal.add_covered(start, duration, weekend=weekend)
    assert end >= start
    assert cal.covered_between(start, end, weekend=weekend) == duration


@PROPERTY
@given(calendars, instants, st.timedeltas(timedelta(0), timedelta(days=20)), st.booleans())
def test_covered_intervals_are_ordered_disjoint_inside_bounds_and_sum_up(
    cal: CoverageCalendar, start: datetime, length: timedelta, weekend: bool
) -> None:
    end = start + length
    pieces = list(cal.covered_intervals(start, end, weekend=weekend))
    for first, last in pieces:
        assert start <= first < last <= end
    for (_, previous_end), (next_start, _) in itertools.pairwise(pieces):
        assert previous_end < next_start  # touching pieces are joined
    total = sum((last - first for first, last in pieces), timedelta(0))
    assert total == cal.covered_between(start, end, weekend=weekend)
    gaps = list(cal.gaps(start, end, weekend=weekend))
    assert total + sum((g.duration for g in gaps), timedelta(0)) == length
    assert all(g.reasons for g in gaps)


# ---------------------------------------------------------------------------------------
# Against a minute-by-minute oracle written from the policy text.
# ---------------------------------------------------------------------------------------


def oracle_covered(instant: datetime, zone: ZoneInfo, holidays: set[date], weekend: bool) -> bool:
    """P-COV-BD / P-COV-WE read literally, on the local wall clock of ``zone``."""
    local = instant.astimezone(zone)
    minute_of_day = local.hour * 60 + local.minute
    weekday = local.weekday()
    if weekday < 5 and local.date() not in holidays and 8 * 60 <= minute_of_day < 16 * 60:
        return True
    if weekend:
        minute_of_week = weekday * 1440 + minute_of_day
        # Friday 16:00 up to the end of the week, or from Monday 00:00 up to 08:00.
        return minute_of_week >= 4 * 1440 + 16 * 60 or minute_of_week < 8 * 60
    return False


# Fridays before a clock change: Paris (March/October 2026 and 2027), New York (8 March,
# 1 November 2026) and Lord Howe (a half-hour change on 5 April 2026).
_CHANGE_WEEKENDS = [
    date(2026, 3, 27),
    date(2026, 10, 23),
    date(2027, 3, 26),
    date(2027, 10, 29),
    date(2026, 3, 6),
    date(2026, 10, 30),
    date(2026, 4, 3),
]
_oracle_starts = st.one_of(
    st.builds(
        lambda day, minutes: datetime.combine(day, time(), tzinfo=UTC) + timedelta(minutes=minutes),
        st.sampled_from(_CHANGE_WEEKENDS),
        st.integers(0, 3 * 1440),
    ),
    st.integers(0, (LAST_DAY - FIRST_DAY).days * 1440).map(
        lambda minutes: datetime.combine(FIRST_DAY, time(), tzinfo=UTC) + timedelta(minutes=minutes)
    ),
)


@ORACLE
@given(
    st.sampled_from(ZONES),
    _oracle_starts,
    st.integers(1, 4 * 1440),
    st.booleans(),
    st.lists(st.integers(-2, 5), max_size=3),
)
def test_P_COV_calendar_agrees_with_a_minute_by_minute_oracle(
    zone_name: str, start: datetime, minutes: int, weekend: bool, holiday_offsets: list[int]
) -> None:
    zone = ZoneInfo(zone_name)
    holidays = {start.astimezone(zone).date() + timedelta(days=n) for n in holiday_offsets}
    cal = CoverageCalendar.from_settings(
        SlaSettings(timezone=zone_name, holidays=tuple(sorted(holidays)))
    )
    # Every coverage edge is on a whole local minute, hence on a whole UTC minute (all
    # these zones' offsets are whole minutes), so sampling each minute is exact.
    covered_minutes = 0
    for n in range(minutes):
        instant = start + timedelta(minutes=n)
        expected = oracle_covered(instant, zone, holidays, weekend)
        covered_minutes += expected
        if n % 37 == 0:  # spot-check the point query too
            assert cal.is_covered(instant, weekend=weekend) == expected, instant
    end = start + timedelta(minutes=minutes)
    assert cal.covered_between(start, end, weekend=weekend) == timedelta(minutes=covered_minutes)
