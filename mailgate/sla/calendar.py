"""Coverage windows in the policy zone: when the SLA clock runs (P-COV-BD, P-COV-WE, R-TZ).

The calendar answers "which instants are covered" for one of two clocks:

* ``weekend=False``: business-day coverage only (P-COV-BD), Mon-Fri 08:00-16:00 local;
* ``weekend=True``: business-day coverage plus the weekly weekend window (P-COV-WE),
  Fri 16:00 -> Mon 08:00 local.

Which clock a ticket runs on is R-CLOCK's business (see :mod:`mailgate.sla.deadlines`).

How the windows are built. Each window is defined in local wall-clock time of the
policy zone (R-TZ) and turned into real instants date by date; durations are always real
elapsed time between those instants. So an 08:00-16:00 day is 8 real hours on either
side of a daylight-saving change, and the weekend window holds 63 real hours on the
March change night and 65 on the October one (Europe/Paris). A local time that does not
exist (inside the spring-forward gap) is read as the instant the clocks jump over it; an
ambiguous one (autumn fold) as its first occurrence.

Holidays (explicit dates, and/or a country calendar from the ``holidays`` package, loaded
lazily once per year and cached):

* a holiday removes the business-day window of its date;
* it does not remove weekend coverage overlapping its date (``weekend_covers_holidays``,
  default True): P-COV-WE is a separate Premier promise, so Premier L1/L2 stay covered
  on a Saturday holiday, or on a Friday holiday after 16:00, or a Monday holiday before
  08:00;
* a weekday holiday is not turned into weekend coverage: outside the Fri 16:00-Mon 08:00
  window nobody is covered on it, Premier L1/L2 included (Easter Monday: covered until
  08:00 by the weekend window, then nothing until Tuesday 08:00).

Every instant returned is an aware datetime in UTC; every instant accepted must be aware
(any zone).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

import holidays as holidays_lib

from mailgate.errors import MailgateError
from mailgate.sla.settings import SlaSettings

Interval = tuple[datetime, datetime]

_DAY_SECONDS: Final = 86_400
_WEEK_SECONDS: Final = 7 * _DAY_SECONDS
# A calendar with no covered instant for this many consecutive days is misconfigured
# (say, every business day listed as a holiday); refuse rather than loop forever.
_MAX_EMPTY_DAYS: Final = 400
# Continuous coverage is split into pieces of at most this length so that a calendar
# covered around the clock still yields intervals (sums are unaffected).
_MAX_COALESCED: Final = timedelta(days=14)
_DAY_CACHE_LIMIT: Final = 20_000
_HOLIDAY_LANGUAGE: Final = "en_US"
_CONFIGURED_HOLIDAY: Final = "public holiday (configured)"


class NoCoverageError(MailgateError):
    """The calendar has no covered time ahead, so no deadline can be computed."""


@dataclass(frozen=True)
class Gap:
    """A span of uncovered time, with why it is not covered.

    ``reasons`` are, in date order: ``"night"`` (outside business hours on a business
    day), ``"weekend"`` (a non-business weekday), ``"holiday: <name>"``.
    """

    start: datetime
    end: datetime
    reasons: tuple[str, ...]

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


class CoverageCalendar:
    """Covered intervals of the policy zone's business days and weekend window."""

    def __init__(self, settings: SlaSettings) -> None:
        self.settings = settings
        self.zone = settings.zone
        self._business_weekdays = settings.business_weekdays
        self._business_span = (
            _seconds_of(settings.business_start),
            _seconds_of(settings.business_end),
        )
        self._weekend_spans = _weekend_spans_by_weekday(settings)
        self._weekend_covers_holidays = settings.weekend_covers_holidays
        self._explicit_holidays = frozenset(settings.holidays)
        self._country = settings.holiday_country
        self._subdivision = settings.holiday_subdivision
        self._country_years: dict[int, dict[date, str]] = {}
        self._day_cache: dict[tuple[date, bool], tuple[Interval, ...]] = {}

    @classmethod
    def from_settings(cls, settings: SlaSettings) -> CoverageCalendar:
        return cls(settings)

    # Holidays and business days.

    def holiday_name(self, day: date) -> str | None:
        """The holiday's name if ``day`` is a holiday (country name preferred), else None."""
        if self._country is not None:
            name = self._country_holidays(day.year).get(day)
            if name is not None:
                return name
        return _CONFIGURED_HOLIDAY if day in self._explicit_holidays else None

    def is_holiday(self, day: date) -> bool:
        return self.holiday_name(day) is not None

    def is_business_day(self, day: date) -> bool:
        """A business weekday (P-COV-BD) that is not a holiday."""
        return day.weekday() in self._business_weekdays and not self.is_holiday(day)

    def _country_holidays(self, year: int) -> dict[date, str]:
        names = self._country_years.get(year)
        if names is None:
            assert self._country is not None
            language = (
                _HOLIDAY_LANGUAGE
                if _HOLIDAY_LANGUAGE in _supported_languages(self._country)
                else None
            )
            loaded = holidays_lib.country_holidays(
                self._country, subdiv=self._subdivision, years=year, language=language
            )
            names = {day: str(name) for day, name in loaded.items()}
            self._country_years[year] = names
        return names

    # Covered time.

    def day_intervals(self, day: date, *, weekend: bool) -> tuple[Interval, ...]:
        """The covered intervals of local date ``day``, in order, disjoint, in UTC."""
        key = (day, weekend)
        cached = self._day_cache.get(key)
        if cached is not None:
            return cached
        spans: list[tuple[int, int]] = []
        holiday = self.is_holiday(day)
        if day.weekday() in self._business_weekdays and not holiday:
            spans.append(self._business_span)
        if weekend and (self._weekend_covers_holidays or not holiday):
            spans.extend(self._weekend_spans[day.weekday()])
        intervals: list[Interval] = []
        for first, last in _merge_spans(spans):
            start, end = self._instant(day, first), self._instant(day, last)
            if start < end:  # a span inside a spring-forward gap is empty
                intervals.append((start, end))
        result = tuple(intervals)
        if len(self._day_cache) >= _DAY_CACHE_LIMIT:
            self._day_cache.clear()
        self._day_cache[key] = result
        return result

    def covered_intervals(
        self, start: datetime, end: datetime | None = None, *, weekend: bool
    ) -> Iterator[Interval]:
        """The covered pieces of ``[start, end)``, in order; touching pieces are joined.

        With ``end=None`` the iterator is unbounded (it raises :class:`NoCoverageError`
        after ``_MAX_EMPTY_DAYS`` days with no coverage).
        """
        start = _as_utc(start, "start")
        stop = None if end is None else _as_utc(end, "end")
        for first, last in self._coalesced_from(start, weekend):
            if stop is not None and first >= stop:
                return
            yield first, (last if stop is None else min(last, stop))

    def covered_between(self, start: datetime, end: datetime, *, weekend: bool) -> timedelta:
        """Covered time inside ``[start, end)``; zero if ``end <= start``."""
        total = timedelta(0)
        if _as_utc(end, "end") <= _as_utc(start, "start"):
            return total
        for first, last in self.covered_intervals(start, end, weekend=weekend):
            total += last - first
        return total

    def add_covered(self, start: datetime, duration: timedelta, *, weekend: bool) -> datetime:
        """The instant at which ``duration`` of covered time has passed since ``start``.

        If ``start`` is uncovered the clock starts at the next covered instant; so
        ``add_covered(start, timedelta(0))`` is the clock start.
        """
        if duration < timedelta(0):
            raise ValueError(f"duration must not be negative, got {duration}")
        remaining = duration
        for first, last in self.covered_intervals(start, weekend=weekend):
            length = last - first
            if remaining <= length:
                return first + remaining
            remaining -= length
        raise AssertionError("unreachable: covered_intervals without end never stops")

    def clock_start(self, start: datetime, *, weekend: bool) -> datetime:
        """The first covered instant at or after ``start``."""
        return self.add_covered(start, timedelta(0), weekend=weekend)

    def is_covered(self, instant: datetime, *, weekend: bool) -> bool:
        instant = _as_utc(instant, "instant")
        day = instant.astimezone(self.zone).date()
        return any(
            first <= instant < last for first, last in self.day_intervals(day, weekend=weekend)
        )

    def next_business_day_end(self, received: datetime) -> datetime:
        """R-NBD: business end (16:00) on the first business day after the arrival date.

        "After the day the request arrived" is read on the policy zone's calendar, and
        holidays are skipped: a request on Thursday 30 April 2026 with 1 May a holiday is
        due Monday 4 May 16:00.
        """
        day = _as_utc(received, "received").astimezone(self.zone).date()
        for _ in range(_MAX_EMPTY_DAYS):
            day += timedelta(days=1)
            if self.is_business_day(day):
                return self._instant(day, self._business_span[1])
        raise NoCoverageError(f"no business day within {_MAX_EMPTY_DAYS} days after {day}")

    # Explaining uncovered time.

    def gaps(self, start: datetime, end: datetime, *, weekend: bool) -> Iterator[Gap]:
        """The uncovered pieces of ``[start, end)``, each with its reasons."""
        cursor = _as_utc(start, "start")
        stop = _as_utc(end, "end")
        for first, last in self.covered_intervals(cursor, stop, weekend=weekend):
            if cursor < first:
                yield self._gap(cursor, first, weekend=weekend)
            cursor = last
        if cursor < stop:
            yield self._gap(cursor, stop, weekend=weekend)

    def _gap(self, start: datetime, end: datetime, *, weekend: bool) -> Gap:
        reasons: list[str] = []
        day = start.astimezone(self.zone).date()
        last_day = (end - timedelta(microseconds=1)).astimezone(self.zone).date()
        while day <= last_day:
            reason = self._day_reason(day, start, end, weekend=weekend)
            if reason and reason not in reasons:
                reasons.append(reason)
            day += timedelta(days=1)
        return Gap(start, end, tuple(reasons) or ("night",))

    def _day_reason(
        self, day: date, start: datetime, end: datetime, *, weekend: bool
    ) -> str | None:
        """Why the part of ``[start, end)`` on ``day`` is uncovered (None: night only)."""
        name = self.holiday_name(day)
        business_weekday = day.weekday() in self._business_weekdays
        if name is not None:
            lost: list[tuple[int, int]] = []
            if business_weekday:
                lost.append(self._business_span)
            if weekend and not self._weekend_covers_holidays:
                lost.extend(self._weekend_spans[day.weekday()])
            for first, last in lost:
                if _overlaps(self._instant(day, first), self._instant(day, last), start, end):
                    return f"holiday: {name}"
        if not business_weekday and _overlaps(
            self._instant(day, 0), self._instant(day, _DAY_SECONDS), start, end
        ):
            return "weekend"
        return None

    # Helpers.

    def _instant(self, day: date, seconds: int) -> datetime:
        """Local wall-clock ``day`` + ``seconds`` (up to 24:00) in the zone, as UTC."""
        local = datetime.combine(day, time(0), tzinfo=self.zone) + timedelta(seconds=seconds)
        return local.astimezone(UTC)

    def _coalesced_from(self, start: datetime, weekend: bool) -> Iterator[Interval]:
        """Unbounded covered intervals ending after ``start``, clipped to it, joined."""
        day = start.astimezone(self.zone).date()
        pending: Interval | None = None
        empty_days = 0
        while True:
            intervals = self.day_intervals(day, weekend=weekend)
            empty_days = 0 if intervals else empty_days + 1
            if empty_days > _MAX_EMPTY_DAYS:
                raise NoCoverageError(
                    f"no covered time for {_MAX_EMPTY_DAYS} days after {start.isoformat()}"
                )
            for first, last in intervals:
                if last <= start:
                    continue
                first = max(first, start)
                if pending is None:
                    pending = (first, last)
                elif first <= pending[1] and last - pending[0] <= _MAX_COALESCED:
                    pending = (pending[0], max(pending[1], last))
                else:
                    yield pending
                    pending = (first, last)
            day += timedelta(days=1)


