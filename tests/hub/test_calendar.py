"""Business-time arithmetic for SLA timers: spans across closing time, weekends, holidays,
24-hour days and DST changes; open time between two instants agrees with ``add``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.workflow.calendar import Calendar

WEEKDAYS = dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), "09:00-18:00")
BERLIN = Calendar.from_options({"hours": WEEKDAYS, "zone": "Europe/Berlin"})


def berlin(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)


def test_an_hour_from_half_past_five_ends_the_next_morning() -> None:
    # Monday 7 Dec 2026, 17:30 Berlin: 30 minutes today, 30 tomorrow from 09:00.
    assert BERLIN.add(berlin(2026, 12, 7, 17, 30), 3600) == berlin(2026, 12, 8, 9, 30)


def test_friday_evening_to_monday_and_a_holiday_pushes_to_tuesday() -> None:
    assert BERLIN.add(berlin(2026, 12, 4, 17), 2 * 3600) == berlin(2026, 12, 7, 10)
    holiday = Calendar.from_options(
        {"hours": WEEKDAYS, "zone": "Europe/Berlin", "holidays": ["2026-12-07"]}
    )
    assert holiday.add(berlin(2026, 12, 4, 17), 2 * 3600) == berlin(2026, 12, 8, 10)
    assert not holiday.is_open(berlin(2026, 12, 7, 12))
    assert holiday.is_open(berlin(2026, 12, 8, 12))


def test_a_start_while_closed_counts_from_the_next_opening() -> None:
    saturday = berlin(2026, 12, 5, 11)
    assert not BERLIN.is_open(saturday)
    assert BERLIN.next_open(saturday) == berlin(2026, 12, 7, 9)
    assert BERLIN.add(saturday, 60) == berlin(2026, 12, 7, 9, 1)


def test_a_24_hour_day_and_the_always_open_calendar() -> None:
    allday = Calendar.from_options({"hours": {"sat": "00:00-24:00"}, "zone": "UTC"})
    start = datetime(2026, 12, 5, 23, 0, tzinfo=UTC)  # Saturday 23:00
    # One hour left on Saturday, then closed until next Saturday.
    assert allday.add(start, 2 * 3600) == datetime(2026, 12, 12, 1, 0, tzinfo=UTC)
    always = Calendar.from_options({})
    assert always.always_open
    assert always.add(start, 90) == start + timedelta(seconds=90)
    assert always.open_seconds(start, start + timedelta(hours=5)) == 5 * 3600


@pytest.mark.parametrize(
    ("start", "seconds", "end"),
    [
        # Spring forward (29 Mar 2026, 02:00 -> 03:00): a 00:00-24:00 Sunday has 23 hours.
        (
            datetime(2026, 3, 28, 23, 0, tzinfo=UTC),
            23 * 3600,
            datetime(2026, 3, 29, 22, 0, tzinfo=UTC),
        ),
        # Fall back (25 Oct 2026): that Sunday has 25 hours.
        (
            datetime(2026, 10, 24, 22, 0, tzinfo=UTC),
            25 * 3600,
            datetime(2026, 10, 25, 23, 0, tzinfo=UTC),
        ),
    ],
)
def test_dst_days_are_as_long_as_they_really_are(
    start: datetime, seconds: int, end: datetime
) -> None:
    sundays = Calendar.from_options({"hours": {"sun": "00:00-24:00"}, "zone": "Europe/Berlin"})
    assert sundays.add(start, seconds) == end
    assert sundays.open_seconds(start, end) == seconds


def test_open_seconds_agrees_with_add() -> None:
    holiday = Calendar.from_options(
        {
            "hours": WEEKDAYS | {"sat": "10:00-14:00"},
            "zone": "Asia/Shanghai",
            "holidays": ["2027-01-01"],
        }
    )
    start = datetime(2026, 12, 28, 3, 17, tzinfo=UTC)
    for hours in range(0, 60, 7):
        for minutes in (0, 13, 59):
            seconds = hours * 3600 + minutes * 60
            s = start + timedelta(hours=hours * 3)
            assert holiday.open_seconds(s, holiday.add(s, seconds)) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"hours": {"mon": "18:00-09:00"}}, "hours.mon"),
        ({"hours": {"someday": "09:00-18:00"}}, "unknown day"),
        ({"hours": ["mon"]}, "hours"),
        ({"hours": WEEKDAYS, "zone": "Atlantis/Capital"}, "timezone"),
        ({"holidays": ["25/12/2026"]}, "holidays"),
        ({"holidays": "2026-12-25"}, "holidays"),
    ],
)
def test_bad_calendars_are_refused_with_what_is_wrong(
    options: dict[str, object], needle: str
) -> None:
    with pytest.raises(ValueError, match=needle):
        Calendar.from_options(options)


def test_a_calendar_with_no_open_day_says_so() -> None:
    never = Calendar.from_options(
        {
            "hours": {"mon": "09:00-10:00"},
            "zone": "UTC",
            "holidays": [(date(2026, 12, 7) + timedelta(weeks=w)).isoformat() for w in range(60)],
        }
    )
    with pytest.raises(ValueError, match="no open time"):
        never.add(datetime(2026, 12, 5, tzinfo=UTC), 60)
    assert never.next_open(datetime(2026, 12, 5, tzinfo=UTC)) is None


def test_next_open_is_utc_even_for_a_local_instant() -> None:
    local = datetime(2026, 12, 7, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # Monday, open
    assert BERLIN.is_open(local)
    found = BERLIN.next_open(local)
    assert found == local
    assert found is not None
    assert found.tzinfo is UTC
    assert BERLIN.add(local, 0).tzinfo is UTC
    assert Calendar().next_open(local) == local


def test_targets_longer_than_the_horizon_still_add_up() -> None:
    mondays = Calendar.from_options({"hours": {"mon": "09:00-18:00"}, "zone": "Europe/Berlin"})
    start = berlin(2026, 12, 7, 9)
    # 100 Mondays of nine hours: about two years, well past the 400-day horizon.
    end = mondays.add(start, 100 * 9 * 3600)
    assert end == berlin(2028, 10, 30, 18)
    assert mondays.open_seconds(start, end) == 100 * 9 * 3600


def test_a_span_lost_in_the_spring_gap_counts_nothing() -> None:
    # 02:30-03:15 on 29 Mar 2026 in Berlin: 02:30 does not exist (read as 03:30), so empty.
    gap = Calendar.from_options({"hours": {"sun": "02:30-03:15"}, "zone": "Europe/Berlin"})
    start = datetime(2026, 3, 28, tzinfo=UTC)
    assert gap.open_seconds(start, start + timedelta(days=2)) == 0
    assert gap.next_open(start) == datetime(2026, 4, 5, 0, 30, tzinfo=UTC)
    assert gap.add(start, 60) == datetime(2026, 4, 5, 0, 31, tzinfo=UTC)


def test_a_working_day_on_the_dst_changes_keeps_its_wall_clock_hours() -> None:
    sunday = Calendar.from_options({"hours": {"sun": "01:00-05:00"}, "zone": "Europe/Berlin"})
    # Spring: 01:00 CET (00:00 UTC) to 05:00 CEST (03:00 UTC) is three real hours.
    spring = datetime(2026, 3, 29, tzinfo=UTC)
    assert sunday.open_seconds(spring, spring + timedelta(days=1)) == 3 * 3600
    assert sunday.add(spring, 2 * 3600) == datetime(2026, 3, 29, 2, tzinfo=UTC)
    # Autumn: 01:00 CEST (23:00 UTC the day before) to 05:00 CET (04:00 UTC): five hours.
    autumn = datetime(2026, 10, 24, 12, tzinfo=UTC)
    assert sunday.open_seconds(autumn, autumn + timedelta(days=1)) == 5 * 3600
    assert sunday.add(autumn, 4.5 * 3600) == datetime(2026, 10, 25, 3, 30, tzinfo=UTC)
    assert sunday.is_open(datetime(2026, 10, 25, 0, 30, tzinfo=UTC))  # 02:30 CEST
    assert sunday.is_open(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))  # 02:30 CET


def test_open_seconds_agrees_with_add_across_dst_and_holidays() -> None:
    cal = Calendar.from_options(
        {
            "hours": {"mon": "08:00-20:00", "sat": "00:00-24:00", "sun": "02:00-03:30"},
            "zone": "Europe/Berlin",
            "holidays": ["2026-03-30", "2026-10-26"],
        }
    )
    for base in (datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 10, 23, tzinfo=UTC)):
        for step in range(0, 96, 5):
            start = base + timedelta(hours=step)
            for seconds in (0, 1, 59, 3600, 4 * 3600 + 7, 30 * 3600, 100 * 3600):
                end = cal.add(start, seconds)
                assert end >= start
                assert cal.open_seconds(start, end) == seconds
                if seconds:
                    assert cal.is_open(end - timedelta(microseconds=1))


def test_open_seconds_is_zero_for_a_backwards_range() -> None:
    start = berlin(2026, 12, 7, 12)
    assert BERLIN.open_seconds(start, start) == 0
    assert BERLIN.open_seconds(start, start - timedelta(hours=3)) == 0


def test_holidays_close_an_otherwise_always_open_calendar() -> None:
    cal = Calendar.from_options({"zone": "UTC", "holidays": ["2026-12-25"]})
    assert not cal.always_open
    eve = datetime(2026, 12, 24, 23, tzinfo=UTC)
    assert not cal.is_open(datetime(2026, 12, 25, 12, tzinfo=UTC))
    assert cal.add(eve, 2 * 3600) == datetime(2026, 12, 26, 1, tzinfo=UTC)
    assert cal.open_seconds(eve, datetime(2026, 12, 26, 1, tzinfo=UTC)) == 2 * 3600


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ("not a mapping", "calendar"),
        ({"hours": {"mon": 9}}, "hours"),
        ({"zone": 3}, "zone"),
        ({"holidays": [20261225]}, "not a date"),
        ({"holidays": ["2026-02-30"]}, "not a date"),
        ({"hours": {"mon": "09:00-24:30"}}, "hours.mon"),
    ],
)
def test_more_bad_options(options: object, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        Calendar.from_options(options)  # type: ignore[arg-type]


def test_direct_construction_and_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown day"):
        Calendar({"monday": "09:00-18:00"})
    with pytest.raises(ValueError, match="timezone"):
        Calendar({}, "Mars/Olympus")
    with pytest.raises(ValueError, match="aware"):
        BERLIN.is_open(datetime(2026, 12, 7, 12))  # noqa: DTZ001
    with pytest.raises(ValueError, match="aware"):
        BERLIN.add(datetime(2026, 12, 7, 12), 60)  # noqa: DTZ001
    with pytest.raises(ValueError, match="seconds"):
        BERLIN.add(berlin(2026, 12, 7, 12), -1)
    with pytest.raises(ValueError, match="seconds"):
        BERLIN.add(berlin(2026, 12, 7, 12), float("nan"))
    assert Calendar.from_options({"hours": None, "zone": None, "holidays": None}).always_open
    assert Calendar.from_options({"holidays": [date(2026, 12, 25)]}).holidays == {
        date(2026, 12, 25)
    }


def test_a_calendar_with_no_hours_in_use_is_never_open() -> None:
    # Hours only on a day every week of which is a holiday for over 400 days.
    never = Calendar.from_options(
        {
            "hours": {"mon": "09:00-10:00"},
            "zone": "UTC",
            "holidays": [(date(2026, 12, 7) + timedelta(weeks=w)).isoformat() for w in range(60)],
        }
    )
    at = datetime(2026, 12, 5, tzinfo=UTC)
    assert not never.is_open(at)
    assert never.open_seconds(at, at + timedelta(days=300)) == 0
