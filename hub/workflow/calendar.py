"""Business-time arithmetic: opening hours per weekday in a timezone, closed holidays.

``Calendar.add(start, seconds)`` is the instant when that much *open* time has passed after
``start``; it walks whole opening spans (one per local day), so a target of hours costs a
handful of steps, and the spans are built from local wall times through ``zoneinfo``, so a
day with a DST change is as long as it really is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from contract.hours import DAYS, check_hours, check_zone

# A calendar with no open time in this many days has none at all.
HORIZON_DAYS = 400


def _span(text: str) -> tuple[time, time | None]:
    start, end = text.split("-")
    h1, m1 = (int(x) for x in start.split(":"))
    h2, m2 = (int(x) for x in end.split(":"))
    return time(h1, m1), (None if h2 == 24 else time(h2, m2))


@dataclass(frozen=True, slots=True)
class Calendar:
    hours: Mapping[str, str] = field(default_factory=dict)
    zone: str = "UTC"
    holidays: frozenset[date] = frozenset()

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Calendar:
        """From ``{"hours": {"mon": "09:00-18:00"}, "zone": "Europe/Berlin",
        "holidays": ["2026-12-25"]}``; ValueError naming what is wrong."""
        hours = options.get("hours") or {}
        if not isinstance(hours, Mapping) or not all(isinstance(v, str) for v in hours.values()):
            raise ValueError('hours: expected {"mon": "09:00-18:00", ...}')
        zone = options.get("zone") or "UTC"
        if not isinstance(zone, str):
            raise ValueError("zone: expected an IANA timezone name")  # noqa: TRY004
        raw = options.get("holidays") or []
        if not isinstance(raw, list):
            raise ValueError('holidays: expected a list of dates ("2026-12-25")')  # noqa: TRY004
        days: set[date] = set()
        for item in raw:
            try:
                days.add(date.fromisoformat(str(item)))
            except ValueError:
                raise ValueError(
                    f"holidays: {str(item)[:40]!r} is not a date (YYYY-MM-DD)"
                ) from None
        return cls(dict(check_hours(dict(hours))), check_zone(zone), frozenset(days))

    @property
    def always_open(self) -> bool:
        return not self.hours and not self.holidays

    def _spans(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open spans (UTC) that end after ``start``, in order, for up to the horizon."""
        tz = ZoneInfo(self.zone)
        day = start.astimezone(tz).date() - timedelta(days=1)
        for _ in range(HORIZON_DAYS + 2):
            if day not in self.holidays:
                if not self.hours:
                    begin = datetime.combine(day, time(0), tz)
                    end = datetime.combine(day + timedelta(days=1), time(0), tz)
                    spans = [(begin, end)]
                else:
                    text = self.hours.get(DAYS[day.weekday()])
                    spans = []
                    if text is not None:
                        t1, t2 = _span(text)
                        begin = datetime.combine(day, t1, tz)
                        end = (
                            datetime.combine(day + timedelta(days=1), time(0), tz)
                            if t2 is None
                            else datetime.combine(day, t2, tz)
                        )
                        spans = [(begin, end)]
                for begin, end in spans:
                    b, e = begin.astimezone(UTC), end.astimezone(UTC)
                    if e > start:
                        yield max(b, start), e
            day += timedelta(days=1)

    def is_open(self, at: datetime) -> bool:
        if self.always_open:
            return True
        for begin, _end in self._spans(at):
            return begin <= at
        return False

    def next_open(self, at: datetime) -> datetime | None:
        """``at`` when open, else the next opening; None: never within the horizon."""
        for begin, _end in self._spans(at):
            return max(begin, at.astimezone(UTC))
        return None

    def add(self, start: datetime, seconds: float) -> datetime:
        """When ``seconds`` of open time have passed after ``start`` (aware UTC)."""
        start = start.astimezone(UTC)
        if self.always_open:
            return start + timedelta(seconds=seconds)
        left = timedelta(seconds=max(0.0, seconds))
        for begin, end in self._spans(start):
            if end - begin >= left:
                return begin + left
            left -= end - begin
        raise ValueError(f"the calendar has no open time within {HORIZON_DAYS} days")

    def open_seconds(self, start: datetime, end: datetime) -> float:
        """Open time between two instants."""
        if end <= start:
            return 0.0
        if self.always_open:
            return (end - start).total_seconds()
        total = 0.0
        for begin, stop in self._spans(start.astimezone(UTC)):
            if begin >= end:
                break
            total += (min(stop, end) - begin).total_seconds()
        return total
