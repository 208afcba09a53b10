"""Report specs and the mergeable partial sums facts are aggregated into."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from hub.reports.facts import SLOT_S, ContactFact
from hub.reports.hours import BusinessHours

Bucket = Literal["15m", "hour", "day"]
GroupBy = Literal["queue", "team", "agent", "channel"]
BUCKET_S: dict[str, int] = {"15m": 900, "hour": 3600, "day": 86400}


# ---------------------------------------------------------------------------- specs
@dataclass(frozen=True, slots=True, kw_only=True)
class ReportSpec:
    """What to report: a time range, filters, thresholds, bucketing and grouping."""

    start: datetime
    end: datetime
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    thresholds: tuple[float, ...] = (20.0,)
    bucket: Bucket | None = None
    group_by: GroupBy | None = None
    queues: frozenset[str] | None = None  # queue and team filters, resolved to queue names
    channel: str | None = None
    agent_id: int | None = None
    edges: tuple[float, ...] = ()  # wait-distribution bin edges

    @property
    def cut_points(self) -> tuple[float, ...]:
        """Every wait threshold counted: service-level thresholds and distribution edges."""
        return tuple(sorted(set(self.thresholds) | set(self.edges)))


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportContext:
    """Configuration the figures depend on: business hours and teams by queue."""

    hours: Mapping[str, BusinessHours] = field(default_factory=dict)
    teams: Mapping[str, str] = field(default_factory=dict)

    def slot_width(self, spec: ReportSpec) -> int:
        """The coarsest slot that still buckets exactly: an hour unless 15-minute buckets
        or a timezone offset that is not whole hours (India, Nepal) need quarters."""
        if spec.bucket == "15m":
            return SLOT_S
        for when in (spec.start, spec.end):
            offset = when.astimezone(spec.tz).utcoffset() or timedelta(0)
            if offset.total_seconds() % 3600:
                return SLOT_S
        return 3600

    def is_open(self, queue: str, slot: int) -> bool:
        """Whether a contact of ``queue`` arriving in 15-minute ``slot`` is in business hours."""
        hours = self.hours.get(queue)
        return hours is None or hours.is_open(slot * SLOT_S)


# ---------------------------------------------------------------------------- partials
@dataclass(slots=True)
class Partial:
    """Sums and counts of contact figures; partials of disjoint contacts add up."""

    contacts: int = 0
    answered: int = 0
    wait_sum: float = 0.0
    wait_max: float | None = None
    abandoned: int = 0
    abandon_sum: float = 0.0
    answered_within: dict[float, int] = field(default_factory=dict)
    abandoned_within: dict[float, int] = field(default_factory=dict)
    frt_n: int = 0
    frt_sum: float = 0.0
    handled: int = 0
    handle_sum: float = 0.0
    acw_n: int = 0
    acw_sum: float = 0.0
    resolved: int = 0
    resolution_sum: float = 0.0
    closed: int = 0
    transfers: int = 0
    transferred: int = 0
    csat_n: int = 0
    csat_sum: float = 0.0
    complaints: int = 0

    def add(self, other: Partial) -> None:
        for name in _SUMMED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.wait_max is not None:
            self.wait_max = (
                other.wait_max if self.wait_max is None else max(self.wait_max, other.wait_max)
            )
        for mine, theirs in (
            (self.answered_within, other.answered_within),
            (self.abandoned_within, other.abandoned_within),
        ):
            for cut, n in theirs.items():
                mine[cut] = mine.get(cut, 0) + n

    def add_contact(self, c: ContactFact, cuts: Sequence[float]) -> None:
        self.contacts += 1
        if c.wait_s is not None:
            self.answered += 1
            self.wait_sum += c.wait_s
            self.wait_max = c.wait_s if self.wait_max is None else max(self.wait_max, c.wait_s)
        if c.abandon_wait_s is not None:
            self.abandoned += 1
            self.abandon_sum += c.abandon_wait_s
        for cut in cuts:
            within = c.wait_s is not None and c.wait_s <= cut
            self.answered_within[cut] = self.answered_within.get(cut, 0) + within
            left = c.abandon_wait_s is not None and c.abandon_wait_s <= cut
            self.abandoned_within[cut] = self.abandoned_within.get(cut, 0) + left
        if c.frt_s is not None:
            self.frt_n += 1
            self.frt_sum += c.frt_s
        if c.handle_s is not None:
            self.handled += 1
            self.handle_sum += c.handle_s
        if c.acw_s is not None:
            self.acw_n += 1
            self.acw_sum += c.acw_s
        if c.resolution_s is not None:
            self.resolved += 1
            self.resolution_sum += c.resolution_s
        self.closed += c.closed_at is not None
        self.transfers += c.transfers
        self.transferred += c.transfers > 0
        if c.csat_score is not None:
            self.csat_n += 1
            self.csat_sum += c.csat_score
        self.complaints += c.complaint


_SUMMED = (
    "contacts",
    "answered",
    "wait_sum",
    "abandoned",
    "abandon_sum",
    "frt_n",
    "frt_sum",
    "handled",
    "handle_sum",
    "acw_n",
    "acw_sum",
    "resolved",
    "resolution_sum",
    "closed",
    "transfers",
    "transferred",
    "csat_n",
    "csat_sum",
    "complaints",
)


@dataclass(frozen=True, slots=True)
class PartialKey:
    """Where a partial belongs: slot start (epoch; None when not bucketed), queue ("" when
    not grouped by it), channel, agent (when grouped by it), and business hours."""

    slot: float | None
    queue: str
    channel: str
    agent_id: int | None = None
    in_hours: bool = True


PartialRows = list[tuple[PartialKey, Partial]]


def selects(c: ContactFact, spec: ReportSpec) -> bool:
    """True when the contact is inside the spec's range and filters."""
    start, end = spec.start.timestamp(), spec.end.timestamp()
    return (
        start <= c.arrived_at < end
        and (spec.queues is None or c.queue in spec.queues)
        and (spec.channel is None or c.channel == spec.channel)
        and (spec.agent_id is None or c.agent_id == spec.agent_id)
    )


def contact_partials(
    contacts: Iterable[ContactFact], spec: ReportSpec, ctx: ReportContext
) -> PartialRows:
    """Aggregate contacts by 15-minute slot, queue, channel (and agent when grouped by it)."""
    cuts = spec.cut_points
    by_key: dict[PartialKey, Partial] = {}
    for c in contacts:
        if not selects(c, spec):
            continue
        key = PartialKey(
            float(c.arrived_slot * SLOT_S),
            c.queue,
            c.channel,
            c.agent_id if spec.group_by == "agent" else None,
            ctx.is_open(c.queue, c.arrived_slot),
        )
        by_key.setdefault(key, Partial()).add_contact(c, cuts)
    return list(by_key.items())
