"""KPIs from the event log: a pure fold into contact facts, then mergeable aggregates.

The event log is the only input. ``fold`` turns events into facts: one ``ContactFact`` per
contact (a conversation from its arrival, ``conversation.created`` or
``conversation.reopened``, to its end), one ``HandleFact`` per stretch an agent held it, and
``AgentInterval``s (state, staffed, busy) per agent. Facts are aggregated into ``Partial``s
keyed by (15-minute slot, queue, channel, agent, in business hours); partials merge, so the
same finishing code
turns them into reports whether they were summed here (tests) or by the database
(``hub.reports_sql``, which keeps the facts as a rollup of the same fold).

Definitions (routing.md §1-§2):

- A contact is *answered* by its first ``conversation.assigned``; its wait is the event's
  ``wait_s`` (from waiting_since). Later assignments (transfers) are not answers.
- It is *abandoned* by ``conversation.abandoned`` (``wait_s``), or by ``conversation.closed``
  before any assignment (wait = arrival to close).
- Service level at T counting abandons = (answered within T + abandoned within T) /
  (answered + abandoned); answered only = answered within T / answered. Within T is
  ``wait <= T``. Abandonment rate = abandoned / (answered + abandoned). ASA = mean wait of
  answered contacts.
- First response: arrival to the first reply written by a person (``message.sent`` with an
  agent author who is not a bot, i.e. no agent of role "bot" and no ``bot`` payload flag,
  and kind not auto_reply/bulk); notes never count.
- Handle time (AHT): first assignment to the first wrap-up, or to the close without one;
  after-contact work (ACW): wrap-up to close. Resolution: arrival to close, answered only.
- CSAT: the contact's last ``message.received`` of kind csat with a numeric ``score``;
  response rate = responses / closed contacts. Complaint: label or disposition "complaint".
- Contact figures are attributed to the contact's arrival time (its slot, its queue's
  business hours); agent handling and occupancy to the time the work happened.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from routing import erlang

SLOT_S = 900  # contacts are grouped by 15-minute arrival slots; every UTC offset is a multiple
ARRIVALS = frozenset({"conversation.created", "conversation.reopened"})
BOT_KINDS = frozenset({"auto_reply", "bulk"})
COMPLAINT = "complaint"
# Event types the fold reads; everything else (offers, statuses, customers) is irrelevant.
FOLDED = (
    "conversation.created",
    "conversation.reopened",
    "conversation.assigned",
    "conversation.transferred",
    "conversation.wrap_up",
    "conversation.closed",
    "conversation.abandoned",
    "conversation.updated",
    "message.sent",
    "message.received",
    "agent.state_changed",
)
Bucket = Literal["15m", "hour", "day"]
GroupBy = Literal["queue", "team", "agent", "channel"]
BUCKET_S: dict[str, int] = {"15m": 900, "hour": 3600, "day": 86400}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# ---------------------------------------------------------------------------- inputs
@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    """One stored event as the fold reads it."""

    seq: int
    type: str
    at: datetime
    conversation_id: int | None = None
    agent_id: int | None = None
    queue: str = ""
    channel: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class ContactFact:
    """One contact; times are UTC epoch seconds, durations seconds (None: did not happen)."""

    arrival_seq: int
    conversation_id: int
    queue: str
    channel: str
    arrived_at: float
    agent_id: int | None = None
    last_agent_id: int | None = None
    answered_at: float | None = None
    wait_s: float | None = None
    abandoned_at: float | None = None
    abandon_wait_s: float | None = None
    frt_s: float | None = None
    wrap_up_at: float | None = None
    handle_s: float | None = None
    acw_s: float | None = None
    closed_at: float | None = None
    resolution_s: float | None = None
    disposition: str = ""
    transfers: int = 0
    csat_score: float | None = None
    labelled_complaint: bool = False
    complaint: bool = False
    last_seq: int = 0

    @property
    def arrived_slot(self) -> int:
        return int(self.arrived_at // SLOT_S)


@dataclass(slots=True, kw_only=True)
class HandleFact:
    """An agent holding a contact: assigned until wrap-up/transfer/close, released at close."""

    seq: int
    conversation_id: int
    agent_id: int
    queue: str
    channel: str
    started_at: float
    ended_at: float | None = None
    released_at: float | None = None
    outcome: str = ""


@dataclass(slots=True, kw_only=True)
class AgentInterval:
    """A stretch of one agent's time: ``kind`` state (with ``state``), staffed or busy."""

    agent_id: int
    kind: str
    state: str
    started_at: float
    ended_at: float | None = None
    seq: int = 0
    id: int | None = None  # storage id once persisted


