"""The router's mechanics: deadlines, steps, reservations and endings, below the public API.

Kept apart from ``routing.core`` (which validates calls and returns events) so each file
stays readable. The hot path (add, offer, accept, complete) is written with few calls and
allocations: it runs on every contact.
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Callable
from typing import Any, TypeVar

from routing.events import (
    AgentStateChanged,
    Event,
    ReservationCreated,
    ReservationRescinded,
    ReservationTimeout,
    TaskCanceled,
    TaskCompleted,
    TaskCreated,
    TaskStepExpired,
)
from routing.expr import compile_condition, compile_requirement
from routing.index import WAITING, AgentIndex, WaitingLists
from routing.models import (
    AgentSpec,
    QueueSpec,
    RouterConfig,
    RoutingError,
    Step,
    TaskSpec,
    UnknownAgent,
    UnknownTask,
)
from routing.policy import SplitMix, task_key
from routing.records import INF, AgentRec, CompiledStep, QueueRec, ResRec, TaskRec
from routing.stats import StatsLog

RES, STEP, DELAY, WRAP, TTL = range(5)
ANY_STEP = CompiledStep(compile_requirement(None), None, None, None, None)
PREFERRED = compile_requirement("agent.id IN task.preferred_agents")
CACHE_MAX = 4096
# (base steps, kept for the identity check; steps with preferred and fallback; end offsets)
Template = tuple[tuple[CompiledStep, ...], tuple[CompiledStep, ...], tuple[float, ...]]
Due = tuple[float, int, int, Any, int]
K = TypeVar("K")
V = TypeVar("V")


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
            self.config.channels, self.config.unknown_channel, rng or SplitMix(), self._agents
        )
        self._waiting = WaitingLists()
        self._heap: list[Due] = []
        self._seq = 0
        self._offer_seq = 0
        self._next_res = 1
        self._now = -INF
        self._events: list[Event] = []
        self._dirty_tasks: dict[TaskRec, None] = {}
        self._log = StatsLog(self.config.stats_retention_s) if self.config.record_stats else None
        # Compiled step lists by the caller's tuple (by identity first: hashing a tuple of
        # dataclasses costs more than the rest of a decision), and templates per base list.
        self._step_cache: dict[tuple[Step, ...], tuple[CompiledStep, ...]] = {}
        self._steps_by_id: dict[int, tuple[tuple[Step, ...], tuple[CompiledStep, ...]]] = {}
        self._templates: dict[tuple[int, float | None, bool, str], Template] = {}

    # ================================================================ calls and deadlines
    def _run(self, now: float, action: Callable[[float], None]) -> list[Event]:
        """Apply what fell due, then the change, then route; return the events of it all."""
        if now < self._now:
            now = self._now
        heap = self._heap
        try:
            if heap and heap[0][0] <= now:
                self._expire(now)
            self._now = now
            action(now)
            if self._dirty_tasks or self._index.dirty:
                self._drain(now)
            while heap and heap[0][0] <= now:
                self._expire(now)
        except RoutingError as err:
            err.events = tuple(self._events)
            self._events = []
            raise
        events = self._events
        self._events = []
        return events

    def _push(self, at: float, kind: int, obj: object, version: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, kind, obj, version))

    def _due_is_live(self, entry: Due) -> bool:
        _, _, kind, obj, version = entry
        if kind == RES:
            return bool(obj.live)
        t: TaskRec = obj
        if not t.live:
            return False
        if kind == WRAP:
            return t.status == "wrapping" and t.version == version
        if kind == TTL:
            return t.status in WAITING
        return t.version == version and t.status in WAITING

    def _expire(self, now: float) -> None:
        """Handle every deadline up to ``now`` in time order, each at its own time."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if not self._due_is_live(entry):
                continue
            at, _, kind, obj, _ = entry
            if kind == RES:
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
        dirty_agents = self._index.dirty
        while self._dirty_tasks or dirty_agents:
            if self._dirty_tasks:
                tasks = list(self._dirty_tasks)
                self._dirty_tasks.clear()
                if len(tasks) > 1:
                    tasks.sort(key=_order_key)
                for t in tasks:
                    self._route_task(t, at)
            else:
                agents = list(dirty_agents)
                dirty_agents.clear()
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
    def _compile_steps(self, steps: tuple[Step, ...]) -> tuple[CompiledStep, ...]:
        hit = self._steps_by_id.get(id(steps))
        if hit is not None and hit[0] is steps:
            return hit[1]
        try:
            compiled = self._step_cache.get(steps)
        except TypeError:  # a structured requirement (a dict) is not hashable
            compiled = None
        if compiled is None:
            compiled = tuple(
                CompiledStep(
                    compile_requirement(s.requirement),
                    s.timeout_s,
                    s.priority,
                    s.queue,
                    compile_condition(s.skip_if) if s.skip_if else None,
                )
                for s in steps
            )
            with contextlib.suppress(TypeError):
                self._bounded(self._step_cache)[steps] = compiled
        self._bounded(self._steps_by_id)[id(steps)] = (steps, compiled)
        return compiled

    @staticmethod
    def _bounded(cache: dict[K, V]) -> dict[K, V]:
        if len(cache) >= CACHE_MAX:
            cache.pop(next(iter(cache)))
        return cache

    def _build_steps(self, t: TaskRec, q: QueueRec) -> None:
        """Give the task its steps (preferred-agent step first, fallback last) and offsets."""
        base = t.own_steps if t.own_steps is not None else q.steps
        preferred = bool(t.preferred_agents)
        key = (id(base), t.preferred_timeout_s if preferred else -1.0, preferred, q.spec.fallback)
        template = self._templates.get(key)
        if template is None or template[0] is not base:
            template = self._bounded(self._templates)[key] = self._template(base, t, q)
        _, t.steps, t.offsets = template
        t.origin = t.created_at if q.spec.step_clock == "created" else t.entered_at

    @staticmethod
    def _template(base: tuple[CompiledStep, ...], t: TaskRec, q: QueueRec) -> Template:
        steps = list(base)
        if t.preferred_agents:
            steps.insert(0, CompiledStep(PREFERRED, t.preferred_timeout_s, None, None, None))
        last = steps[-1] if steps else None
        if last is None or (
            q.spec.fallback == "any"
            and not (last.req.pred is None and last.timeout_s is None and last.queue is None)
        ):
            steps.append(ANY_STEP)
        offsets, acc = [], 0.0
        for step in steps:
            acc = INF if step.timeout_s is None else acc + step.timeout_s
            offsets.append(acc)
        return base, tuple(steps), tuple(offsets)

    @staticmethod
    def _step_at(t: TaskRec, at: float, start: int) -> int:
        i, offsets, since = start, t.offsets, at - t.origin
        while i < len(offsets) and since >= offsets[i]:
            i += 1
        return i

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
        t.version += 1

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
            self._push(t.origin + offset, STEP, t, t.version)
        if t.q is not None and t.q.delays:
            self._push_delay(t, at)
        self._sync_wait(t)

    def _push_delay(self, t: TaskRec, at: float) -> None:
        q = t.q
        if q is None or not q.delays:
            return
        for d in q.delay_boundaries():
            if t.entered_at + d > at:
                self._push(t.entered_at + d, DELAY, t, t.version)
                return

    def _step_due(self, t: TaskRec, at: float) -> None:
        new = self._step_at(t, at, t.step)
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
        """Queue the task for a routing try, or unfile it when it cannot take offers."""
        if routable(t):
            self._dirty_tasks[t] = None
        elif t.entry is not None:
            self._waiting.remove(t)

    # ================================================================ routing
    def _route_task(self, t: TaskRec, at: float) -> None:
        find = self._index.find
        while routable(t):
            q = t.q
            assert q is not None
            chosen = find(t, at, q.spec.parallel_offers - len(t.res))
            for a in chosen:
                self._reserve(t, a, at)
            if chosen or not t.skip_check:
                t.skip_check = False
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
        heapq.heappush(self._heap, (expires, self._seq, RES, r, 0))
        self._events.append(
            ReservationCreated(
                at=at, reservation_id=rid, task_id=t.id, agent_id=a.id, expires_at=expires
            )
        )
        if self._log is not None:
            self._log.record(at, q.name, "reservation.created")

    def _drop(self, r: ResRec) -> None:
        r.live = False
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
        if not t.live or t.status not in WAITING:
            return
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
        t.base_priority = t.priority = spec.priority
        t.attributes = spec.attributes
        t.preferred_agents = spec.preferred_agents
        t.preferred_timeout_s = spec.preferred_timeout_s
        if spec.excluded_agents:
            t.excluded = set(spec.excluded_agents)
        t.own_steps, t.source_steps = own, spec.steps
        t.created_at = created = at if spec.created_at is None else spec.created_at
        t.entered_at = created if spec.entered_at is None else spec.entered_at
        t.ttl_s = spec.ttl_s if spec.ttl_s is not None else self.config.task_ttl_s
        t.offers_made = spec.offers_made
        t.floor = spec.step_floor
        t.home = home = self._queue(spec.queue)
        self._tasks[t.id] = t
        if announce:
            self._events.append(
                TaskCreated(
                    at=at, task_id=t.id, queue=t.queue, channel=t.channel, priority=t.priority
                )
            )
            if self._log is not None:
                self._log.record(at, t.queue, "entered")
        self._build_steps(t, home)
        if t.ttl_s is not None:
            self._push(created + t.ttl_s, TTL, t)
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
        self._events.append(TaskCompleted(at=at, task_id=t.id, agent_id=a.id))
        if self._log is not None:
            self._log.record(at, qname, "completed")

    # ================================================================ agents
    def _add_agent(self, spec: AgentSpec, at: float) -> None:
        a = AgentRec(spec.id)
        self._agents[spec.id] = a
        a.state, a.reason = spec.state, spec.reason
        a.available = self._activity(spec.state)
        self._index.restore_idle(a, at if spec.idle_since is None else spec.idle_since)
        self._configure(a, spec, at)

    def _configure(self, a: AgentRec, spec: AgentSpec, at: float) -> None:
        self._index.unfile(a)
        for name, (_, delay) in a.queues.items():
            self._membership(self._queue(name), a, delay, -1, at)
        a.skills = dict(spec.skills)
        a.languages = dict(spec.languages)
        a.attributes = dict(spec.attributes)
        if spec.capacity:
            a.cap = {c: int(n) for c, n in spec.capacity.items()}
        else:
            a.cap = {c: rule.capacity for c, rule in self.config.channels.items()}
        a.channels = frozenset(c for c, n in a.cap.items() if n > 0)
        a.queues = {name: (m.priority, float(m.delay_s)) for name, m in spec.queues.items()}
        for name, (_, delay) in a.queues.items():
            self._membership(self._queue(name), a, delay, +1, at)
        by_priority: dict[int, list[str]] = {}
        for name, (prio, _) in sorted(a.queues.items(), key=lambda kv: kv[1][0]):
            by_priority.setdefault(prio, []).append(name)
        a.groups = tuple(tuple(names) for names in by_priority.values())
        a.keys = (
            *("q:" + n for n in a.queues),
            *("s:" + s for s in a.skills),
            *("l:" + lang for lang in a.languages),
        )
        self._index.refresh(a)
        if a.routable:  # new skills or queues may match waiting work
            self._index.dirty[a] = None

    def _membership(self, q: QueueRec, a: AgentRec, delay: float, sign: int, at: float) -> None:
        if sign > 0:
            q.members.add(a)
        else:
            q.members.discard(a)
        if delay <= 0:
            return
        n = q.delays.get(delay, 0) + sign
        if n > 0:
            q.delays[delay] = n
            if n == 1:  # a new boundary: waiting tasks may cross it
                for t in q.tasks:
                    if t.status in WAITING:
                        self._push_delay(t, at)
        else:
            q.delays.pop(delay, None)
