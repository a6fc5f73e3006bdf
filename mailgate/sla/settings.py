"""The ``[sla]`` settings: coverage windows, holidays and response targets (POLICY.md 3-5).

Every default is the reading of POLICY.md that mailgate applies; a deployment changes
them in config, never in code. Impossible values are refused here, at load time, with a
:class:`~mailgate.errors.ConfigValueError` naming the field, so the SLA maths never has
to guess.

This module deliberately does not use ``from __future__ import annotations``: the
generic loader reads ``dataclasses.fields(...)[i].type`` and needs real types there.
"""

import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Final, Literal

import holidays as holidays_lib

from mailgate.errors import ConfigValueError

NEXT_BUSINESS_DAY: Final = "next_business_day"
"""The target spelling for R-NBD: end of coverage on the first business day after arrival."""

TIERS: Final = ("standard", "premier")
LEVELS: Final = (1, 2, 3, 4)

Target = timedelta | Literal["next_business_day"]

_WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_ALIASES: Final = {
    **{name: i for i, name in enumerate(_WEEKDAYS)},
    **{
        name: i
        for i, name in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
}
_DURATION_RE: Final = re.compile(r"(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?")
_WEEK_POINT_RE: Final = re.compile(r"(?P<day>[A-Za-z]+)\s+(?P<hh>\d{1,2}):(?P<mm>\d{2})")


def weekday_number(name: str) -> int:
    """Monday=0 … Sunday=6 for ``mon``/``monday`` (any case); ValueError otherwise."""
    try:
        return _WEEKDAY_ALIASES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown weekday {name!r}; use one of {', '.join(_WEEKDAYS)}") from None


def parse_duration(text: str) -> timedelta:
    """``"1h"``, ``"90m"``, ``"2h30m"`` -> timedelta; ValueError if unparsable or not > 0."""
    match = _DURATION_RE.fullmatch(text.strip().lower())
    if match is None or not (match["h"] or match["m"]):
        raise ValueError(
            f"cannot read duration {text!r}; write hours and/or minutes such as "
            f"'1h', '90m', '2h30m', or '{NEXT_BUSINESS_DAY}'"
        )
    duration = timedelta(hours=int(match["h"] or 0), minutes=int(match["m"] or 0))
    if duration <= timedelta(0):
        raise ValueError(f"duration {text!r} must be greater than zero")
    return duration


def parse_target(text: str) -> Target:
    """A response target: a covered-time duration, or ``next_business_day`` (R-NBD)."""
    if text.strip().lower() == NEXT_BUSINESS_DAY:
        return NEXT_BUSINESS_DAY
    return parse_duration(text)


def parse_week_point(text: str) -> tuple[int, time]:
    """``"fri 16:00"`` -> (4, time(16, 0)): a weekday and a local wall-clock time."""
    match = _WEEK_POINT_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"cannot read {text!r}; write a weekday and a time such as 'fri 16:00'")
    hour, minute = int(match["hh"]), int(match["mm"])
    if hour > 23 or minute > 59:
        raise ValueError(f"{text!r} is not a time of day")
    return weekday_number(match["day"]), time(hour, minute)


@dataclass(frozen=True)
class Targets:
    """Response targets of one tier, per level (P-L1 … P-L4), counted in covered time.

    Each is a duration (``"1h"``, ``"90m"``, ``"2h30m"``) or ``"next_business_day"``.
    The policy's values per tier are the defaults of :class:`PremierTargets` and
    :class:`StandardTargets`.
    """

    l1: str
    l2: str
    l3: str
    l4: str

    def __post_init__(self) -> None:
        for name in ("l1", "l2", "l3", "l4"):
            try:
                parse_target(getattr(self, name))
            except ValueError as exc:
                raise ConfigValueError(name, str(exc)) from None

    def text(self, level: int) -> str:
        """The target as written in config for ``level`` (1-4)."""
        _check_level(level)
        value: str = getattr(self, f"l{level}")
        return value

    def target(self, level: int) -> Target:
        """The parsed target for ``level``: a timedelta or ``"next_business_day"``."""
        return parse_target(self.text(level))


@dataclass(frozen=True)
class PremierTargets(Targets):
    """``[sla.premier]``: P-L1 1h, P-L2 2h, P-L3 8h, P-L4 24h; any level may be overridden."""

    l1: str = "1h"
    l2: str = "2h"
    l3: str = "8h"
    l4: str = "24h"


@dataclass(frozen=True)
class StandardTargets(Targets):
    """``[sla.standard]``: P-L1 4h, P-L2 8h, P-L3 16h, P-L4 next business day (R-NBD)."""

    l1: str = "4h"
    l2: str = "8h"
    l3: str = "16h"
    l4: str = NEXT_BUSINESS_DAY


