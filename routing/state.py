"""The router's mechanics: deadlines, steps, reservations and endings, below the public API.

Kept apart from ``routing.core`` (which validates calls and returns events) so each file
stays readable. The hot path (add, offer, accept, complete) is written with few calls and
allocations: it runs on every contact.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from routing.events import (
    AgentStateChanged,
    Event,
    ReservationRescinded,
    ReservationTimeout,
    TaskCanceled,
    TaskStepExpired,
    reservation_created,
    task_completed,
    task_created,
)
from routing.index import WAITING, AgentIndex, WaitingLists
from routing.models import (
    QueueSpec,
    RouterConfig,
    RoutingError,
    TaskSpec,
    UnknownAgent,
    UnknownTask,
)
from routing.policy import SplitMix, task_key
from routing.records import INF, AgentRec, CompiledStep, QueueRec, ResRec, TaskRec
from routing.stats import StatsLog
from routing.steps import StepBook, step_at

RES, STEP, DELAY, WRAP, TTL = range(5)
Due = tuple[float, int, int, int, int]


def routable(t: TaskRec) -> bool:
    """The task can take (another) offer."""
    q = t.q
    return t.live and t.status in WAITING and q is not None and len(t.res) < q.spec.parallel_offers


def _order_key(t: TaskRec) -> tuple[float, float]:
    assert t.q is not None
    return task_key(t.q.spec.task_order, t.priority, t.created_at)


class RouterState:
    """Mutable state and the transitions between states; ``Router`` is the public face."""

    def __init__(self, config: RouterConfig | None, rng: Callable[[], float] | None) -> None:
        self.config = config or RouterConfig()
        self._agents: dict[int, AgentRec] = {}
        self._tasks: dict[int, TaskRec] = {}
        self._queues: dict[str, QueueRec] = {}
        self._index = AgentIndex(
            self.config.channels,
            self.config.unknown_channel,
            rng or SplitMix(),
            self._agents,
            self.config.pools,
        )
        self._waiting = WaitingLists()
        self._heap: list[Due] = []
        self._res: dict[int, ResRec] = {}  # offers in flight by reservation id
        self._seq = 0
        self._offer_seq = 0
        self._next_res = 1
        self._now = -INF
        self._events: list[Event] = []
        self._dirty_tasks: dict[TaskRec, None] = {}
        self._log = StatsLog(self.config.stats_retention_s) if self.config.record_stats else None
        self._steps = StepBook()

    # ================================================================ calls and deadlines
    def _run(self, now: float, action: Callable[..., None], *args: Any) -> list[Event]:
        """Apply what fell due, then ``action(now, *args)``, then route; return the events."""
        if now < self._now:
            now = self._now
        heap = self._heap
        try:
            if heap and heap[0][0] <= now:
                self._expire(now)
            self._now = now
            action(now, *args)
            # Deadlines the change brought that are already due (restored offers, TTLs)
            # go first, so nothing is offered that is about to expire anyway.
            while heap and heap[0][0] <= now:
                self._expire(now)
            if self._dirty_tasks or self._index.dirty:
                self._drain(now)
        except RoutingError as err:
            err.events = tuple(self._events)
            self._events = []
            raise
        events = self._events
        self._events = []
        return events

    def _push(self, at: float, kind: int, ref: int, version: int) -> None:
        # Entries hold ids, not records: a tuple of numbers is dropped from the garbage
        # collector's watch, so the heap does not feed full collections.
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, kind, ref, version))

    def _bump(self) -> int:
        """A fresh version: versions are global, so a reused task id cannot match."""
        self._seq += 1
        return self._seq

    def _due(self, entry: Due) -> ResRec | TaskRec | None:
        """The record a deadline is for, if it still applies."""
        _, _, kind, ref, version = entry
        if kind == RES:
            return self._res.get(ref)
        t = self._tasks.get(ref)
        if t is None:
            return None
        if kind == WRAP:
            ok = t.status == "wrapping" and t.version == version
        elif kind == TTL:
            ok = t.status in WAITING and t.born == version
        else:
            ok = t.version == version and t.status in WAITING
        return t if ok else None

    def _expire(self, now: float) -> None:
        """Handle every deadline up to ``now`` in time order, each at its own time."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            obj = self._due(entry)
            if obj is None:
                continue
            at, kind = entry[0], entry[2]
            if isinstance(obj, ResRec):
                self._timeout(obj, at)
            elif kind == STEP:
                self._step_due(obj, at)
            elif kind == DELAY:
                self._sync_wait(obj)
                self._push_delay(obj, at)
            elif kind == WRAP:
                self._finish(obj, at)
            else:
                self._cancel(obj, at, "ttl")
            # Route as of the deadline (never before the previous call: restore, late ticks).
            self._drain(at if at > self._now else self._now)

    def _drain(self, at: float) -> None:
        """Route dirty tasks (best first), then let agents that gained capacity pull work."""
        index = self._index
        while self._dirty_tasks or index.dirty:
            # Each batch is taken by swapping in a fresh dict (what it marks dirty goes to the
            # next batch): cheaper than copying it to a list, which most calls route one of.
            if self._dirty_tasks:
                tasks = self._dirty_tasks
                self._dirty_tasks = {}
                for t in sorted(tasks, key=_order_key) if len(tasks) > 1 else tasks:
                    self._route_task(t, at)
            else:
                agents = index.dirty
                index.dirty = {}
                if not self._waiting.size:
                    break  # nothing waits anywhere: nothing to pull
                best_for = self._waiting.best_for
                for a in agents:
                    while a.routable:
                        found = best_for(a, at)
                        if found is None:
                            break
                        self._reserve(found, a, at)

    def _record(
        self, at: float, queue: str, kind: str, wait: float = 0.0, qwait: float = 0.0
    ) -> None:
        if self._log is not None:
            self._log.record(at, queue, kind, wait, qwait)

    # ================================================================ lookups
    def _task(self, task_id: int) -> TaskRec:
        t = self._tasks.get(task_id)
        if t is None:
            raise UnknownTask(f"no live task {task_id}")
        return t

    def _agent(self, agent_id: int) -> AgentRec:
        a = self._agents.get(agent_id)
        if a is None:
            raise UnknownAgent(f"no agent {agent_id}")
        return a

    def _activity(self, state: str) -> bool:
        try:
            return self.config.activities[state]
        except KeyError:
            known = ", ".join(self.config.activities)
            raise RoutingError(f"unknown agent state {state!r} (known: {known})") from None

    def _queue(self, name: str) -> QueueRec:
        q = self._queues.get(name)
        if q is None:
            q = self._queues[name] = QueueRec(QueueSpec(name=name), ())
        return q

    def _qname(self, t: TaskRec) -> str:
        return t.q.name if t.q is not None else t.queue

    # ================================================================ steps
    def _place(self, t: TaskRec, idx: int) -> None:
        """Point the task at step ``idx``: its queue, requirement and priority."""
        step = t.steps[idx if idx < len(t.steps) else -1]
        t.step = idx
        q = self._queue(step.queue) if step.queue is not None else t.home
        assert q is not None
        if q is not t.q:
            if t.q is not None:
                t.q.tasks.discard(t)
            q.tasks.add(t)
            t.q = q
        req = step.req
        t.pred, t.hint, t.skills, t.keys = req.pred, req.hint, req.skills, req.keys
        t.priority = step.priority if step.priority is not None else t.base_priority
        t.skip_check = step.skip_if is not None
        t.version = self._bump()

    def _enter_step(self, t: TaskRec, idx: int, at: float) -> None:
        """Make step ``idx`` current (cancel when past the last), then queue a routing try."""
        if idx >= len(t.steps):
            self._cancel(t, at, "workflow_timeout")
            return
        if t.entry is not None:
            self._waiting.remove(t)
        old_q = t.q
        self._place(t, idx)
        if old_q is not None and old_q is not t.q:
            t.entered_at = at
        offset = t.offsets[idx]
        if offset < INF:
            self._push(t.origin + offset, STEP, t.id, t.version)
        self._push_delay(t, at)
        self._sync_wait(t)

    def _push_delay(self, t: TaskRec, at: float) -> None:
        q = t.q
        if q is None or not q.delays:
            return
        for d in q.delay_boundaries():
            if t.entered_at + d > at:
                self._push(t.entered_at + d, DELAY, t.id, t.version)
                return

    def _step_due(self, t: TaskRec, at: float) -> None:
        new = step_at(t, at, t.step)
        for i in range(t.step + 1, min(new, len(t.steps) - 1) + 1):
            self._step_event(t, i, at, skipped=False)
        self._enter_step(t, new, at)

    def _step_event(self, t: TaskRec, i: int, at: float, *, skipped: bool) -> None:
        step = t.steps[i]
        self._events.append(
            TaskStepExpired(
                at=at,
                task_id=t.id,
                step=i,
                queue=step.queue or t.queue,
                priority=step.priority if step.priority is not None else t.base_priority,
                skipped=skipped,
            )
        )

    def _sync_wait(self, t: TaskRec) -> None:
        """Queue the task for a routing try when it can take an offer."""
        if routable(t):
            self._dirty_tasks[t] = None

    # ================================================================ routing
    def _route_task(self, t: TaskRec, at: float) -> None:
        find = self._index.find
        while routable(t):
            q = t.q
            assert q is not None
            wanted = q.spec.parallel_offers - len(t.res)
            chosen = find(t, at, wanted)
            for a in chosen:
                self._reserve(t, a, at)
            if chosen or not t.skip_check:
                t.skip_check = False
                if len(chosen) == wanted:
                    return  # it holds all the offers it may (the common case): nothing to file
                break
            t.skip_check = False
            skip_if = t.steps[t.step].skip_if
            assert skip_if is not None
            if not skip_if(self._counts(t, at), t):
                break
            t.floor = t.step + 1
            if t.floor < len(t.steps):
                self._step_event(t, t.floor, at, skipped=True)
            self._enter_step(t, t.floor, at)
        # Filed only after a try: most tasks find an agent at once and never wait.
        if t.entry is None and routable(t):
            self._waiting.add(t)

    def _counts(self, t: TaskRec, at: float) -> dict[str, int]:
        q = t.q
        assert q is not None
        qwait = at - t.entered_at
        eligible = available = 0
        for a in q.members:
            if a.id in t.excluded or (t.pred is not None and not t.pred(a, t)):
                continue
            eligible += 1
            if t.channel in a.routable and a.queues[q.name][1] <= qwait:
                available += 1
        waiting = sum(1 for x in q.tasks if x.status in WAITING)
        return {"available": available, "eligible": eligible, "waiting": waiting}

    def _new_res_id(self) -> int:
        rid = self._next_res
        self._next_res += 1
        return rid

    def _reserve(self, t: TaskRec, a: AgentRec, at: float) -> None:
        q = t.q
        assert q is not None
        spec = q.spec
        timeout = spec.offer_timeout_s
        expires = at + (self.config.offer_timeout_s if timeout is None else timeout)
        rid = self._next_res
        self._next_res = rid + 1
        r = ResRec(rid, t, a, at, expires)
        t.res[a.id] = r
        a.res[t.id] = r
        t.offers_made += 1
        t.status = "reserved"
        self._offer_seq += 1
        a.last_offer_seq = self._offer_seq
        self._index.load(a, t.channel, 1)
        if self.config.reset_idle_on_offer:
            self._index.set_idle(a, at)
        if t.entry is not None and len(t.res) >= spec.parallel_offers:
            self._waiting.remove(t)
        self._seq += 1
        heapq.heappush(self._heap, (expires, self._seq, RES, rid, 0))
        self._res[rid] = r
        self._events.append(reservation_created(at, rid, t.id, a.id, expires))
        if self._log is not None:
            self._log.record(at, q.name, "reservation.created")

    def _drop(self, r: ResRec) -> None:
        del self._res[r.id]
        del r.task.res[r.agent.id]
        del r.agent.res[r.task.id]
        self._index.load(r.agent, r.task.channel, -1)

    def _rescind(self, r: ResRec, at: float, reason: str) -> None:
        self._drop(r)
        self._events.append(
            ReservationRescinded(
                at=at, reservation_id=r.id, task_id=r.task.id, agent_id=r.agent.id, reason=reason
            )
        )
        self._record(at, self._qname(r.task), "reservation.rescinded")

    def _after_failure(self, t: TaskRec, at: float) -> None:
        """An offer ended unaccepted: the task waits again, or gives up at max offers."""
        if not t.res:
            t.status = "pending"
            limit = t.q.spec.max_offers if t.q is not None else None
            if limit is not None and t.offers_made >= limit:
                self._cancel(t, at, "max_offers")
                return
        self._sync_wait(t)

    def _timeout(self, r: ResRec, at: float) -> None:
        t, a = r.task, r.agent
        self._drop(r)
        self._events.append(
            ReservationTimeout(at=at, reservation_id=r.id, task_id=t.id, agent_id=a.id)
        )
        self._record(at, self._qname(t), "reservation.timeout")
        self._after_failure(t, at)
        cfg = self.config
        self._change_state(a, cfg.not_responding_state, cfg.not_responding_reason, at)

    def _change_state(self, a: AgentRec, state: str, reason: str, at: float) -> None:
        if state == a.state and reason == a.reason:
            return
        available = self._activity(state)
        previous, was = a.state, a.available
        a.state, a.reason, a.available = state, reason, available
        self._events.append(
            AgentStateChanged(at=at, agent_id=a.id, state=state, reason=reason, previous=previous)
        )
        if available and not was:
            self._index.set_idle(a, at)
        if not available:
            for r in list(a.res.values()):
                self._rescind(r, at, "agent_unavailable")
                self._after_failure(r.task, at)
        self._index.refresh(a)

    # ================================================================ tasks
    def _new_task(
        self,
        spec: TaskSpec,
        at: float,
        own: tuple[CompiledStep, ...] | None,
        *,
        announce: bool,
    ) -> TaskRec:
        """Create the record; the caller places it (waiting, offered, assigned)."""
        t = TaskRec(spec.id, spec.queue, spec.channel)
        t.born = self._bump()
        t.base_priority = t.priority = spec.priority
        t.attributes = spec.attributes
        t.preferred_agents = spec.preferred_agents
        t.preferred_timeout_s = spec.preferred_timeout_s
        if spec.excluded_agents:
            t.excluded = frozenset(spec.excluded_agents)
        t.own_steps, t.source_steps = own, spec.steps
        t.created_at = created = at if spec.created_at is None else spec.created_at
        t.entered_at = created if spec.entered_at is None else spec.entered_at
        t.ttl_s = spec.ttl_s if spec.ttl_s is not None else self.config.task_ttl_s
        t.offers_made = spec.offers_made
        t.floor = spec.step_floor
        t.home = home = self._queue(spec.queue)
        self._tasks[t.id] = t
        if announce:
            self._events.append(task_created(at, t.id, t.queue, t.channel, t.priority))
            if self._log is not None:
                self._log.record(at, t.queue, "entered")
        self._steps.build(t, home)
        if t.ttl_s is not None:
            self._push(created + t.ttl_s, TTL, t.id, t.born)
        return t

    def _cancel(self, t: TaskRec, at: float, reason: str) -> None:
        for r in list(t.res.values()):
            self._rescind(r, at, reason)
        qname = self._qname(t)
        self._remove(t)
        wait = at - t.created_at
        self._events.append(
            TaskCanceled(at=at, task_id=t.id, queue=qname, reason=reason, wait_s=wait)
        )
        self._record(at, qname, "abandoned" if reason == "abandoned" else "canceled", wait)

    def _remove(self, t: TaskRec) -> None:
        t.live = False
        if t.entry is not None:
            self._waiting.remove(t)
        self._dirty_tasks.pop(t, None)
        if t.q is not None:
            t.q.tasks.discard(t)
        del self._tasks[t.id]

    def _release(self, t: TaskRec, at: float) -> AgentRec:
        """Take an assigned or wrapping task off its agent's load."""
        a = t.agent
        assert a is not None
        del a.tasks[t.id]
        t.agent = None
        if a.total == 1:  # the agent becomes idle: its idle clock restarts
            self._index.set_idle(a, at)
        self._index.load(a, t.channel, -1)
        return a

    def _finish(self, t: TaskRec, at: float) -> None:
        a = self._release(t, at)
        qname = self._qname(t)
        self._remove(t)
        self._events.append(task_completed(at, t.id, a.id))
        if self._log is not None:
            self._log.record(at, qname, "completed")