def _seconds_of(moment: time) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


def _weekend_spans_by_weekday(settings: SlaSettings) -> tuple[tuple[tuple[int, int], ...], ...]:
    """For each weekday (Monday=0), the local spans (seconds from midnight) of P-COV-WE."""
    (start_day, start_time), (end_day, end_time) = settings.weekend_window
    first = start_day * _DAY_SECONDS + _seconds_of(start_time)
    last = end_day * _DAY_SECONDS + _seconds_of(end_time)
    # The window wraps around the week's end when it ends "before" it starts (Fri -> Mon).
    week_spans = [(first, last)] if first < last else [(first, _WEEK_SECONDS), (0, last)]
    by_weekday = []
    for weekday in range(7):
        day_first, day_last = weekday * _DAY_SECONDS, (weekday + 1) * _DAY_SECONDS
        spans = tuple(
            (max(a, day_first) - day_first, min(b, day_last) - day_first)
            for a, b in week_spans
            if a < day_last and b > day_first
        )
        by_weekday.append(spans)
    return tuple(by_weekday)


def _merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(spans):
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


def _as_utc(instant: datetime, name: str) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {instant.isoformat()}")
    return instant.astimezone(UTC)


def _supported_languages(country: str) -> tuple[str, ...]:
    languages: tuple[str, ...] = tuple(holidays_lib.country_holidays(country).supported_languages)
    return languages
