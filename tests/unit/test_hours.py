"""Business hours arithmetic (issue 16): weekends, DST in Europe/Berlin, holidays, edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handoff.hours import (
    BusinessHours,
    HoursError,
    add_business_minutes,
    back_at,
    business_seconds_between,
    is_open,
    next_open,
    sla_due_at,
    validate_hours,
)
from handoff.hours_edit import as_data, as_form, from_form

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
BERLIN = validate_hours(
    {
        "timezone": "Europe/Berlin",
        "weekly": {d: ["09:00-17:00"] for d in WEEKDAYS},
        "holidays": [
            {"start": "2026-12-24", "end": "2026-12-26", "name": "Christmas"},
            {"start": "2027-01-01", "name": "New Year"},
        ],
        "sla_clock": {1: "always"},
    }
)
NIGHTS = validate_hours(
    {"timezone": "Europe/Berlin", "weekly": {"mon": ["22:00-24:00"], "tue": ["00:00-06:00"]}}
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (case, start UTC, business minutes, expected UTC)
ADD_CASES = [
    ("inside one day", "2026-03-04 09:00", 60, "2026-03-04 10:00"),
    ("before opening starts at 9:00 CET", "2026-03-04 06:00", 30, "2026-03-04 08:30"),
    ("friday evening rolls over the weekend", "2026-03-06 15:00", 120, "2026-03-09 09:00"),
    ("ends exactly at closing, not next opening", "2026-03-04 14:00", 120, "2026-03-04 16:00"),
    ("zero minutes out of hours is the next opening", "2026-03-07 12:00", 0, "2026-03-09 08:00"),
    # DST spring forward (Sun 29 Mar 2026): Monday opens at 9:00 CEST = 07:00 UTC
    ("spring forward weekend", "2026-03-27 15:00", 120, "2026-03-30 08:00"),
    # DST fall back (Sun 25 Oct 2026): Monday opens at 9:00 CET = 08:00 UTC
    ("fall back weekend", "2026-10-23 14:00", 120, "2026-10-26 09:00"),
    ("holiday range is skipped", "2026-12-23 15:00", 120, "2026-12-28 09:00"),
    ("single-day holiday is skipped", "2026-12-31 15:00", 120, "2027-01-04 09:00"),
    ("a full business day", "2026-03-04 08:00", 8 * 60, "2026-03-04 16:00"),
]


@pytest.mark.parametrize(("case", "start", "minutes", "expected"), ADD_CASES)
def test_add_business_minutes(case: str, start: str, minutes: int, expected: str) -> None:
    assert add_business_minutes(utc(start), minutes, BERLIN) == utc(expected), case


# (case, a, b, business hours between)
BETWEEN_CASES = [
    ("same day", "2026-03-04 09:00", "2026-03-04 11:30", 2.5),
    ("a weekend counts nothing", "2026-03-07 00:00", "2026-03-09 00:00", 0.0),
    ("friday to monday", "2026-03-06 15:00", "2026-03-09 09:00", 2.0),
    ("a week", "2026-03-02 00:00", "2026-03-09 00:00", 40.0),
    ("a week with spring forward", "2026-03-23 00:00", "2026-03-30 00:00", 40.0),
    ("christmas week", "2026-12-21 00:00", "2026-12-28 00:00", 24.0),
    ("reversed is negative", "2026-03-04 11:00", "2026-03-04 10:00", -1.0),
]


@pytest.mark.parametrize(("case", "a", "b", "hours"), BETWEEN_CASES)
def test_business_seconds_between(case: str, a: str, b: str, hours: float) -> None:
    assert business_seconds_between(utc(a), utc(b), BERLIN) == hours * 3600, case


def test_overnight_hours_written_as_two_ranges_join_across_midnight() -> None:
    # Monday 22:00 CET = 21:00 UTC; 4 h later is Tuesday 02:00 CET = 01:00 UTC
    assert add_business_minutes(utc("2026-03-02 21:00"), 240, NIGHTS) == utc("2026-03-03 01:00")
    assert business_seconds_between(utc("2026-03-02 00:00"), utc("2026-03-04 00:00"), NIGHTS) == (
        8 * 3600
    )


def test_a_full_day_range_is_23_hours_on_the_spring_forward_day() -> None:
    sundays = validate_hours({"timezone": "Europe/Berlin", "weekly": {"sun": ["00:00-24:00"]}})
    spring = business_seconds_between(utc("2026-03-28 12:00"), utc("2026-03-30 12:00"), sundays)
    autumn = business_seconds_between(utc("2026-10-24 12:00"), utc("2026-10-26 12:00"), sundays)
    assert (spring, autumn) == (23 * 3600, 25 * 3600)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-03-04 09:00", True),  # Wednesday 10:00 CET
        ("2026-03-04 16:00", False),  # 17:00 CET: closed (the end is exclusive)
        ("2026-03-07 10:00", False),  # Saturday
        ("2026-12-24 10:00", False),  # holiday
    ],
)
def test_is_open(at: str, expected: bool) -> None:
    assert is_open(utc(at), BERLIN) is expected


def test_next_open_and_the_words_customers_read() -> None:
    saturday = utc("2026-03-07 12:00")
    assert next_open(saturday, BERLIN) == utc("2026-03-09 08:00")
    assert back_at(saturday, BERLIN) == "Monday 9:00 CET"
    assert back_at(utc("2026-03-04 17:00"), BERLIN) == "tomorrow 9:00 CET"
    assert back_at(utc("2026-03-04 06:00"), BERLIN) == "today 9:00 CET"
    assert back_at(utc("2026-03-27 17:00"), BERLIN) == "Monday 9:00 CEST"  # after spring forward
    assert back_at(utc("2026-03-04 10:00"), BERLIN) is None  # open


def test_without_hours_everything_is_wall_clock_time() -> None:
    always = BusinessHours()
    start = utc("2026-03-07 12:00")
    assert always.always_open and is_open(start, always)
    assert add_business_minutes(start, 90, always) == start + timedelta(minutes=90)
    assert sla_due_at(start, 60, 3, always) == start + timedelta(hours=1)
    assert back_at(start, always) is None


def test_the_sla_clock_of_p1_runs_247_and_the_others_in_hours() -> None:
    saturday = utc("2026-03-07 12:00")
    assert sla_due_at(saturday, 15, 1, BERLIN) == saturday + timedelta(minutes=15)
    assert sla_due_at(saturday, 60, 2, BERLIN) == utc("2026-03-09 09:00")


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"weekly": {"mon": ["22:00-06:00"]}}, "weekly.mon"),
        ({"weekly": {"mon": ["9-17"]}}, "weekly.mon"),
        ({"weekly": {"mon": ["25:00-26:00"]}}, "weekly.mon"),
        ({"weekly": {"mon": ["09:00-12:00", "11:00-13:00"]}}, "weekly.mon: ranges overlap"),
        ({"weekly": {"monday": ["09:00-17:00"]}}, "not a day"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        (
            {"holidays": [{"start": "2026-12-24", "end": "2026-12-26"}, {"start": "2026-12-26"}]},
            "holidays overlap",
        ),
        ({"holidays": [{"start": "2026-12-26", "end": "2026-12-24"}]}, "ends before it starts"),
        ({"sla_clock": {1: "sometimes"}}, "sla_clock"),
    ],
)
def test_invalid_hours_are_refused_naming_the_field(data: dict[str, object], named: str) -> None:
    with pytest.raises(HoursError, match=named):
        validate_hours(data)


def test_the_admin_form_round_trips() -> None:
    form = as_form(BERLIN)
    assert form["holidays"].splitlines() == [
        "2026-12-24..2026-12-26 Christmas",
        "2027-01-01 New Year",
    ]
    data = from_form(form["timezone"], form["days"], form["holidays"], form["always"])
    assert validate_hours(data) == validate_hours(as_data(BERLIN))
