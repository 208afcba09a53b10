"""Opening hours a channel may declare in its settings: ``{"mon": "08:00-20:00", ...}`` in
an IANA timezone; a day left out is closed, no hours at all means always open."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


def _parts(span: str) -> tuple[int, int, int, int] | None:
    found = _SPAN.match(span)
    if not found:
        return None
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    if not (h1 < 24 and h2 <= 24 and m1 < 60 and m2 < 60 and (h1, m1) < (h2, m2)):
        return None
    if h2 == 24 and m2:
        return None
    return h1, m1, h2, m2


def check_hours(hours: dict[str, str]) -> dict[str, str]:
    """The hours if valid, else ValueError naming the bad day or span (for validators)."""
    for day, span in hours.items():
        if day not in DAYS:
            raise ValueError(f"hours: unknown day {day!r} (use {', '.join(DAYS)})")
        if _parts(span) is None:
            raise ValueError(f"hours.{day}: expected HH:MM-HH:MM within one day, got {span!r}")
    return hours


def check_zone(name: str) -> str:
    """The timezone name if known, else ValueError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None
    return name


def is_open(hours: Mapping[str, str], zone: str, now: datetime) -> bool:
    """Whether ``now`` (aware) falls inside ``hours`` (validated) read in ``zone``."""
    if not hours:
        return True
    local = now.astimezone(ZoneInfo(zone))
    span = hours.get(DAYS[local.weekday()])
    parts = _parts(span) if span is not None else None
    if parts is None:
        return False
    h1, m1, h2, m2 = parts
    clock = local.time().replace(tzinfo=None)
    return time(h1, m1) <= clock and (h2 == 24 or clock < time(h2, m2))


# Field types for channel settings models: validated when the settings load.
Hours = Annotated[dict[str, str], AfterValidator(check_hours)]
Zone = Annotated[str, AfterValidator(check_zone)]