@dataclass(slots=True)
class AgentStatus:
    """The fold's view of one agent: state, held contacts and open intervals by kind."""

    state: str | None = None
    active: int = 0
    open: dict[str, AgentInterval] = field(default_factory=dict)


# ---------------------------------------------------------------------------- fold
def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


class Folder:
    """Applies events in seq order; may start from stored facts (incremental rollup)."""

    def __init__(
        self,
        *,
        bots: frozenset[int] = frozenset(),
        current: dict[int, ContactFact] | None = None,
        handles: dict[int, HandleFact] | None = None,
        agents: dict[int, AgentStatus] | None = None,
    ) -> None:
        self.bots = bots
        self.current = current if current is not None else {}  # conversation -> last contact
        self.handles = handles if handles is not None else {}  # conversation -> open handle
        self.agents = agents if agents is not None else {}
        # What changed (keyed by identity of the fact), for writing back.
        self.contacts: dict[int, ContactFact] = {}
        self.changed_handles: dict[int, HandleFact] = {}
        self.intervals: dict[int, AgentInterval] = {}

    def apply_all(self, events: Iterable[EventRecord]) -> None:
        for ev in events:
            self.apply(ev)

    def apply(self, ev: EventRecord) -> None:
        t = ev.at.timestamp()
        if ev.type == "agent.state_changed":
            if ev.agent_id is not None:
                self._state(ev.agent_id, str(ev.payload.get("state") or ""), t, ev.seq)
            return
        conv = ev.conversation_id
        if conv is None:
            return
        if ev.type in ARRIVALS:
            self._release(conv, t, "reopened")
            self._touch(
                ContactFact(
                    arrival_seq=ev.seq,
                    conversation_id=conv,
                    queue=ev.queue,
                    channel=ev.channel,
                    arrived_at=t,
                    last_seq=ev.seq,
                )
            )
            return
        if ev.type == "conversation.assigned" and ev.agent_id is not None:
            self._release(conv, t, "reassigned")
            self._open_handle(conv, ev, t)
        contact = self.current.get(conv)
        handler = _CONTACT_HANDLERS.get(ev.type)
        if contact is not None and handler is not None:
            contact.last_seq = ev.seq
            self._touch(contact)
            handler(self, contact, ev, t)
        self._handles_only(ev, conv, t)

    # -- contact transitions
    def _assigned(self, c: ContactFact, ev: EventRecord, t: float) -> None:
        c.last_agent_id = ev.agent_id
        if c.answered_at is None and c.abandoned_at is None:
            wait = _number(ev.payload.get("wait_s"))
            c.answered_at = t
            c.wait_s = max(0.0, wait if wait is not None else t - c.arrived_at)
            c.agent_id = ev.agent_id

    def _transferred(self, c: ContactFact, ev: EventRecord, t: float) -> None:
        c.transfers += 1

    def _wrap_up(self, c: ContactFact, ev: EventRecord, t: float) -> None:
        if c.wrap_up_at is None:
            c.wrap_up_at = t
        if c.answered_at is not None and c.handle_s is None:
            c.handle_s = max(0.0, t - c.answered_at)

    def _closed(self, c: ContactFact, ev: EventRecord, t: float) -> None:
        if c.closed_at is not None:
            return
        c.closed_at = t
        c.disposition = str(ev.payload.get("disposition") or "")[:100]
        c.complaint = c.labelled_complaint or c.disposition.strip().lower() == COMPLAINT
        if c.answered_at is None:
            if c.abandoned_at is None:
                c.abandoned_at = t
                c.abandon_wait_s = max(0.0, t - c.arrived_at)
            return
        if c.handle_s is None:
            c.handle_s = max(0.0, t - c.answered_at)
        if c.wrap_up_at is not None:
            c.acw_s = max(0.0, t - c.wrap_up_at)
        c.resolution_s = max(0.0, t - c.arrived_at)

    def _abandoned(self, c: ContactFact, ev: EventRecord, t: float) -> None:
        if c.answered_at is None and c.abandoned_at is None:
            wait = _number(ev.payload.get("wait_s"))
            c.abandoned_at = t
            c.abandon_wait_s = max(0.0, wait if wait is not None else t - c.arrived_at)

    def _updated(self, c: ContactFact, ev: EventRecord, t: float) -> None:
        labels = ev.payload.get("labels")
        if isinstance(labels, list):
            c.labelled_complaint = any(str(x).strip().lower() == COMPLAINT for x in labels)
            c.complaint = c.labelled_complaint or c.disposition.strip().lower() == COMPLAINT

    def _sent(self, c: ContactFact, ev: EventRecord, t: float) -> None:
        if c.frt_s is not None or ev.agent_id is None or ev.agent_id in self.bots:
            return
        if ev.payload.get("kind") in BOT_KINDS or ev.payload.get("bot"):
            return
        c.frt_s = max(0.0, t - c.arrived_at)

    def _received(self, c: ContactFact, ev: EventRecord, t: float) -> None:
        if ev.payload.get("kind") == "csat":
            score = _number(ev.payload.get("score"))
            if score is not None:
                c.csat_score = score

    # -- handles and agent time
    def _handles_only(self, ev: EventRecord, conv: int, t: float) -> None:
        if ev.type == "conversation.transferred":
            self._release(conv, t, "transfer")
        elif ev.type == "conversation.wrap_up":
            handle = self.handles.get(conv)
            if handle is not None and handle.ended_at is None:
                handle.ended_at = t
                handle.outcome = "wrap_up"
                self.changed_handles[id(handle)] = handle
        elif ev.type in ("conversation.closed", "conversation.abandoned"):
            self._release(conv, t, "closed")

    def _open_handle(self, conv: int, ev: EventRecord, t: float) -> None:
        assert ev.agent_id is not None
        handle = HandleFact(
            seq=ev.seq,
            conversation_id=conv,
            agent_id=ev.agent_id,
            queue=ev.queue,
            channel=ev.channel,
            started_at=t,
        )
        self.handles[conv] = handle
        self.changed_handles[id(handle)] = handle
        status = self.agents.setdefault(ev.agent_id, AgentStatus())
        status.active += 1
        self._sync(ev.agent_id, status, t, ev.seq)

    def _release(self, conv: int, t: float, outcome: str) -> None:
        handle = self.handles.pop(conv, None)
        if handle is None:
            return
        if handle.ended_at is None:
            handle.ended_at = t
            handle.outcome = outcome
        handle.released_at = t
        self.changed_handles[id(handle)] = handle
        status = self.agents.setdefault(handle.agent_id, AgentStatus())
        status.active = max(0, status.active - 1)
        self._sync(handle.agent_id, status, t, 0)

    def _state(self, agent_id: int, state: str, t: float, seq: int) -> None:
        status = self.agents.setdefault(agent_id, AgentStatus())
        status.state = state
        self._close(status, "state", t)
        self._open(agent_id, status, "state", state, t, seq)
        self._sync(agent_id, status, t, seq)

    def _sync(self, agent_id: int, status: AgentStatus, t: float, seq: int) -> None:
        # Handling a contact is working time whatever the state says, so busy ⊆ staffed.
        staffed = status.active > 0 or (status.state is not None and status.state != "offline")
        for kind, wanted in (("staffed", staffed), ("busy", status.active > 0)):
            if wanted and kind not in status.open:
                self._open(agent_id, status, kind, "", t, seq)
            elif not wanted and kind in status.open:
                self._close(status, kind, t)

    def _open(
        self, agent_id: int, status: AgentStatus, kind: str, state: str, t: float, seq: int
    ) -> None:
        iv = AgentInterval(agent_id=agent_id, kind=kind, state=state, started_at=t, seq=seq)
        status.open[kind] = iv
        self.intervals[id(iv)] = iv

    def _close(self, status: AgentStatus, kind: str, t: float) -> None:
        iv = status.open.pop(kind, None)
        if iv is not None:
            iv.ended_at = max(t, iv.started_at)
            self.intervals[id(iv)] = iv

    def _touch(self, contact: ContactFact) -> None:
        self.current[contact.conversation_id] = contact
        self.contacts[id(contact)] = contact


