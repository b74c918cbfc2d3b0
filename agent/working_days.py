"""One calendar for every deadline: working days and the Wmo terms in calendar weeks.

A working day is a weekday that is not a Dutch public holiday. The ``holidays`` package supplies
the holidays, with two deliberate corrections, because its list is not the one that applies here:

- Goede Vrijdag: ``holidays`` lists it as a public holiday. It is no day off in most contracts,
  so it is a working day unless ``good_friday=True``. The Algemene termijnenwet (art. 3 lid 2)
  does count it, see :meth:`WorkingDayCalendar.for_statutory_terms`.
- Bevrijdingsdag (5 May): ``holidays`` lists it in lustrum years only. Here it follows
  ``bevrijdingsdag``: ``"never"``, ``"every-year"`` or ``"lustrum"`` (years divisible by 5,
  as for government: 2025, 2030, ...).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

import holidays

__all__ = [
    "AMSTERDAM",
    "WMO_DECISION_WEEKS",
    "WMO_INVESTIGATION_WEEKS",
    "BevrijdingsdagRule",
    "WorkingDayCalendar",
    "day_end",
    "dutch_date_of",
]

# Dutch deadlines are days in Dutch time.
AMSTERDAM: Final = ZoneInfo("Europe/Amsterdam")


def dutch_date_of(moment: datetime) -> date:
    """The date in the Netherlands at ``moment`` (from 00:00 Amsterdam time, not UTC)."""
    return moment.astimezone(AMSTERDAM).date()


def day_end(day: date) -> datetime:
    """The end of ``day`` in Amsterdam: a deadline "before <date>" includes that day."""
    return datetime.combine(day, time.max, tzinfo=AMSTERDAM)


BevrijdingsdagRule = Literal["never", "every-year", "lustrum"]

# Wmo 2015 art. 2.3.2 lid 1 (investigation after a melding) and art. 2.3.5 lid 1 (decision
# after an aanvraag), in calendar weeks.
WMO_INVESTIGATION_WEEKS: Final = 6
WMO_DECISION_WEEKS: Final = 2

_SATURDAY: Final = 5
_GOOD_FRIDAY_NAME: Final = "Good Friday"  # holidays' en_US name, pinned by the language below


class WorkingDayCalendar:
    """Dutch working days: no weekends, no public holidays, Bevrijdingsdag as configured."""

    def __init__(
        self,
        *,
        bevrijdingsdag: BevrijdingsdagRule = "lustrum",
        good_friday: bool = False,
        extra_days_off: Iterable[date] = (),
    ) -> None:
        self._bevrijdingsdag: BevrijdingsdagRule = bevrijdingsdag
        self._good_friday = good_friday
        self._extra_days_off = frozenset(extra_days_off)
        self._holidays_by_year: dict[int, frozenset[date]] = {}

    @classmethod
    def for_statutory_terms(cls, *, extra_days_off: Iterable[date] = ()) -> WorkingDayCalendar:
        """The Algemene termijnenwet art. 3: 5 May every year and Goede Vrijdag are holidays.

        Days that a Royal Decree adds (art. 3 lid 3, such as the Friday after Ascension Day)
        are not in ``holidays``; pass them as ``extra_days_off``.
        """
        return cls(bevrijdingsdag="every-year", good_friday=True, extra_days_off=extra_days_off)

    def _holidays(self, year: int) -> frozenset[date]:
        cached = self._holidays_by_year.get(year)
        if cached is None:
            cached = self._holidays_by_year[year] = self._build_year(year)
        return cached

    def _build_year(self, year: int) -> frozenset[date]:
        listed = holidays.country_holidays("NL", years=year, language="en_US")
        liberation_day = date(year, 5, 5)
        days = {
            day
            for day, name in listed.items()
            if day != liberation_day and (self._good_friday or name != _GOOD_FRIDAY_NAME)
        }
        if self._bevrijdingsdag == "every-year" or (
            self._bevrijdingsdag == "lustrum" and year % 5 == 0
        ):
            days.add(liberation_day)
        return frozenset(days)

    def is_working_day(self, day: date) -> bool:
        """True on a weekday that is no holiday and no configured extra day off."""
        return (
            day.weekday() < _SATURDAY
            and day not in self._holidays(day.year)
            and day not in self._extra_days_off
        )

    def next_working_day(self, day: date) -> date:
        """``day`` itself when it is a working day, else the first working day after it."""
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def add_working_days(self, start: date, count: int) -> date:
        """The ``count``-th working day after ``start``; ``start`` itself never counts.

        Normenkader 2020: "within 5 working days after the order" counts from the day after
        receipt; an order received on Wednesday 4 June 2025 is due on Thursday 12 June (Whit
        Monday skipped). A negative ``count`` counts back; 0 gives ``start``.
        """
        step = timedelta(days=1 if count >= 0 else -1)
        day, remaining = start, abs(count)
        while remaining:
            day += step
            if self.is_working_day(day):
                remaining -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days counted from ``start`` to ``end``, ``start`` itself excluded.

        The inverse of :meth:`add_working_days`: ``add_working_days(start, n) == end`` implies
        ``working_days_between(start, end) == n``, also for negative ``n`` (then ``end`` counts
        and ``start`` does not, as when counting back).
        """
        if end < start:
            return -self._count(end, start - end)
        return self._count(start + timedelta(days=1), end - start)

    def _count(self, first: date, span: timedelta) -> int:
        days = (first + timedelta(days=offset) for offset in range(span.days))
        return sum(1 for day in days if self.is_working_day(day))

    def deadline(
        self, received_at: datetime, working_days: int, *, timezone: str = "Europe/Amsterdam"
    ) -> datetime:
        """End (23:59:59.999999 local) of the ``working_days``-th working day after receipt, in UTC.

        The day of receipt is the local calendar date in ``timezone``: an order received at
        00:30 on Saturday in Amsterdam was received on Saturday, whatever the UTC date says.
        """
        if received_at.tzinfo is None:
            raise ValueError("received_at must be timezone-aware")
        zone = ZoneInfo(timezone)
        last_day = self.add_working_days(received_at.astimezone(zone).date(), working_days)
        return datetime.combine(last_day, time.max, tzinfo=zone).astimezone(UTC)

    def add_calendar_weeks(self, start: date, weeks: int) -> date:
        """Last day of a term of ``weeks`` calendar weeks after ``start``, moved to a working day.

        Algemene termijnenwet art. 1 lid 1: a statutory term that ends on a Saturday, Sunday or
        holiday runs on to the next day that is none of these. Use the calendar from
        :meth:`for_statutory_terms` for the Wmo terms.
        """
        return self.next_working_day(start + timedelta(weeks=weeks))

    def wmo_investigation_end(self, melding: date) -> date:
        """Wmo 2015 art. 2.3.2: the investigation ends within 6 weeks after the melding."""
        return self.add_calendar_weeks(melding, WMO_INVESTIGATION_WEEKS)

    def wmo_decision_end(self, aanvraag: date) -> date:
        """Wmo 2015 art. 2.3.5: the decision follows within 2 weeks after the aanvraag."""
        return self.add_calendar_weeks(aanvraag, WMO_DECISION_WEEKS)