@dataclass(frozen=True)
class SlaSettings:
    """Coverage calendar and targets (P-COV-BD, P-COV-WE, P-L1..P-L4, R-CLOCK, R-TZ, R-NBD).

    Wall-clock times (``business_start``/``business_end``, the weekend window) are local
    times in ``timezone``; durations are real elapsed time inside covered intervals.
    """

    # R-TZ: "Central European Time" read as the civil time of Paris (08:00 local all year).
    # A deployment wanting the literal "UTC+2" sets "Etc/GMT-2".
    timezone: str = "Europe/Paris"
    # P-COV-BD: Monday to Friday, 08:00-16:00.
    business_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    business_start: time = time(8, 0)
    business_end: time = time(16, 0)
    # P-COV-WE: Friday 16:00 to Monday 08:00, for Premier L1 and L2 only.
    weekend_start: str = "fri 16:00"
    weekend_end: str = "mon 08:00"
    weekend_tiers: tuple[str, ...] = ("premier",)
    weekend_levels: tuple[int, ...] = (1, 2)
    # R-TZ: public holidays remove the business-day window of their date. Explicit dates,
    # and/or a country (and subdivision) calendar from the `holidays` package.
    holidays: tuple[date, ...] = ()
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    # A holiday that falls inside the weekend window (e.g. a Saturday, or a Friday after
    # 16:00) keeps the weekend coverage: P-COV-WE is its own Premier promise. Set False
    # to make holidays remove every kind of coverage on their date.
    weekend_covers_holidays: bool = True
    # P-L1..P-L4 targets per tier, in covered time ([sla.premier], [sla.standard]).
    premier: PremierTargets = field(default_factory=PremierTargets)
    standard: StandardTargets = field(default_factory=StandardTargets)

    def __post_init__(self) -> None:
        self._check_timezone()
        self._check_business_window()
        self._check_weekend_window()
        self._check_holiday_calendar()

    def _check_timezone(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise ConfigValueError(
                "timezone", f"unknown time zone {self.timezone!r} (e.g. 'Europe/Paris')"
            ) from None

    def _check_business_window(self) -> None:
        if not self.business_days:
            raise ConfigValueError("business_days", "at least one business day is needed")
        try:
            numbers = [weekday_number(day) for day in self.business_days]
        except ValueError as exc:
            raise ConfigValueError("business_days", str(exc)) from None
        if len(set(numbers)) != len(numbers):
            raise ConfigValueError("business_days", "a weekday is listed twice")
        if self.business_start >= self.business_end:
            raise ConfigValueError(
                "business_end",
                f"must be later than business_start ({self.business_start:%H:%M}), "
                f"got {self.business_end:%H:%M}",
            )

    def _check_weekend_window(self) -> None:
        points = {}
        for name in ("weekend_start", "weekend_end"):
            try:
                points[name] = parse_week_point(getattr(self, name))
            except ValueError as exc:
                raise ConfigValueError(name, str(exc)) from None
        if points["weekend_start"] == points["weekend_end"]:
            raise ConfigValueError("weekend_end", "the weekend window is empty")
        for tier in self.weekend_tiers:
            if tier not in TIERS:
                raise ConfigValueError(
                    "weekend_tiers", f"unknown tier {tier!r}; use {' or '.join(TIERS)}"
                )
        for level in self.weekend_levels:
            if level not in LEVELS:
                raise ConfigValueError("weekend_levels", f"level {level!r} is not 1, 2, 3 or 4")

    def _check_holiday_calendar(self) -> None:
        if self.holiday_country is None:
            if self.holiday_subdivision is not None:
                raise ConfigValueError(
                    "holiday_subdivision", "needs holiday_country to be set as well"
                )
            return
        supported = holidays_lib.list_supported_countries()
        if self.holiday_country not in supported:
            raise ConfigValueError(
                "holiday_country",
                f"no holiday calendar for {self.holiday_country!r} (ISO 3166 code, e.g. 'FR')",
            )
        subdivisions = supported[self.holiday_country]
        if self.holiday_subdivision is not None and self.holiday_subdivision not in subdivisions:
            raise ConfigValueError(
                "holiday_subdivision",
                f"{self.holiday_country} has no subdivision {self.holiday_subdivision!r}",
            )

    # Derived values, read by the calendar and the deadline maths.

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The policy zone (R-TZ)."""
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def business_weekdays(self) -> frozenset[int]:
        """Business days as weekday numbers, Monday=0."""
        return frozenset(weekday_number(day) for day in self.business_days)

    @property
    def weekend_window(self) -> tuple[tuple[int, time], tuple[int, time]]:
        """(start, end) of the weekly weekend window as (weekday, local time) pairs."""
        return parse_week_point(self.weekend_start), parse_week_point(self.weekend_end)

    def weekend_covered(self, tier: str, level: int) -> bool:
        """R-CLOCK: does this tier and level also count the weekend window (P-COV-WE)?"""
        _check_tier(tier)
        _check_level(level)
        return tier in self.weekend_tiers and level in self.weekend_levels

    def tier_targets(self, tier: str) -> Targets:
        """The targets of ``tier`` (``standard`` or ``premier``)."""
        _check_tier(tier)
        targets: Targets = getattr(self, tier)
        return targets

    def target(self, tier: str, level: int) -> Target:
        """The response target of ``tier`` at ``level`` (P-L1 … P-L4)."""
        return self.tier_targets(tier).target(level)


def _check_tier(tier: str) -> None:
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; use {' or '.join(TIERS)}")


def _check_level(level: int) -> None:
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; use 1, 2, 3 or 4")