_CONTACT_HANDLERS = {
    "conversation.assigned": Folder._assigned,
    "conversation.transferred": Folder._transferred,
    "conversation.wrap_up": Folder._wrap_up,
    "conversation.closed": Folder._closed,
    "conversation.abandoned": Folder._abandoned,
    "conversation.updated": Folder._updated,
    "message.sent": Folder._sent,
    "message.received": Folder._received,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """Everything the fold produced."""

    contacts: list[ContactFact]
    handles: list[HandleFact]
    intervals: list[AgentInterval]


def fold(events: Iterable[EventRecord], *, bots: frozenset[int] = frozenset()) -> Facts:
    """Fold events (in seq order) into facts."""
    folder = Folder(bots=bots)
    folder.apply_all(sorted(events, key=lambda e: e.seq))
    return Facts(
        contacts=sorted(folder.contacts.values(), key=lambda c: c.arrival_seq),
        handles=sorted(folder.changed_handles.values(), key=lambda h: h.seq),
        intervals=sorted(folder.intervals.values(), key=lambda i: (i.started_at, i.seq, i.kind)),
    )


# ---------------------------------------------------------------------------- hours
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


# ---------------------------------------------------------------------------- outputs
class Out(BaseModel):
    """Base of report models."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceLevel(Out):
    threshold_s: float = Field(description="a contact meets it when its wait is <= threshold_s")
    counting_abandons: float | None = Field(
        description="(answered + abandoned within T) / (answered + abandoned)"
    )
    answered_only: float | None = Field(description="answered within T / answered")


class Kpis(Out):
    contacts: int = Field(description="arrivals (new and re-opened conversations)")
    answered: int
    abandoned: int
    asa_s: float | None = Field(description="average speed of answer")
    max_wait_s: float | None
    abandonment_rate: float | None = Field(description="abandoned / (answered + abandoned)")
    avg_abandon_wait_s: float | None
    service_levels: list[ServiceLevel]
    first_responses: int
    first_response_avg_s: float | None
    handled: int
    aht_s: float | None = Field(description="assignment to wrap-up (or close)")
    acw_avg_s: float | None = Field(description="after-contact work: wrap-up to close")
    resolved: int
    resolution_avg_s: float | None = Field(description="arrival to close, answered contacts")
    closed: int
    transfers: int
    transferred_contacts: int
    csat_responses: int
    csat_avg: float | None
    csat_response_rate: float | None = Field(description="CSAT responses / closed contacts")
    complaints: int


class KpiRow(Kpis):
    key: str = Field(description="the group: queue, team, agent id or channel")
    out_of_hours_contacts: int


class ChannelCount(Out):
    channel: str
    contacts: int
    out_of_hours_contacts: int


class Summary(Out):
    start: datetime
    end: datetime
    tz: str
    group_by: str | None
    thresholds: list[float]
    total: Kpis = Field(description="contacts that arrived within business hours")
    out_of_hours: Kpis = Field(description="contacts that arrived outside business hours")
    by_channel: list[ChannelCount]
    rows: list[KpiRow]


class TimeseriesPoint(KpiRow):
    start: datetime
    end: datetime


class Timeseries(Out):
    start: datetime
    end: datetime
    tz: str
    bucket: str
    group_by: str | None
    thresholds: list[float]
    points: list[TimeseriesPoint]


class WaitBin(Out):
    low_s: float = Field(description="waits above this (the first bin starts at 0 inclusive)")
    high_s: float | None = Field(description="waits up to and including this; null: no bound")
    answered: int
    abandoned: int


class WaitDistribution(Out):
    start: datetime
    end: datetime
    tz: str
    answered: int
    abandoned: int
    out_of_hours_contacts: int = Field(description="left out: they wait for opening time")
    bins: list[WaitBin]


class AgentRow(Out):
    agent_id: int
    name: str
    team: str
    handled: int = Field(description="holds that ended in the range")
    aht_s: float | None
    acw_avg_s: float | None
    transfers_out: int
    answered: int = Field(description="contacts this agent answered first")
    asa_s: float | None
    first_response_avg_s: float | None
    csat_responses: int
    csat_avg: float | None
    complaints: int
    staffed_s: float = Field(description="time not offline, or holding a contact")
    busy_s: float = Field(description="time holding at least one contact (wrap-up included)")
    occupancy: float | None = Field(description="busy / staffed")
    state_s: dict[str, float] = Field(description="seconds in each state")


class AgentsReport(Out):
    start: datetime
    end: datetime
    tz: str
    items: list[AgentRow]


class StaffingRow(Out):
    arrivals_per_hour: float
    traffic_erlangs: float
    agents: int
    p_wait: float
    asa_s: float | None
    service_level: float
    occupancy: float


class Staffing(Out):
    aht_s: float
    target_sl: float
    threshold_s: float
    rows: list[StaffingRow] = Field(description="agents needed for each forecast value")
    around: list[StaffingRow] = Field(description="the first forecast with fewer/more agents")


# ---------------------------------------------------------------------------- finishing
def _sec(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 6) if den else None


def kpi_fields(p: Partial, thresholds: Sequence[float]) -> dict[str, Any]:
    """The figures of one partial."""
    left = p.answered + p.abandoned
    levels = [
        ServiceLevel(
            threshold_s=t,
            counting_abandons=_ratio(
                p.answered_within.get(t, 0) + p.abandoned_within.get(t, 0), left
            ),
            answered_only=_ratio(p.answered_within.get(t, 0), p.answered),
        )
        for t in thresholds
    ]
    return {
        "contacts": p.contacts,
        "answered": p.answered,
        "abandoned": p.abandoned,
        "asa_s": _sec(p.wait_sum / p.answered) if p.answered else None,
        "max_wait_s": _sec(p.wait_max),
        "abandonment_rate": _ratio(p.abandoned, left),
        "avg_abandon_wait_s": _sec(p.abandon_sum / p.abandoned) if p.abandoned else None,
        "service_levels": levels,
        "first_responses": p.frt_n,
        "first_response_avg_s": _sec(p.frt_sum / p.frt_n) if p.frt_n else None,
        "handled": p.handled,
        "aht_s": _sec(p.handle_sum / p.handled) if p.handled else None,
        "acw_avg_s": _sec(p.acw_sum / p.acw_n) if p.acw_n else None,
        "resolved": p.resolved,
        "resolution_avg_s": _sec(p.resolution_sum / p.resolved) if p.resolved else None,
        "closed": p.closed,
        "transfers": p.transfers,
        "transferred_contacts": p.transferred,
        "csat_responses": p.csat_n,
        "csat_avg": _ratio(p.csat_sum, p.csat_n),
        "csat_response_rate": _ratio(p.csat_n, p.closed),
        "complaints": p.complaints,
    }


def group_of(key: PartialKey, spec: ReportSpec, ctx: ReportContext) -> str:
    if spec.group_by == "queue":
        return key.queue
    if spec.group_by == "team":
        return ctx.teams.get(key.queue, "")
    if spec.group_by == "channel":
        return key.channel
    if spec.group_by == "agent":
        return "" if key.agent_id is None else str(key.agent_id)
    return ""


def summary(rows: PartialRows, spec: ReportSpec, ctx: ReportContext) -> Summary:
    """Totals (in hours and out of hours), contacts per channel, and rows per group."""
    total, outside = Partial(), Partial()
    channels: dict[str, list[int]] = {}
    groups: dict[str, tuple[Partial, list[int]]] = {}
    for key, p in rows:
        open_ = key.in_hours
        (total if open_ else outside).add(p)
        channels.setdefault(key.channel, [0, 0])[0 if open_ else 1] += p.contacts
        if spec.group_by is not None:
            inside, ooh = groups.setdefault(group_of(key, spec, ctx), (Partial(), [0]))
            if open_:
                inside.add(p)
            else:
                ooh[0] += p.contacts
    return Summary(
        start=spec.start,
        end=spec.end,
        tz=spec.tz.key,
        group_by=spec.group_by,
        thresholds=list(spec.thresholds),
        total=Kpis(**kpi_fields(total, spec.thresholds)),
        out_of_hours=Kpis(**kpi_fields(outside, spec.thresholds)),
        by_channel=[
            ChannelCount(channel=ch, contacts=n[0], out_of_hours_contacts=n[1])
            for ch, n in sorted(channels.items())
        ],
        rows=[
            KpiRow(key=g, out_of_hours_contacts=ooh[0], **kpi_fields(p, spec.thresholds))
            for g, (p, ooh) in sorted(groups.items())
        ],
    )


def bucket_start(at: float, bucket: Bucket, tz: ZoneInfo) -> datetime:
    """The local start of the bucket holding ``at``."""
    local = datetime.fromtimestamp(at, tz)
    if bucket == "15m":
        local = local.replace(minute=local.minute // 15 * 15, second=0, microsecond=0)
    elif bucket == "hour":
        local = local.replace(minute=0, second=0, microsecond=0)
    else:
        local = datetime.combine(local.date(), time(0), tz)
    return local


def bucket_end(start: datetime, bucket: Bucket) -> datetime:
    if bucket == "day":
        assert start.tzinfo is not None
        return datetime.combine(start.date() + timedelta(days=1), time(0), start.tzinfo)
    return datetime.fromtimestamp(start.timestamp() + BUCKET_S[bucket], start.tzinfo)


def buckets(spec: ReportSpec) -> list[float]:
    """Bucket starts (epoch) covering the range, found slot by slot (DST-proof)."""
    assert spec.bucket is not None
    seen: dict[float, None] = {}
    slot = spec.start.timestamp() // SLOT_S * SLOT_S
    end = spec.end.timestamp()
    while slot < end:
        seen[bucket_start(max(slot, spec.start.timestamp()), spec.bucket, spec.tz).timestamp()] = (
            None
        )
        slot += SLOT_S
    return list(seen)


def timeseries(rows: PartialRows, spec: ReportSpec, ctx: ReportContext) -> Timeseries:
    """Figures per time bucket (and group), zero-filled; out-of-hours arrivals counted apart."""
    assert spec.bucket is not None
    cells: dict[tuple[float, str], tuple[Partial, list[int]]] = {}
    groups: set[str] = set()
    for key, p in rows:
        assert key.slot is not None
        start = bucket_start(key.slot, spec.bucket, spec.tz).timestamp()
        group = group_of(key, spec, ctx)
        groups.add(group)
        inside, ooh = cells.setdefault((start, group), (Partial(), [0]))
        if key.in_hours:
            inside.add(p)
        else:
            ooh[0] += p.contacts
    points = []
    for start in buckets(spec):
        begin = datetime.fromtimestamp(start, spec.tz)
        for group in sorted(groups or {""}):
            p, ooh = cells.get((start, group), (Partial(), [0]))
            points.append(
                TimeseriesPoint(
                    start=begin,
                    end=bucket_end(begin, spec.bucket),
                    key=group,
                    out_of_hours_contacts=ooh[0],
                    **kpi_fields(p, spec.thresholds),
                )
            )
    return Timeseries(
        start=spec.start,
        end=spec.end,
        tz=spec.tz.key,
        bucket=spec.bucket,
        group_by=spec.group_by,
        thresholds=list(spec.thresholds),
        points=points,
    )


def wait_distribution(rows: PartialRows, spec: ReportSpec, ctx: ReportContext) -> WaitDistribution:
    """Answered and abandoned waits in bins ``[0, e1], (e1, e2], ..., (en, inf)``."""
    total, outside = Partial(), 0
    for key, p in rows:
        if key.in_hours:
            total.add(p)
        else:
            outside += p.contacts
    edges = sorted(set(spec.edges))
    bins: list[WaitBin] = []
    prev_edge, prev_ans, prev_ab = 0.0, 0, 0
    for edge in [*edges, None]:
        ans = total.answered if edge is None else total.answered_within.get(edge, 0)
        ab = total.abandoned if edge is None else total.abandoned_within.get(edge, 0)
        bins.append(
            WaitBin(low_s=prev_edge, high_s=edge, answered=ans - prev_ans, abandoned=ab - prev_ab)
        )
        prev_edge, prev_ans, prev_ab = edge or prev_edge, ans, ab
    return WaitDistribution(
        start=spec.start,
        end=spec.end,
        tz=spec.tz.key,
        answered=total.answered,
        abandoned=total.abandoned,
        out_of_hours_contacts=outside,
        bins=bins,
    )


# ---------------------------------------------------------------------------- agents
@dataclass(slots=True)
class AgentWork:
    """One agent's handling and time in the range."""

    handled: int = 0
    handle_sum: float = 0.0
    acw_n: int = 0
    acw_sum: float = 0.0
    transfers_out: int = 0
    staffed_s: float = 0.0
    busy_s: float = 0.0
    state_s: dict[str, float] = field(default_factory=dict)


def agent_work(
    handles: Iterable[HandleFact],
    intervals: Iterable[AgentInterval],
    spec: ReportSpec,
    *,
    now: float,
    agents: frozenset[int] | None = None,
) -> dict[int, AgentWork]:
    """Holds ended in the range (queue/channel filters apply) and time clipped to it."""
    start, end = spec.start.timestamp(), spec.end.timestamp()
    out: dict[int, AgentWork] = {}

    def wanted(agent_id: int) -> bool:
        return (spec.agent_id is None or agent_id == spec.agent_id) and (
            agents is None or agent_id in agents
        )

    for h in handles:
        if h.ended_at is None or not start <= h.ended_at < end or not wanted(h.agent_id):
            continue
        if (spec.queues is not None and h.queue not in spec.queues) or (
            spec.channel is not None and h.channel != spec.channel
        ):
            continue
        w = out.setdefault(h.agent_id, AgentWork())
        w.handled += 1
        w.handle_sum += h.ended_at - h.started_at
        w.transfers_out += h.outcome == "transfer"
        if h.outcome == "wrap_up" and h.released_at is not None:
            w.acw_n += 1
            w.acw_sum += h.released_at - h.ended_at
    stop = min(end, now)
    for iv in intervals:
        if not wanted(iv.agent_id):
            continue
        seconds = min(stop, now if iv.ended_at is None else iv.ended_at) - max(start, iv.started_at)
        if seconds <= 0:
            continue
        w = out.setdefault(iv.agent_id, AgentWork())
        if iv.kind == "staffed":
            w.staffed_s += seconds
        elif iv.kind == "busy":
            w.busy_s += seconds
        else:
            w.state_s[iv.state] = w.state_s.get(iv.state, 0.0) + seconds
    return out


def agents_report(
    contact_rows: PartialRows,
    work: Mapping[int, AgentWork],
    spec: ReportSpec,
    *,
    people: Mapping[int, tuple[str, str]] | None = None,
) -> AgentsReport:
    """Per agent: handling, answers (all hours), CSAT, complaints, time and occupancy."""
    answered: dict[int, Partial] = {}
    for key, p in contact_rows:
        if key.agent_id is not None:
            answered.setdefault(key.agent_id, Partial()).add(p)
    people = people or {}
    ids = sorted(set(work) | set(answered) | set(people))
    items = []
    for agent_id in ids:
        w = work.get(agent_id, AgentWork())
        p = answered.get(agent_id, Partial())
        name, team = people.get(agent_id, ("", ""))
        items.append(
            AgentRow(
                agent_id=agent_id,
                name=name,
                team=team,
                handled=w.handled,
                aht_s=_sec(w.handle_sum / w.handled) if w.handled else None,
                acw_avg_s=_sec(w.acw_sum / w.acw_n) if w.acw_n else None,
                transfers_out=w.transfers_out,
                answered=p.answered,
                asa_s=_sec(p.wait_sum / p.answered) if p.answered else None,
                first_response_avg_s=_sec(p.frt_sum / p.frt_n) if p.frt_n else None,
                csat_responses=p.csat_n,
                csat_avg=_ratio(p.csat_sum, p.csat_n),
                complaints=p.complaints,
                staffed_s=round(w.staffed_s, 3),
                busy_s=round(w.busy_s, 3),
                occupancy=_ratio(min(w.busy_s, w.staffed_s), w.staffed_s),
                state_s={k: round(v, 3) for k, v in sorted(w.state_s.items())},
            )
        )
    return AgentsReport(start=spec.start, end=spec.end, tz=spec.tz.key, items=items)


# ---------------------------------------------------------------------------- staffing
def _staffing_row(arrivals: float, aht_s: float, agents: int, threshold_s: float) -> StaffingRow:
    a = erlang.traffic(arrivals, aht_s)
    asa = erlang.asa(agents, a, aht_s) if agents else math.inf
    return StaffingRow(
        arrivals_per_hour=arrivals,
        traffic_erlangs=round(a, 6),
        agents=agents,
        p_wait=round(erlang.p_wait(agents, a), 6) if arrivals else 0.0,
        asa_s=None if math.isinf(asa) else round(asa, 3),
        service_level=round(erlang.service_level(agents, a, aht_s, threshold_s), 6)
        if arrivals
        else 1.0,
        occupancy=round(erlang.occupancy(agents, a), 6) if agents else 0.0,
    )


def staffing(
    arrivals_per_hour: Sequence[float], *, aht_s: float, target_sl: float, threshold_s: float
) -> Staffing:
    """Agents needed (Erlang C) for each forecast of arrivals per hour."""
    if aht_s <= 0:
        raise ValueError("aht_s must be positive")
    if not 0 < target_sl < 1:
        raise ValueError("target_sl must be between 0 and 1 (exclusive)")
    if threshold_s < 0 or any(a < 0 for a in arrivals_per_hour) or not arrivals_per_hour:
        raise ValueError("threshold_s and arrivals_per_hour must be non-negative")
    rows = []
    for arrivals in arrivals_per_hour:
        needed = (
            erlang.required_agents(erlang.traffic(arrivals, aht_s), aht_s, target_sl, threshold_s)
            if arrivals
            else 0
        )
        rows.append(_staffing_row(arrivals, aht_s, needed, threshold_s))
    first = rows[0]
    around = [
        _staffing_row(first.arrivals_per_hour, aht_s, c, threshold_s)
        for c in range(max(1, first.agents - 2), first.agents + 4)
        if c > first.traffic_erlangs
    ]
    return Staffing(
        aht_s=aht_s, target_sl=target_sl, threshold_s=threshold_s, rows=rows, around=around
    )


# ---------------------------------------------------------------------------- convenience
def report_events(
    events: Iterable[EventRecord],
    spec: ReportSpec,
    ctx: ReportContext | None = None,
    *,
    bots: frozenset[int] = frozenset(),
) -> Summary:
    """The summary of a list of events (fold, aggregate, finish): the reference path."""
    ctx = ctx or ReportContext()
    facts = fold(events, bots=bots)
    return summary(contact_partials(facts.contacts, spec, ctx), spec, ctx)
