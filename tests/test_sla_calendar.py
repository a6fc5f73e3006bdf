"""SLA coverage calendar and deadlines, proved clause by clause against POLICY.md.

P-COV-BD, P-COV-WE, P-L1..P-L4, R-CLOCK, R-TZ, R-NBD, R-ACK. Expected instants are
worked out by hand from the policy text, never computed by the code under test.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest

from mailgate.errors import ConfigValueError
from mailgate.sla import calendar as calendar_module
from mailgate.sla.calendar import CoverageCalendar, NoCoverageError
from mailgate.sla.deadlines import (
    elapsed_fraction,
    explain,
    render_text,
    response_due,
    target_covered_time,
    threshold_at,
)
from mailgate.sla.settings import (
    PremierTargets,
    SlaSettings,
    StandardTargets,
    Targets,
    parse_duration,
)

PARIS = ZoneInfo("Europe/Paris")
GMT_PLUS_2 = ZoneInfo("Etc/GMT-2")  # POSIX sign: "Etc/GMT-2" is UTC+2

DEFAULT = CoverageCalendar.from_settings(SlaSettings())
# Labour Day (Friday) and Easter Monday 2026 as explicit holiday dates.
WITH_HOLIDAYS = CoverageCalendar.from_settings(
    SlaSettings(holidays=(date(2026, 5, 1), date(2026, 4, 6)))
)
FRANCE = CoverageCalendar.from_settings(SlaSettings(holiday_country="FR"))
FIXED = CoverageCalendar.from_settings(SlaSettings(timezone="Etc/GMT-2"))


def paris(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=PARIS)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def plus2(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=GMT_PLUS_2)


# ---------------------------------------------------------------------------------------
# The target table (P-L1..P-L4) at chosen moments, every tier and level.
# ---------------------------------------------------------------------------------------


class Case(NamedTuple):
    moment: str
    calendar: CoverageCalendar
    received: datetime
    tier: str
    level: int
    due: datetime


MOMENTS: dict[str, tuple[CoverageCalendar, datetime, dict[tuple[str, int], datetime]]] = {
    # Wednesday 09:00: 7 business hours left today.
    "weekday-morning": (
        DEFAULT,
        paris(2026, 1, 14, 9),
        {
            ("premier", 1): paris(2026, 1, 14, 10),
            ("premier", 2): paris(2026, 1, 14, 11),
            ("premier", 3): paris(2026, 1, 15, 9),  # 7h Wed + 1h Thu
            ("premier", 4): paris(2026, 1, 19, 9),  # 7 + 8 + 8 + 1h Mon
            ("standard", 1): paris(2026, 1, 14, 13),
            ("standard", 2): paris(2026, 1, 15, 9),
            ("standard", 3): paris(2026, 1, 16, 9),  # 7 + 8 + 1h Fri
            ("standard", 4): paris(2026, 1, 15, 16),  # R-NBD: Thursday 16:00
        },
    ),
    # Friday 15:59: one business minute left, then the weekend window for Premier L1/L2.
    "friday-1559": (
        DEFAULT,
        paris(2026, 1, 16, 15, 59),
        {
            ("premier", 1): paris(2026, 1, 16, 16, 59),
            ("premier", 2): paris(2026, 1, 16, 17, 59),
            ("premier", 3): paris(2026, 1, 19, 15, 59),  # 1m Fri + 7h59 Mon
            ("premier", 4): paris(2026, 1, 21, 15, 59),  # 1m + 8h Mon + 8h Tue + 7h59 Wed
            ("standard", 1): paris(2026, 1, 19, 11, 59),
            ("standard", 2): paris(2026, 1, 19, 15, 59),
            ("standard", 3): paris(2026, 1, 20, 15, 59),
            ("standard", 4): paris(2026, 1, 19, 16),
        },
    ),
    "saturday-1000": (
        DEFAULT,
        paris(2026, 1, 17, 10),
        {
            ("premier", 1): paris(2026, 1, 17, 11),
            ("premier", 2): paris(2026, 1, 17, 12),
            ("premier", 3): paris(2026, 1, 19, 16),
            ("premier", 4): paris(2026, 1, 21, 16),
            ("standard", 1): paris(2026, 1, 19, 12),
            ("standard", 2): paris(2026, 1, 19, 16),
            ("standard", 3): paris(2026, 1, 20, 16),
            ("standard", 4): paris(2026, 1, 19, 16),
        },
    ),
    # Friday 1 May 2026, a holiday: no business window; the weekend window still opens
    # at 16:00 for Premier L1/L2.
    "holiday-friday-1000": (
        WITH_HOLIDAYS,
        paris(2026, 5, 1, 10),
        {
            ("premier", 1): paris(2026, 5, 1, 17),
            ("premier", 2): paris(2026, 5, 1, 18),
            ("premier", 3): paris(2026, 5, 4, 16),
            ("premier", 4): paris(2026, 5, 6, 16),
            ("standard", 1): paris(2026, 5, 4, 12),
            ("standard", 2): paris(2026, 5, 4, 16),
            ("standard", 3): paris(2026, 5, 5, 16),
            ("standard", 4): paris(2026, 5, 4, 16),
        },
    ),
    # Friday 27 March 2026 15:00 CET; clocks go forward on Sunday 29 March.
    "march-dst-friday-1500": (
        DEFAULT,
        paris(2026, 3, 27, 15),
        {
            ("premier", 1): utc(2026, 3, 27, 15),  # 16:00 CET
            ("premier", 2): utc(2026, 3, 27, 16),
            ("premier", 3): utc(2026, 3, 30, 13),  # Mon 15:00 CEST
            ("premier", 4): utc(2026, 4, 1, 13),  # 1 + 8 + 8 + 7h: Wed 15:00 CEST
            ("standard", 1): utc(2026, 3, 30, 9),  # Mon 11:00 CEST
            ("standard", 2): utc(2026, 3, 30, 13),
            ("standard", 3): utc(2026, 3, 31, 13),
            ("standard", 4): utc(2026, 3, 30, 14),  # Mon 16:00 CEST
        },
    ),
    # Sunday 29 March 2026 01:30 CET, half an hour before 02:00 CET becomes 03:00 CEST:
    # one real hour later the wall clock reads 03:30.
    "march-dst-night-0130": (
        DEFAULT,
        paris(2026, 3, 29, 1, 30),
        {
            ("premier", 1): paris(2026, 3, 29, 3, 30),
            ("premier", 2): paris(2026, 3, 29, 4, 30),
            ("premier", 3): paris(2026, 3, 30, 16),
            ("premier", 4): paris(2026, 4, 1, 16),
            ("standard", 1): paris(2026, 3, 30, 12),
            ("standard", 2): paris(2026, 3, 30, 16),
            ("standard", 3): paris(2026, 3, 31, 16),
            ("standard", 4): paris(2026, 3, 30, 16),
        },
    ),
    # Sunday 25 October 2026 01:30 CEST (23:30 UTC Saturday); at 03:00 CEST the clocks
    # go back to 02:00 CET, so 02:00-03:00 happens twice: UTC tells them apart.
    "october-dst-night-0130": (
        DEFAULT,
        paris(2026, 10, 25, 1, 30),
        {
            ("premier", 1): utc(2026, 10, 25, 0, 30),  # 02:30 CEST
            ("premier", 2): utc(2026, 10, 25, 1, 30),  # 02:30 CET, the second one
            ("premier", 3): paris(2026, 10, 26, 16),
            ("premier", 4): paris(2026, 10, 28, 16),
            ("standard", 1): paris(2026, 10, 26, 12),
            ("standard", 2): paris(2026, 10, 26, 16),
            ("standard", 3): paris(2026, 10, 27, 16),
            ("standard", 4): paris(2026, 10, 26, 16),
        },
    ),
    # R-TZ literal reading: fixed UTC+2 all year, the R-CLOCK example's Friday.
    "fixed-utc+2-friday-1500": (
        FIXED,
        plus2(2026, 1, 16, 15),
        {
            ("premier", 1): plus2(2026, 1, 16, 16),
            ("premier", 2): plus2(2026, 1, 16, 17),
            ("premier", 3): plus2(2026, 1, 19, 15),
            ("premier", 4): plus2(2026, 1, 21, 15),
            ("standard", 1): plus2(2026, 1, 19, 11),
            ("standard", 2): plus2(2026, 1, 19, 15),
            ("standard", 3): plus2(2026, 1, 20, 15),
            ("standard", 4): plus2(2026, 1, 19, 16),
        },
    ),
}


def cases_for(level: int) -> list[Any]:
    return [
        pytest.param(Case(moment, cal, received, tier, lvl, due), id=f"{moment}-{tier}")
        for moment, (cal, received, table) in MOMENTS.items()
        for (tier, lvl), due in table.items()
        if lvl == level
    ]


def check(case: Case) -> None:
    got = response_due(case.received, case.tier, case.level, case.calendar)
    assert got == case.due, (
        f"{case.moment} {case.tier} L{case.level}: got {got.astimezone(case.calendar.zone)}, "
        f"want {case.due.astimezone(case.calendar.zone)}"
    )
    assert got.tzinfo is UTC


def test_table_covers_every_tier_and_level_at_every_moment() -> None:
    for _, _, table in MOMENTS.values():
        assert set(table) == {(t, lvl) for t in ("premier", "standard") for lvl in (1, 2, 3, 4)}


@pytest.mark.parametrize("case", cases_for(1))
def test_P_L1_urgent_premier_1h_standard_4h(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", cases_for(2))
def test_P_L2_high_premier_2h_standard_8h(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", cases_for(3))
def test_P_L3_normal_premier_8h_standard_16h(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", cases_for(4))
def test_P_L4_low_premier_24h_standard_next_business_day(case: Case) -> None:
    check(case)


# ---------------------------------------------------------------------------------------
# R-CLOCK
# ---------------------------------------------------------------------------------------


def test_R_CLOCK_standard_l1_friday_1500_due_monday_1100() -> None:
    # The first example written in R-CLOCK.
    assert response_due(paris(2026, 1, 16, 15), "standard", 1, DEFAULT) == paris(2026, 1, 19, 11)


def test_R_CLOCK_premier_l1_saturday_1000_due_saturday_1100() -> None:
    # The second example written in R-CLOCK.
    assert response_due(paris(2026, 1, 17, 10), "premier", 1, DEFAULT) == paris(2026, 1, 17, 11)


def test_R_CLOCK_weekday_nights_are_covered_for_nobody() -> None:
    tuesday_2000 = paris(2026, 1, 13, 20)
    assert response_due(tuesday_2000, "premier", 1, DEFAULT) == paris(2026, 1, 14, 9)
    assert response_due(tuesday_2000, "standard", 1, DEFAULT) == paris(2026, 1, 14, 12)
    for weekend in (False, True):
        assert not DEFAULT.is_covered(tuesday_2000, weekend=weekend)
        assert not DEFAULT.is_covered(paris(2026, 1, 14, 7, 59), weekend=weekend)


def test_R_CLOCK_premier_l3_does_not_count_the_weekend() -> None:
    # Premier L3/L4 count business days only; L1/L2 also count the weekend window.
    saturday = paris(2026, 1, 17, 10)
    assert response_due(saturday, "premier", 3, DEFAULT) == paris(2026, 1, 19, 16)
    assert response_due(saturday, "premier", 2, DEFAULT) == paris(2026, 1, 17, 12)


def test_R_CLOCK_standard_never_counts_the_weekend() -> None:
    assert response_due(paris(2026, 1, 17, 10), "standard", 1, DEFAULT) == paris(2026, 1, 19, 12)


def test_R_CLOCK_weekend_levels_are_configurable() -> None:
    cal = CoverageCalendar.from_settings(SlaSettings(weekend_levels=(1, 2, 3)))
    assert response_due(paris(2026, 1, 17, 10), "premier", 3, cal) == paris(2026, 1, 17, 18)
    assert response_due(paris(2026, 1, 17, 10), "premier", 4, cal) == paris(2026, 1, 21, 16)


def test_R_CLOCK_weekend_tiers_are_configurable() -> None:
    cal = CoverageCalendar.from_settings(SlaSettings(weekend_tiers=("premier", "standard")))
    assert response_due(paris(2026, 1, 17, 10), "standard", 1, cal) == paris(2026, 1, 17, 14)


def test_R_CLOCK_unknown_tier_or_level_is_refused() -> None:
    with pytest.raises(ValueError, match="tier"):
        response_due(paris(2026, 1, 14, 9), "gold", 1, DEFAULT)
    with pytest.raises(ValueError, match="level"):
        response_due(paris(2026, 1, 14, 9), "premier", 5, DEFAULT)


def test_R_CLOCK_naive_receipt_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        response_due(datetime(2026, 1, 14, 9), "premier", 1, DEFAULT)


# ---------------------------------------------------------------------------------------
# P-COV-BD and P-COV-WE
# ---------------------------------------------------------------------------------------


def test_P_COV_BD_monday_to_friday_0800_to_1600() -> None:
    week = list(DEFAULT.covered_intervals(paris(2026, 1, 12), paris(2026, 1, 19), weekend=False))
    assert week == [(paris(2026, 1, d, 8), paris(2026, 1, d, 16)) for d in range(12, 17)]
    assert DEFAULT.is_covered(paris(2026, 1, 12, 8), weekend=False)
    assert not DEFAULT.is_covered(paris(2026, 1, 12, 16), weekend=False)  # end is exclusive
    assert not DEFAULT.is_covered(paris(2026, 1, 17, 12), weekend=False)


def test_P_COV_WE_premier_l1_saturday_1000_due_saturday_1100() -> None:
    assert response_due(paris(2026, 1, 17, 10), "premier", 1, DEFAULT) == paris(2026, 1, 17, 11)


def test_P_COV_WE_window_is_friday_1600_to_monday_0800_joined_to_business_days() -> None:
    week = list(DEFAULT.covered_intervals(paris(2026, 1, 12), paris(2026, 1, 24), weekend=True))
    assert week == [
        (paris(2026, 1, 12), paris(2026, 1, 12, 16)),  # the previous weekend's tail
        (paris(2026, 1, 13, 8), paris(2026, 1, 13, 16)),
        (paris(2026, 1, 14, 8), paris(2026, 1, 14, 16)),
        (paris(2026, 1, 15, 8), paris(2026, 1, 15, 16)),
        (paris(2026, 1, 16, 8), paris(2026, 1, 19, 16)),  # Fri 08:00 -> Mon 16:00 unbroken
        (paris(2026, 1, 20, 8), paris(2026, 1, 20, 16)),
        (paris(2026, 1, 21, 8), paris(2026, 1, 21, 16)),
        (paris(2026, 1, 22, 8), paris(2026, 1, 22, 16)),
        (paris(2026, 1, 23, 8), paris(2026, 1, 24)),
    ]


def test_P_COV_WE_premier_l1_monday_0730_runs_on_into_business_hours() -> None:
    assert response_due(paris(2026, 1, 19, 7, 30), "premier", 1, DEFAULT) == paris(
        2026, 1, 19, 8, 30
    )
    # Standard waits for 08:00.
    assert response_due(paris(2026, 1, 19, 7, 30), "standard", 1, DEFAULT) == paris(2026, 1, 19, 12)


def test_P_COV_WE_sunday_night_premier_l2_due_early_monday() -> None:
    assert response_due(paris(2026, 1, 18, 23), "premier", 2, DEFAULT) == paris(2026, 1, 19, 1)


def test_P_COV_WE_is_64_real_hours_on_an_ordinary_weekend() -> None:
    got = DEFAULT.covered_between(paris(2026, 1, 16, 16), paris(2026, 1, 19, 8), weekend=True)
    assert got == timedelta(hours=64)


# ---------------------------------------------------------------------------------------
# R-TZ: Europe/Paris by default, daylight saving, fixed offsets
# ---------------------------------------------------------------------------------------


def test_R_TZ_default_zone_is_europe_paris() -> None:
    assert SlaSettings().timezone == "Europe/Paris"
    # 08:00 local all year: 07:00 UTC in winter, 06:00 UTC in summer.
    assert DEFAULT.clock_start(utc(2026, 1, 14, 0), weekend=False) == utc(2026, 1, 14, 7)
    assert DEFAULT.clock_start(utc(2026, 7, 15, 0), weekend=False) == utc(2026, 7, 15, 6)


def test_R_TZ_march_weekend_window_holds_63_real_hours() -> None:
    got = DEFAULT.covered_between(paris(2026, 3, 27, 16), paris(2026, 3, 30, 8), weekend=True)
    assert got == timedelta(hours=63)


def test_R_TZ_october_weekend_window_holds_65_real_hours() -> None:
    got = DEFAULT.covered_between(paris(2026, 10, 23, 16), paris(2026, 10, 26, 8), weekend=True)
    assert got == timedelta(hours=65)


@pytest.mark.parametrize(
    ("friday", "monday"),
    [(date(2026, 3, 27), date(2026, 3, 30)), (date(2026, 10, 23), date(2026, 10, 26))],
    ids=["march", "october"],
)
def test_R_TZ_business_day_is_8_real_hours_either_side_of_the_change(
    friday: date, monday: date
) -> None:
    for day in (friday, monday):
        (interval,) = DEFAULT.day_intervals(day, weekend=False)
        assert interval == (
            datetime.combine(day, time(8), tzinfo=PARIS),
            datetime.combine(day, time(16), tzinfo=PARIS),
        )
        assert interval[1] - interval[0] == timedelta(hours=8)
    # The UTC offsets differ by an hour across the change, so the UTC windows move.
    (fri,) = DEFAULT.day_intervals(friday, weekend=False)
    (mon,) = DEFAULT.day_intervals(monday, weekend=False)
    assert fri[0].time() != mon[0].time()


def test_R_TZ_standard_l3_across_the_march_change_counts_16_real_hours() -> None:
    received = paris(2026, 3, 27, 8)  # 07:00 UTC
    due = response_due(received, "standard", 3, DEFAULT)
    assert due == utc(2026, 3, 30, 14)  # Monday 16:00 CEST
    assert DEFAULT.covered_between(received, due, weekend=False) == timedelta(hours=16)


def test_R_TZ_premier_l2_across_the_october_fold_counts_real_time() -> None:
    # 01:30 CEST + 2 real hours: the wall clock reads 02:30 (CET), only 1 hour later.
    due = response_due(paris(2026, 10, 25, 1, 30), "premier", 2, DEFAULT)
    assert due == utc(2026, 10, 25, 1, 30)
    assert due.astimezone(PARIS).strftime("%H:%M %Z") == "02:30 CET"


def test_R_TZ_fixed_offset_zone_etc_gmt_minus_2_is_utc_plus_2_all_year() -> None:
    assert FIXED.zone.utcoffset(datetime(2026, 1, 1)) == timedelta(hours=2)
    # R-CLOCK example in the literal fixed zone.
    assert response_due(plus2(2026, 1, 16, 15), "standard", 1, FIXED) == utc(2026, 1, 19, 9)
    # Same UTC instant, different answers: winter Monday 06:30 UTC is 08:30 at UTC+2 but
    # 07:30 in Paris (CET), where the clock waits until 08:00.
    received = utc(2026, 1, 12, 6, 30)
    assert response_due(received, "standard", 1, FIXED) == utc(2026, 1, 12, 10, 30)
    assert response_due(received, "standard", 1, DEFAULT) == utc(2026, 1, 12, 11)
    # In summer Paris is also UTC+2: both agree.
    summer = utc(2026, 7, 13, 6, 30)
    assert response_due(summer, "standard", 1, FIXED) == response_due(
        summer, "standard", 1, DEFAULT
    )


def test_R_TZ_configured_holiday_dates_have_no_coverage() -> None:
    assert not WITH_HOLIDAYS.is_covered(paris(2026, 5, 1, 12), weekend=False)
    assert DEFAULT.is_covered(paris(2026, 5, 1, 12), weekend=False)
    assert WITH_HOLIDAYS.holiday_name(date(2026, 5, 1)) == "public holiday (configured)"
    assert WITH_HOLIDAYS.holiday_name(date(2026, 5, 4)) is None


def test_R_TZ_country_holidays_come_from_the_holidays_package() -> None:
    assert FRANCE.holiday_name(date(2026, 5, 1)) == "Labor Day"
    assert FRANCE.holiday_name(date(2026, 5, 14)) == "Ascension Day"
    assert FRANCE.holiday_name(date(2026, 5, 13)) is None
    # Ascension Thursday 14 May 2026: Standard L1 on Wednesday 15:00 jumps to Friday.
    assert response_due(paris(2026, 5, 13, 15), "standard", 1, FRANCE) == paris(2026, 5, 15, 11)


def test_R_TZ_country_holidays_are_loaded_once_per_year(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = calendar_module.holidays_lib.country_holidays

    def counting(*args: object, **kwargs: object) -> object:
        if "years" in kwargs:
            calls.append(kwargs["years"])  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(calendar_module.holidays_lib, "country_holidays", counting)
    cal = CoverageCalendar.from_settings(SlaSettings(holiday_country="FR"))
    assert calls == []  # nothing loaded until a date is asked about
    for month in range(1, 13):
        response_due(paris(2026, month, 10, 9), "premier", 4, cal)
    assert calls == [2026]
    cal.holiday_name(date(2027, 1, 1))
    assert calls == [2026, 2027]


def test_R_TZ_holiday_subdivision_is_honoured() -> None:
    # Good Friday is a holiday in Alsace-Moselle (subdivision 57) but not in Paris.
    alsace = CoverageCalendar.from_settings(
        SlaSettings(holiday_country="FR", holiday_subdivision="57")
    )
    assert alsace.holiday_name(date(2026, 4, 3)) is not None
    assert FRANCE.holiday_name(date(2026, 4, 3)) is None


def test_R_TZ_weekday_holiday_premier_l1_waits_for_the_next_business_day() -> None:
    # Easter Monday: the weekend window ends 08:00, then nothing until Tuesday 08:00.
    assert response_due(paris(2026, 4, 6, 10), "premier", 1, WITH_HOLIDAYS) == paris(2026, 4, 7, 9)
    assert response_due(paris(2026, 4, 6, 7), "premier", 2, WITH_HOLIDAYS) == paris(2026, 4, 7, 9)
    assert response_due(paris(2026, 4, 5, 23, 30), "premier", 1, WITH_HOLIDAYS) == paris(
        2026, 4, 6, 0, 30
    )


def test_R_TZ_weekend_holiday_keeps_premier_weekend_coverage() -> None:
    # Assumption Day, Saturday 15 August 2026.
    assert FRANCE.holiday_name(date(2026, 8, 15)) == "Assumption Day"
    assert response_due(paris(2026, 8, 15, 10), "premier", 1, FRANCE) == paris(2026, 8, 15, 11)


def test_R_TZ_holidays_can_be_set_to_remove_weekend_coverage_too() -> None:
    strict = CoverageCalendar.from_settings(
        SlaSettings(holiday_country="FR", weekend_covers_holidays=False)
    )
    # Saturday 15 August lost, Sunday still covered: 10:00 Saturday -> Sunday 01:00.
    assert response_due(paris(2026, 8, 15, 10), "premier", 1, strict) == paris(2026, 8, 16, 1)


# ---------------------------------------------------------------------------------------
# R-NBD
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (paris(2026, 1, 14, 9), paris(2026, 1, 15, 16)),  # Wednesday -> Thursday
        (paris(2026, 1, 14, 20), paris(2026, 1, 15, 16)),  # Wednesday night
        (paris(2026, 1, 12, 7), paris(2026, 1, 13, 16)),  # Monday before opening: Tuesday
        (paris(2026, 1, 13, 0, 30), paris(2026, 1, 14, 16)),  # just after midnight
        (paris(2026, 1, 16, 15, 59), paris(2026, 1, 19, 16)),  # Friday -> Monday
        (paris(2026, 1, 17, 10), paris(2026, 1, 19, 16)),  # Saturday -> Monday
        (paris(2026, 1, 18, 23, 59), paris(2026, 1, 19, 16)),  # Sunday -> Monday
    ],
    ids=["wed-0900", "wed-2000", "mon-0700", "tue-0030", "fri-1559", "sat-1000", "sun-2359"],
)
def test_R_NBD_end_of_coverage_on_first_business_day_after_arrival(
    received: datetime, due: datetime
) -> None:
    assert response_due(received, "standard", 4, DEFAULT) == due
    assert DEFAULT.next_business_day_end(received) == due


def test_R_NBD_skips_holidays() -> None:
    # Thursday 30 April 2026, 1 May a holiday: Monday 4 May 16:00.
    assert response_due(paris(2026, 4, 30, 15), "standard", 4, WITH_HOLIDAYS) == paris(
        2026, 5, 4, 16
    )
    assert response_due(paris(2026, 4, 30, 15), "standard", 4, DEFAULT) == paris(2026, 5, 1, 16)


def test_R_NBD_day_of_arrival_is_read_in_the_policy_zone() -> None:
    # 23:30 UTC Tuesday is already Wednesday 00:30 in Paris: due Thursday.
    assert DEFAULT.next_business_day_end(utc(2026, 1, 13, 23, 30)) == paris(2026, 1, 15, 16)


def test_R_NBD_thresholds_are_fractions_of_the_covered_time_until_the_deadline() -> None:
    received = paris(2026, 1, 16, 15)  # 1h Friday + 8h Monday until Monday 16:00
    assert target_covered_time(received, "standard", 4, DEFAULT) == timedelta(hours=9)
    assert threshold_at(received, "standard", 4, 0.5, DEFAULT) == paris(2026, 1, 19, 11, 30)
    assert threshold_at(received, "standard", 4, 1.0, DEFAULT) == paris(2026, 1, 19, 16)
    assert elapsed_fraction(received, paris(2026, 1, 19, 11, 30), "standard", 4, DEFAULT) == 0.5
    assert elapsed_fraction(
        received, paris(2026, 1, 19, 8, 48), "standard", 4, DEFAULT
    ) == pytest.approx(0.2)


# ---------------------------------------------------------------------------------------
# R-ACK: the clock starts at receipt
# ---------------------------------------------------------------------------------------


def test_R_ACK_clock_starts_at_the_instant_of_receipt_not_the_hour() -> None:
    received = paris(2026, 1, 14, 9, 17) + timedelta(seconds=23)
    assert response_due(received, "premier", 1, DEFAULT) == received + timedelta(hours=1)
    assert elapsed_fraction(received, received, "premier", 1, DEFAULT) == 0.0
    half = received + timedelta(minutes=30)
    assert elapsed_fraction(received, half, "premier", 1, DEFAULT) == 0.5


def test_R_ACK_uncovered_receipt_starts_the_clock_at_next_coverage() -> None:
    timeline = explain(paris(2026, 1, 13, 20), "standard", 2, DEFAULT)
    assert timeline.received == paris(2026, 1, 13, 20)
    assert timeline.clock_start == paris(2026, 1, 14, 8)
    assert timeline.deadline == paris(2026, 1, 14, 16)


def test_R_ACK_elapsed_fraction_stops_only_where_the_caller_says() -> None:
    # Overnight time does not count: 15:00 -> next day 09:00 is 2 covered hours of 4.
    got = elapsed_fraction(paris(2026, 1, 13, 15), paris(2026, 1, 14, 9), "standard", 1, DEFAULT)
    assert got == 0.5
    assert (
        elapsed_fraction(paris(2026, 1, 13, 15), paris(2026, 1, 15, 9), "standard", 1, DEFAULT)
        == 2.5
    )


# ---------------------------------------------------------------------------------------
# Thresholds and explanations
# ---------------------------------------------------------------------------------------


def test_threshold_at_fractions_of_a_duration_target() -> None:
    received = paris(2026, 1, 16, 15)  # Standard L1: 1h Friday, 3h Monday
    assert threshold_at(received, "standard", 1, 0.0, DEFAULT) == received
    assert threshold_at(received, "standard", 1, 0.25, DEFAULT) == paris(2026, 1, 16, 16)
    assert threshold_at(received, "standard", 1, 0.5, DEFAULT) == paris(2026, 1, 19, 9)
    assert threshold_at(received, "standard", 1, 0.8, DEFAULT) == paris(2026, 1, 19, 10, 12)
    assert threshold_at(received, "standard", 1, 1.5, DEFAULT) == paris(2026, 1, 19, 13)
    with pytest.raises(ValueError, match="fraction"):
        threshold_at(received, "standard", 1, -0.1, DEFAULT)


def test_explain_lists_counted_and_skipped_spans_with_reasons() -> None:
    timeline = explain(paris(2026, 4, 30, 15), "standard", 1, FRANCE)
    assert timeline.target == "4h"
    assert not timeline.weekend
    assert [(p.start, p.end, p.duration) for p in timeline.counted] == [
        (paris(2026, 4, 30, 15), paris(2026, 4, 30, 16), timedelta(hours=1)),
        (paris(2026, 5, 4, 8), paris(2026, 5, 4, 11), timedelta(hours=3)),
    ]
    (gap,) = timeline.skipped
    assert (gap.start, gap.end) == (paris(2026, 4, 30, 16), paris(2026, 5, 4, 8))
    assert gap.reasons == ("holiday: Labor Day", "weekend")
    assert timeline.covered_total == timedelta(hours=4)
    assert [(t.fraction, t.at) for t in timeline.thresholds] == [
        (0.5, paris(2026, 5, 4, 9)),
        (0.8, paris(2026, 5, 4, 10, 12)),
        (1.0, paris(2026, 5, 4, 11)),
    ]
    assert timeline.deadline == paris(2026, 5, 4, 11)


def test_explain_names_night_and_weekend_gaps() -> None:
    timeline = explain(paris(2026, 1, 15, 15), "standard", 3, DEFAULT)  # 16h from Thursday
    assert [(g.start, g.end, g.reasons) for g in timeline.skipped] == [
        (paris(2026, 1, 15, 16), paris(2026, 1, 16, 8), ("night",)),
        (paris(2026, 1, 16, 16), paris(2026, 1, 19, 8), ("weekend",)),
    ]
    assert timeline.deadline == paris(2026, 1, 19, 15)
    assert timeline.covered_total == timedelta(hours=16)


def test_render_text_shows_policy_zone_and_utc() -> None:
    text = render_text(explain(paris(2026, 5, 1, 10), "premier", 1, FRANCE))
    lines = text.splitlines()
    assert lines[0] == (
        "Premier L1: target 1h, counting business days + weekend window (Europe/Paris)"
    )
    assert "received     Fri 2026-05-01 10:00 CEST (2026-05-01 08:00 UTC)" in text
    assert "clock start  Fri 2026-05-01 16:00 CEST (2026-05-01 14:00 UTC)" in text
    assert "[6h00m]  holiday: Labor Day" in text
    assert "deadline     Fri 2026-05-01 17:00 CEST (2026-05-01 15:00 UTC)" in lines[-1]
    # Spans appear in time order: the skipped holiday morning before the counted hour.
    assert text.index("skipped") < text.index("counted")
    # Another zone can be asked for.
    assert "Fri 2026-05-01 08:00 UTC (2026-05-01 08:00 UTC)" in render_text(
        explain(paris(2026, 5, 1, 10), "premier", 1, FRANCE), "UTC"
    )


def test_calendar_with_no_coverage_ahead_raises_instead_of_looping() -> None:
    mondays = tuple(date(2026, 1, 5) + timedelta(weeks=n) for n in range(70))
    cal = CoverageCalendar.from_settings(SlaSettings(business_days=("mon",), holidays=mondays))
    with pytest.raises(NoCoverageError):
        response_due(paris(2026, 1, 5, 9), "standard", 1, cal)
    with pytest.raises(NoCoverageError):
        response_due(paris(2026, 1, 5, 9), "standard", 4, cal)


def test_business_days_are_configurable() -> None:
    sunday_to_thursday = CoverageCalendar.from_settings(
        SlaSettings(
            business_days=("sun", "mon", "tue", "wed", "thu"),
            weekend_start="thu 16:00",
            weekend_end="sun 08:00",
        )
    )
    # Thursday 15:00 Standard L1: 1h Thursday, 3h Sunday.
    assert response_due(paris(2026, 1, 15, 15), "standard", 1, sunday_to_thursday) == paris(
        2026, 1, 18, 11
    )
    assert response_due(paris(2026, 1, 16, 10), "premier", 1, sunday_to_thursday) == paris(
        2026, 1, 16, 11
    )


# ---------------------------------------------------------------------------------------
# Settings: defaults equal the policy; impossible values are refused, naming the field
# ---------------------------------------------------------------------------------------


def test_settings_defaults_are_the_policy() -> None:
    s = SlaSettings()
    assert s.business_weekdays == frozenset(range(5))
    assert (s.business_start, s.business_end) == (time(8), time(16))
    assert s.weekend_window == ((4, time(16)), (0, time(8)))
    assert [s.target("premier", lvl) for lvl in (1, 2, 3)] == [
        timedelta(hours=1),
        timedelta(hours=2),
        timedelta(hours=8),
    ]
    assert s.target("premier", 4) == timedelta(hours=24)
    assert [s.target("standard", lvl) for lvl in (1, 2, 3)] == [
        timedelta(hours=4),
        timedelta(hours=8),
        timedelta(hours=16),
    ]
    assert s.target("standard", 4) == "next_business_day"
    assert [s.weekend_covered("premier", lvl) for lvl in (1, 2, 3, 4)] == [True, True, False, False]
    assert not any(s.weekend_covered("standard", lvl) for lvl in (1, 2, 3, 4))


def test_settings_fields_are_real_types_with_defaults_for_the_loader() -> None:
    for cls in (SlaSettings, PremierTargets, StandardTargets):
        for f in dataclasses.fields(cls):
            assert not isinstance(f.type, str), f"{cls.__name__}.{f.name} annotation is a string"
            has_default = f.default is not dataclasses.MISSING
            assert has_default or f.default_factory is not dataclasses.MISSING, f.name
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1h", timedelta(hours=1)),
        ("90m", timedelta(minutes=90)),
        ("2h30m", timedelta(hours=2, minutes=30)),
        (" 24H ", timedelta(hours=24)),
    ],
)
def test_settings_duration_spellings(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"timezone": "Europe"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"business_start": time(16), "business_end": time(8)}, "business_end"),
        ({"business_start": time(8), "business_end": time(8)}, "business_end"),
        ({"business_days": ()}, "business_days"),
        ({"business_days": ("mon", "funday")}, "business_days"),
        ({"business_days": ("mon", "monday")}, "business_days"),
        ({"weekend_start": "friday"}, "weekend_start"),
        ({"weekend_end": "mon 25:00"}, "weekend_end"),
        ({"weekend_end": "fri 16:00"}, "weekend_end"),
        ({"weekend_levels": (1, 5)}, "weekend_levels"),
        ({"weekend_tiers": ("gold",)}, "weekend_tiers"),
        ({"holiday_country": "XX"}, "holiday_country"),
        ({"holiday_country": "FR", "holiday_subdivision": "ZZ"}, "holiday_subdivision"),
        ({"holiday_subdivision": "57"}, "holiday_subdivision"),
    ],
)
def test_settings_reject_impossible_values_naming_the_field(
    kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigValueError) as info:
        SlaSettings(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize("bad", ["1x", "", "h", "1.5h", "0h", "0m", "1d", "soon"])
def test_settings_reject_bad_target_durations_naming_the_level(bad: str) -> None:
    with pytest.raises(ConfigValueError) as info:
        Targets("1h", bad, "8h", "24h")
    assert info.value.field == "l2"
    assert repr(bad) in info.value.message


def test_settings_accept_next_business_day_for_any_level() -> None:
    targets = PremierTargets(l1="next_business_day")
    assert targets.target(1) == "next_business_day"
    cal = CoverageCalendar.from_settings(SlaSettings(premier=targets))
    assert response_due(paris(2026, 1, 17, 10), "premier", 1, cal) == paris(2026, 1, 19, 16)


def test_settings_load_from_toml_through_the_generic_loader() -> None:
    import tomllib

    from mailgate.errors import ConfigError
    from mailgate.settings_loader import build

    data = tomllib.loads(
        """
        timezone = "Etc/GMT-2"
        business_start = 09:00:00
        holidays = [2026-05-01, 2026-12-25]
        holiday_country = "FR"
        weekend_levels = [1]
        [premier]
        l1 = "30m"
        l4 = "next_business_day"
        """
    )
    s = build(SlaSettings, data, "sla")
    assert s.business_start == time(9)
    assert s.holidays == (date(2026, 5, 1), date(2026, 12, 25))
    assert s.target("premier", 1) == timedelta(minutes=30)
    assert s.target("premier", 2) == timedelta(hours=2)  # untouched levels keep the policy
    assert s.target("premier", 4) == "next_business_day"
    assert s.standard == SlaSettings().standard
    with pytest.raises(ConfigError) as info:
        build(SlaSettings, {"premier": {"l1": "1x"}}, "sla")
    assert info.value.key == "sla.premier.l1"
    with pytest.raises(ConfigError) as info:
        build(SlaSettings, {"business_end": "07:00"}, "sla")
    assert info.value.key == "sla.business_end"
