"""Business-time arithmetic for SLA timers: spans across closing time, weekends, holidays,
24-hour days and DST changes; open time between two instants agrees with ``add``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from hub.workflow.calendar import Calendar

WEEKDAYS = dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), "09:00-18:00")
BERLIN = Calendar.from_options({"hours": WEEKDAYS, "zone": "Europe/Berlin"})


def berlin(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

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
