"""Business hours: weekly schedules in a zone, as 15-minute slots of the week."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.reports.facts import SLOT_S

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True, kw_only=True)
class BusinessHours:
    """A weekly schedule in a timezone; ranges are minutes of the week, 15-minute aligned."""

    tz: ZoneInfo
    week: tuple[tuple[int, int], ...]
    holidays: frozenset[date] = frozenset()

    def is_open(self, at: float) -> bool:
        local = datetime.fromtimestamp(at, self.tz)
        if local.date() in self.holidays:
            return False
        minute = local.weekday() * 1440 + local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.week)

    def slot_plan(self, start: float, end: float) -> SlotPlan:
        """The schedule as 15-minute slot arithmetic over [start, end), for SQL."""
        first, last = int(start // SLOT_S), int(end // SLOT_S) + 1
        offsets: list[tuple[int, int]] = []  # (first slot of the segment, UTC offset in slots)
        slot = first
        while slot <= last:
            off = self._offset_slots(slot)
            if not offsets or offsets[-1][1] != off:
                offsets.append((slot, off))
            nxt = min(last + 1, slot + 96)
            if self._offset_slots(nxt) != off:  # a transition within this day: find its slot
                lo, hi = slot, nxt
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    lo, hi = (mid, hi) if self._offset_slots(mid) == off else (lo, mid)
                nxt = hi
            slot = nxt
        closed = []
        for day in sorted(self.holidays):
            begin = datetime.combine(day, time(0), self.tz).timestamp()
            finish = datetime.combine(day + timedelta(days=1), time(0), self.tz).timestamp()
            if finish > start and begin < end:
                closed.append((int(begin // SLOT_S), int(finish // SLOT_S)))
        week = tuple((a // 15, b // 15) for a, b in self.week)
        return SlotPlan(offsets=tuple(offsets), week=week, closed=tuple(closed))

    def _offset_slots(self, slot: int) -> int:
        offset = datetime.fromtimestamp(slot * SLOT_S, self.tz).utcoffset() or timedelta(0)
        return int(offset.total_seconds()) // SLOT_S


# Slot 0 (1970-01-01 00:00) is a Thursday: slot-of-week counts from Monday 00:00.
WEEK_SLOTS = 7 * 96
EPOCH_SLOT_OF_WEEK = 3 * 96


@dataclass(frozen=True, slots=True, kw_only=True)
class SlotPlan:
    """A schedule over a range as slot arithmetic: open when the local slot-of-week
    ``(slot + offset + EPOCH_SLOT_OF_WEEK) % WEEK_SLOTS`` is in ``week`` and the slot is in
    no ``closed`` range; ``offsets`` are (first slot, offset in slots) segments (DST)."""

    offsets: tuple[tuple[int, int], ...]
    week: tuple[tuple[int, int], ...]
    closed: tuple[tuple[int, int], ...]

    def is_open(self, slot: int) -> bool:
        off = next((o for first, o in reversed(self.offsets) if slot >= first), self.offsets[0][1])
        sow = (slot + off + EPOCH_SLOT_OF_WEEK) % WEEK_SLOTS
        if any(a <= slot < b for a, b in self.closed):
            return False
        return any(a <= sow < b for a, b in self.week)


def zone(name: str) -> ZoneInfo:
    """An IANA timezone; ValueError when unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None


def _minutes(text: Any) -> int:
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":":
        raise ValueError(f"time {text!r} is not HH:MM")
    hours, minutes = int(text[:2]), int(text[3:])
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or hours * 60 + minutes > 1440:
        raise ValueError(f"time {text!r} is out of range")
    # Reports group arrivals by 15-minute slots, so schedules are too (08:10 counts as 08:00).
    return (hours * 60 + minutes) // 15 * 15


def parse_business_hours(options: Mapping[str, Any]) -> BusinessHours | None:
    """A queue's schedule from ``options["business_hours"]``; None means always open.

    Shape: ``{"mon": ["08:00", "18:00"], "sat": [["09:00", "12:00"], ["13:00", "16:00"]],
    "holidays": ["2026-12-25"]}``; the timezone is ``options["timezone"]`` (or
    ``business_hours["timezone"]``), UTC by default. A missing day is closed; an end before
    its start runs past midnight.
    """
    spec = options.get("business_hours")
    if not spec:
        return None
    if not isinstance(spec, Mapping):
        raise TypeError("business_hours must be an object of day -> [start, end]")
    tz = zone(str(options.get("timezone") or spec.get("timezone") or "UTC"))
    week: list[tuple[int, int]] = []
    for i, day in enumerate(DAYS):
        ranges = spec.get(day) or []
        if ranges and isinstance(ranges[0], str):
            ranges = [ranges]
        for pair in ranges:
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ValueError(f"business_hours.{day} must be [start, end] pairs")
            start, end = _minutes(pair[0]), _minutes(pair[1])
            base = i * 1440
            if end > start:
                week.append((base + start, base + end))
            elif end < start:  # overnight: runs into the next day (Sunday into Monday)
                week.append((base + start, base + 1440))
                nxt = (i + 1) % 7 * 1440
                week.append((nxt, nxt + end))
    holidays = frozenset(date.fromisoformat(str(d)) for d in spec.get("holidays") or [])
    return BusinessHours(tz=tz, week=tuple(sorted(week)), holidays=holidays)
