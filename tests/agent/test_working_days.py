"""Working days and Wmo terms over known dates of 2025-2027, worked out from a printed calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.working_days import BevrijdingsdagRule, WorkingDayCalendar, dutch_date_of

D = date.fromisoformat
DEFAULT = WorkingDayCalendar()


@pytest.mark.parametrize(
    ("day", "working"),
    [
        ("2025-01-01", False),  # Nieuwjaarsdag, Wednesday
        ("2025-04-18", True),  # Goede Vrijdag: a working day by default
        ("2025-04-21", False),  # Easter Monday
        ("2025-04-26", False),  # Koningsdag moved to Saturday 26 April (27th is a Sunday)
        ("2025-04-28", True),  # the Monday after: Koningsdag is not moved to a weekday
        ("2025-05-05", False),  # Bevrijdingsdag 2025, a lustrum year, Monday
        ("2025-05-29", False),  # Ascension Day
        ("2025-06-09", False),  # Whit Monday
        ("2025-12-25", False),  # Christmas, Thursday
        ("2025-12-26", False),  # Second Christmas Day, Friday
        ("2025-12-24", True),
        ("2026-04-27", False),  # Koningsdag, Monday
        ("2026-05-05", True),  # Bevrijdingsdag 2026: not a lustrum year, Tuesday
        ("2026-05-14", False),  # Ascension Day
        ("2027-03-29", False),  # Easter Monday
        ("2027-04-27", False),  # Koningsdag, Tuesday
        ("2027-05-06", False),  # Ascension Day
        ("2027-05-17", False),  # Whit Monday
        ("2027-05-05", True),  # Bevrijdingsdag 2027, Wednesday, not a lustrum year
        ("2025-06-14", False),  # an ordinary Saturday
        ("2025-06-16", True),  # an ordinary Monday
    ],
)
def test_is_working_day(day: str, working: bool) -> None:
    assert DEFAULT.is_working_day(D(day)) is working


# Order received on the first date; the supplier must contact the client by the second (the 5th
# working day after the day of receipt).
FIVE_WORKING_DAYS = [
    ("2025-04-17", "2025-04-25"),  # Thu before Easter: Good Friday counts, Easter Monday not
    ("2025-04-23", "2025-04-30"),  # Koningsdag 2025 on a Saturday changes nothing
    ("2025-04-30", "2025-05-08"),  # Bevrijdingsdag 2025 (lustrum) skipped
    ("2025-05-26", "2025-06-03"),  # Ascension Day 2025
    ("2025-06-04", "2025-06-12"),  # Whit Monday 2025
    ("2025-12-22", "2025-12-31"),  # both Christmas days 2025
    ("2025-12-23", "2026-01-02"),  # across the new year: Christmas and Nieuwjaarsdag
    ("2026-04-02", "2026-04-10"),  # Easter Monday 2026
    ("2026-04-24", "2026-05-04"),  # Koningsdag 2026 on a Monday
    ("2026-04-30", "2026-05-07"),  # Bevrijdingsdag 2026 is a working day
    ("2026-12-23", "2026-12-31"),  # Christmas 2026: Friday and Saturday
    ("2026-12-24", "2027-01-04"),  # across the new year: Nieuwjaarsdag 2027 on a Friday
    ("2027-03-26", "2027-04-05"),  # received on Good Friday; Easter Monday 2027 skipped
    ("2027-04-26", "2027-05-04"),  # Koningsdag 2027 on a Tuesday
    ("2027-05-04", "2027-05-12"),  # Ascension Day 2027
    ("2027-05-14", "2027-05-24"),  # Whit Monday 2027
    ("2025-06-13", "2025-06-20"),  # received on a Friday
    ("2025-06-14", "2025-06-20"),  # received on a Saturday: same as Friday
    ("2025-04-21", "2025-04-28"),  # received on Easter Monday
]


@pytest.mark.parametrize(("received", "due"), FIVE_WORKING_DAYS)
def test_five_working_days_after_the_order(received: str, due: str) -> None:
    assert DEFAULT.add_working_days(D(received), 5) == D(due)
    assert DEFAULT.working_days_between(D(received), D(due)) == 5


@pytest.mark.parametrize(
    ("rule", "received", "due"),
    [
        ("lustrum", "2025-04-30", "2025-05-08"),
        ("never", "2025-04-30", "2025-05-07"),
        ("every-year", "2025-04-30", "2025-05-08"),
        ("lustrum", "2026-04-30", "2026-05-07"),
        ("never", "2026-04-30", "2026-05-07"),
        ("every-year", "2026-04-30", "2026-05-08"),
    ],
)
def test_bevrijdingsdag_rule(rule: BevrijdingsdagRule, received: str, due: str) -> None:
    calendar = WorkingDayCalendar(bevrijdingsdag=rule)
    assert calendar.add_working_days(D(received), 5) == D(due)


def test_bevrijdingsdag_lustrum_years() -> None:
    calendar = WorkingDayCalendar(bevrijdingsdag="lustrum")
    assert not calendar.is_working_day(D("2025-05-05"))
    assert calendar.is_working_day(D("2026-05-05"))
    assert calendar.is_working_day(D("2029-05-04"))  # a Friday, no holiday
    assert not calendar.is_working_day(D("2035-05-05"))  # Saturday anyway; checks no error


def test_good_friday_can_be_a_day_off() -> None:
    calendar = WorkingDayCalendar(good_friday=True)
    assert not calendar.is_working_day(D("2025-04-18"))
    assert calendar.add_working_days(D("2025-04-17"), 5) == D("2025-04-28")


def test_extra_days_off() -> None:
    calendar = WorkingDayCalendar(extra_days_off=[D("2025-05-30")])  # Friday after Ascension
    assert calendar.add_working_days(D("2025-05-26"), 5) == D("2025-06-04")


@pytest.mark.parametrize(
    ("received_at", "deadline"),
    [
        # Friday evening 19:30 CEST: counting starts on Monday, due end of next Friday.
        ("2025-06-13T17:30:00+00:00", "2025-06-20T21:59:59.999999+00:00"),
        # Thursday 22:30 UTC is Friday 00:30 in Amsterdam: received on Friday, not Thursday.
        ("2025-06-12T22:30:00+00:00", "2025-06-20T21:59:59.999999+00:00"),
        ("2025-06-12T21:30:00+00:00", "2025-06-19T21:59:59.999999+00:00"),
        # Received on Easter Monday 2025.
        ("2025-04-21T10:00:00+02:00", "2025-04-28T21:59:59.999999+00:00"),
        # Across the new year, in winter time (CET, UTC+1).
        ("2025-12-23T09:00:00+00:00", "2026-01-02T22:59:59.999999+00:00"),
    ],
)
def test_deadline_is_end_of_the_local_working_day_in_utc(received_at: str, deadline: str) -> None:
    result = DEFAULT.deadline(datetime.fromisoformat(received_at), 5)
    assert result == datetime.fromisoformat(deadline)
    assert result.tzinfo == UTC


def test_deadline_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        DEFAULT.deadline(datetime(2025, 6, 13, 19, 30), 5)


def test_counting_back_and_zero() -> None:
    assert DEFAULT.add_working_days(D("2025-06-12"), -5) == D("2025-06-04")  # over Whit Monday
    assert DEFAULT.add_working_days(D("2025-06-14"), 0) == D("2025-06-14")
    assert DEFAULT.working_days_between(D("2025-06-12"), D("2025-06-04")) == -5
    assert DEFAULT.working_days_between(D("2025-06-14"), D("2025-06-15")) == 0


@pytest.mark.parametrize(
    ("term", "start", "end"),
    [
        ("investigation", "2025-03-17", "2025-04-28"),  # 6 weeks, ends on a working Monday
        ("investigation", "2025-03-10", "2025-04-22"),  # ends on Easter Monday: moved on
        ("decision", "2025-05-15", "2025-05-30"),  # ends on Ascension Day: moved to the Friday
        ("decision", "2025-12-11", "2025-12-29"),  # ends on Christmas Thursday: to Monday
    ],
)
def test_wmo_terms(term: str, start: str, end: str) -> None:
    if term == "investigation":
        assert DEFAULT.wmo_investigation_end(D(start)) == D(end)
    else:
        assert DEFAULT.wmo_decision_end(D(start)) == D(end)


def test_statutory_terms_count_good_friday_and_every_fifth_of_may() -> None:
    statutory = WorkingDayCalendar.for_statutory_terms()
    # 2 weeks after Friday 4 April 2025 is Good Friday, then Easter Monday: Tuesday 22 April.
    assert statutory.wmo_decision_end(D("2025-04-04")) == D("2025-04-22")
    assert DEFAULT.wmo_decision_end(D("2025-04-04")) == D("2025-04-18")
    # 6 weeks after Tuesday 24 March 2026 is Tuesday 5 May: a holiday for the Atw every year.
    assert statutory.wmo_investigation_end(D("2026-03-24")) == D("2026-05-06")
    assert DEFAULT.wmo_investigation_end(D("2026-03-24")) == D("2026-05-05")


@given(
    st.dates(date(2024, 1, 1), date(2028, 12, 31)),
    st.integers(-40, 40),
    st.sampled_from(["never", "every-year", "lustrum"]),
)
def test_working_days_between_inverts_add_working_days(
    start: date, count: int, rule: BevrijdingsdagRule
) -> None:
    calendar = WorkingDayCalendar(bevrijdingsdag=rule)
    end = calendar.add_working_days(start, count)
    assert calendar.working_days_between(start, end) == count
    if count:
        assert calendar.is_working_day(end)
        assert (end > start) is (count > 0)
    else:
        assert end == start


def test_the_dutch_date_starts_at_midnight_in_amsterdam_not_utc() -> None:
    # Winter time (UTC+1) and summer time (UTC+2).
    assert dutch_date_of(datetime(2025, 3, 2, 22, 59, tzinfo=UTC)) == date(2025, 3, 2)
    assert dutch_date_of(datetime(2025, 3, 2, 23, 0, tzinfo=UTC)) == date(2025, 3, 3)
    assert dutch_date_of(datetime(2025, 6, 3, 21, 59, tzinfo=UTC)) == date(2025, 6, 3)
    assert dutch_date_of(datetime(2025, 6, 3, 22, 0, tzinfo=UTC)) == date(2025, 6, 4)
