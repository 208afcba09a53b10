"""Business-time arithmetic: opening hours per weekday in a timezone, closed holidays.

``Calendar.add(start, seconds)`` is the instant when that much *open* time has passed after
``start``; it walks whole opening spans (one per local day), so a target of hours costs a
handful of steps, and the spans are built from local wall times through ``zoneinfo``, so a
day with a DST change is as long as it really is. A wall time that does not exist (spring
forward) or happens twice (fall back) is read with ``fold=0`` and normalised through UTC.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from contract.hours import DAYS, check_hours, check_zone

# A calendar with no open time in this many days in a row has none at all.
HORIZON_DAYS = 400


def _span(text: str) -> tuple[time, time | None]:
    """``"09:00-18:00"`` (validated) as its two clock times; None for an end of 24:00."""
    start, end = text.split("-")
    h1, m1 = (int(x) for x in start.split(":"))
    h2, m2 = (int(x) for x in end.split(":"))
    return time(h1, m1), (None if h2 == 24 else time(h2, m2))


def _utc(at: datetime, what: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what}: expected an aware datetime, got a naive one ({at})")
    return at.astimezone(UTC)


def _wall(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """A local wall time as a UTC instant (``fold=0`` when it is missing or ambiguous)."""
    return datetime.combine(day, clock, tz).replace(fold=0).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Calendar:
    """Open ``hours`` per weekday (``{"mon": "09:00-18:00"}``; a day left out is closed, no
    hours at all: open around the clock) in ``zone``; ``holidays`` are local dates closed
    all day."""

    hours: Mapping[str, str] = field(default_factory=dict)
    zone: str = "UTC"
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.hours, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.hours.items()
        ):
            raise ValueError('hours: expected {"mon": "09:00-18:00", ...}')
        check_hours(dict(self.hours))
        check_zone(self.zone)
        if not all(isinstance(d, date) and not isinstance(d, datetime) for d in self.holidays):
            raise ValueError("holidays: expected dates")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Calendar:
        """From ``{"hours": {"mon": "09:00-18:00"}, "zone": "Europe/Berlin",
        "holidays": ["2026-12-25"]}`` (each key optional; other keys are ignored);
        ValueError naming what is wrong."""
        if not isinstance(options, Mapping):
            raise ValueError(  # noqa: TRY004 - callers catch ValueError for bad settings
                'calendar: expected {"hours": ..., "zone": ..., "holidays": ...}'
            )
        hours = options.get("hours")
        if hours is None:
            hours = {}
        if not isinstance(hours, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in hours.items()
        ):
            raise ValueError('hours: expected {"mon": "09:00-18:00", ...}')
        zone = options.get("zone") or "UTC"
        if not isinstance(zone, str):
            raise ValueError(f"zone: expected an IANA timezone name, got {zone!r}"[:120])  # noqa: TRY004
        raw = options.get("holidays")
        if raw is None:
            raw = []
        if not isinstance(raw, list | tuple):
            raise ValueError('holidays: expected a list of dates (["2026-12-25", ...])')  # noqa: TRY004
        days: set[date] = set()
        for item in raw:
            if isinstance(item, date) and not isinstance(item, datetime):
                days.add(item)
                continue
            try:
                days.add(date.fromisoformat(item if isinstance(item, str) else ""))
            except ValueError:
                raise ValueError(
                    f"holidays: {str(item)[:40]!r} is not a date (YYYY-MM-DD)"
                ) from None
        return cls(dict(check_hours(dict(hours))), check_zone(zone), frozenset(days))

    @property
    def always_open(self) -> bool:
        """No hours and no holidays: every instant is open."""
        return not self.hours and not self.holidays

    def _day(self, day: date, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
        """The open span (UTC) of one local day, None when it is closed."""
        if day in self.holidays:
            return None
        midnight = time(0)
        if not self.hours:
            return _wall(day, midnight, tz), _wall(day + timedelta(days=1), midnight, tz)
        text = self.hours.get(DAYS[day.weekday()])
        if text is None:
            return None
        t1, t2 = _span(text)
        end = _wall(day + timedelta(days=1), midnight, tz) if t2 is None else _wall(day, t2, tz)
        return _wall(day, t1, tz), end

    def _spans(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open spans (UTC) after ``start`` (UTC), in order, not overlapping, the first one
        cut to begin no earlier than ``start``; ends after HORIZON_DAYS closed days in a row."""
        tz = ZoneInfo(self.zone)
        day = start.astimezone(tz).date() - timedelta(days=1)
        last = start
        closed = 0
        while closed <= HORIZON_DAYS:
            span = self._day(day, tz)
            day += timedelta(days=1)
            if span is not None:
                begin, end = max(span[0], last), span[1]
                if begin < end:  # empty: closed, or a span lost in a DST gap
                    closed = 0
                    last = end
                    yield begin, end
                    continue
            closed += 1

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` (aware) is inside open time."""
        at = _utc(at, "at")
        if self.always_open:
            return True
        for begin, _end in self._spans(at):
            return begin <= at
        return False

    def next_open(self, at: datetime) -> datetime | None:
        """``at`` (as UTC) when open, else the next opening; None: none in the horizon."""
        at = _utc(at, "at")
        if self.always_open:
            return at
        for begin, _end in self._spans(at):
            return begin
        return None

    def add(self, start: datetime, seconds: float) -> datetime:
        """When ``seconds`` of open time have passed after ``start`` (aware UTC); a closed
        start counts from the next opening. ValueError when the calendar runs out of open
        time (HORIZON_DAYS closed days in a row)."""
        start = _utc(start, "start")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds: expected a finite number >= 0, got {seconds!r}")
        left = timedelta(seconds=seconds)
        if self.always_open:
            return start + left
        for begin, end in self._spans(start):
            if end - begin >= left:
                return begin + left
            left -= end - begin
        raise ValueError(f"the calendar has no open time within {HORIZON_DAYS} days")

    def open_seconds(self, start: datetime, end: datetime) -> float:
        """Open time between two aware instants, in seconds (0 when ``end <= start``)."""
        start, end = _utc(start, "start"), _utc(end, "end")
        if end <= start:
            return 0.0
        if self.always_open:
            return (end - start).total_seconds()
        total = timedelta()
        for begin, stop in self._spans(start):
            if begin >= end:
                break
            total += min(stop, end) - begin
        return total.total_seconds()
