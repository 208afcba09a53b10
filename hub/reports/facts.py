"""Facts folded from the event log: contacts, handling stretches, agent intervals."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub import events

SLOT_S = 900  # contacts are grouped by 15-minute arrival slots; every UTC offset is a multiple
ARRIVALS = frozenset({events.ConversationCreated.TYPE, events.ConversationReopened.TYPE})
BOT_KINDS = frozenset({"auto_reply", "bulk"})
COMPLAINT = "complaint"
# Event types the fold reads; everything else (offers, statuses, customers) is irrelevant.
FOLDED = (
    events.ConversationCreated.TYPE,
    events.ConversationReopened.TYPE,
    events.ConversationAssigned.TYPE,
    events.ConversationTransferred.TYPE,
    events.ConversationWrapUp.TYPE,
    events.ConversationClosed.TYPE,
    events.ConversationAbandoned.TYPE,
    events.ConversationUpdated.TYPE,
    events.MessageSent.TYPE,
    events.MessageReceived.TYPE,
    events.AgentStateChanged.TYPE,
)


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
        if ev.type == events.AgentStateChanged.TYPE:
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
        if ev.type == events.ConversationAssigned.TYPE and ev.agent_id is not None:
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
        if ev.type == events.ConversationTransferred.TYPE:
            self._release(conv, t, "transfer")
        elif ev.type == events.ConversationWrapUp.TYPE:
            handle = self.handles.get(conv)
            if handle is not None and handle.ended_at is None:
                handle.ended_at = t
                handle.outcome = "wrap_up"
                self.changed_handles[id(handle)] = handle
        elif ev.type in (events.ConversationClosed.TYPE, events.ConversationAbandoned.TYPE):
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
    events.ConversationAssigned.TYPE: Folder._assigned,
    events.ConversationTransferred.TYPE: Folder._transferred,
    events.ConversationWrapUp.TYPE: Folder._wrap_up,
    events.ConversationClosed.TYPE: Folder._closed,
    events.ConversationAbandoned.TYPE: Folder._abandoned,
    events.ConversationUpdated.TYPE: Folder._updated,
    events.MessageSent.TYPE: Folder._sent,
    events.MessageReceived.TYPE: Folder._received,
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
