"""The router: a stateful, I/O-free decision core the hub calls on every change.

Every public call takes ``now`` (seconds, any epoch; a value older than the last one seen is
treated as the last one), first applies whatever fell due up to ``now`` (offer timeouts,
step expiries, wrap-up ends, TTLs, queue delays; each at its own deadline), then the change,
then routes, and returns the events of all of it. After every call no waiting task could be
offered to a routable agent: new tasks look for agents, freed agents look for tasks.

A refused call raises ``RoutingError`` (``UnknownTask``, ``UnknownAgent``,
``InvalidTransition``, ``ExpressionError``) and changes nothing; what fell due before the
refusal is on the error's ``events``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable

from routing.events import (
    Event,
    ReservationRejected,
    TaskRequeued,
    TaskTransferred,
    TaskWrapping,
    reservation_accepted,
    task_assigned,
)
from routing.index import WAITING
from routing.models import (
    AgentSpec,
    InvalidTransition,
    QueueSpec,
    RouterConfig,
    RouterSnapshot,
    RoutingError,
    Step,
    TaskSpec,
    UnknownAgent,
)
from routing.records import AgentRec, CompiledStep, QueueRec, ResRec, TaskRec
from routing.snapshots import agent_spec, agent_view, live_stats, task_spec, task_view
from routing.state import RES, WRAP, RouterState
from routing.stats import StatsLog, WindowStats
from routing.steps import step_at
from routing.views import AgentView, QueueLiveStats, TaskView


class Router(RouterState):
    """Skills-based routing with reservations, relaxation over time and capacity."""

    def __init__(
        self,
        config: RouterConfig | None = None,
        *,
        queues: Iterable[QueueSpec] = (),
        rng: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(config, rng)
        for spec in queues:
            self._install_queue(spec, self._steps.compile(spec.steps))

    # ================================================================ queues
    def set_queue(self, spec: QueueSpec, now: float) -> list[Event]:
        """Add or replace a queue's configuration; its waiting tasks are re-evaluated."""
        steps = self._steps.compile(spec.steps)
        return self._run(now, lambda at: self._replace_queue(spec, steps, at))

    def _install_queue(self, spec: QueueSpec, steps: tuple[CompiledStep, ...]) -> QueueRec:
        if spec.parallel_offers < 1:
            raise RoutingError("parallel_offers must be at least 1")
        q = self._queue(spec.name)
        q.spec, q.steps = spec, steps
        return q

    def _replace_queue(self, spec: QueueSpec, steps: tuple[CompiledStep, ...], at: float) -> None:
        q = self._install_queue(spec, steps)
        for t in list(self._tasks.values()):
            if t.home is q and t.status in WAITING:
                self._steps.build(t, q)
                t.floor = min(t.floor, len(t.steps) - 1)
                self._enter_step(t, step_at(t, at, t.floor), at)

    # ================================================================ agents
    def add_agent(self, spec: AgentSpec, now: float) -> list[Event]:
        """Add an agent (its state and idle clock come from the spec)."""
        if spec.id in self._agents:
            raise InvalidTransition(f"agent {spec.id} already exists")
        self._activity(spec.state)
        return self._run(now, lambda at: self._add_agent(spec, at))

    def update_agent(self, spec: AgentSpec, now: float) -> list[Event]:
        """Replace an agent's skills, capacity, queues and attributes, and apply its state."""
        a = self._agent(spec.id)
        self._activity(spec.state)

        def action(at: float) -> None:
            self._configure(a, spec, at)
            self._change_state(a, spec.state, spec.reason, at)

        return self._run(now, action)

    def remove_agent(self, agent_id: int, now: float) -> list[Event]:
        """Remove an agent: offers are rescinded, assigned tasks wait again."""
        a = self._agent(agent_id)
        return self._run(now, lambda at: self._remove_agent(a, at))

    def set_agent_state(
        self, agent_id: int, state: str, now: float, reason: str = ""
    ) -> list[Event]:
        """Change an agent's activity; leaving an available one rescinds its pending offers."""
        a = self._agent(agent_id)
        self._activity(state)
        return self._run(now, lambda at: self._change_state(a, state, reason, at))

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
        pools = self.config.pools
        given = {c: int(n) for c, n in spec.capacity.items()}
        # Channels named: only those are served. Pools alone ({"message": 5}) or nothing:
        # every channel at its default, under the pool limits given.
        a.cap = {c: n for c, n in given.items() if c not in pools} or {
            c: rule.capacity for c, rule in self.config.channels.items()
        }
        pool_of = self._index.pool_of
        a.pool_cap = {}
        for p, default in pools.items():
            sizes = [n for c, n in a.cap.items() if n > 0 and pool_of.get(c) == p]
            if sizes:
                a.pool_cap[p] = given[p] if p in given else max(default, *sizes)
        limits = {
            c: min(n, a.pool_cap[pool_of[c]]) if c in pool_of else n for c, n in a.cap.items()
        }
        a.channels = frozenset(c for c, n in limits.items() if n > 0)
        a.solo = next(iter(a.channels)) if len(a.channels) == 1 else None
        a.solo_cap = limits[a.solo] if a.solo is not None else 0
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
        self._index.file(a)
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

    def _remove_agent(self, a: AgentRec, at: float) -> None:
        a.available = False
        self._index.refresh(a)
        for r in list(a.res.values()):
            self._rescind(r, at, "agent_removed")
            self._after_failure(r.task, at)
        for t in list(a.tasks.values()):
            if t.status == "wrapping":
                self._finish(t, at)
                continue
            self._release(t, at)
            t.status = "pending"
            self._events.append(
                TaskRequeued(at=at, task_id=t.id, agent_id=a.id, reason="agent_removed")
            )
            self._enter_step(t, step_at(t, at, t.step), at)
        for name, (_, delay) in a.queues.items():
            self._membership(self._queue(name), a, delay, -1, at)
        self._index.unfile(a)
        self._index.dirty.pop(a, None)
        del self._agents[a.id]

    # ================================================================ tasks
    def add_task(self, spec: TaskSpec, now: float) -> list[Event]:
        """Add a task (``created_at`` may lie in the past; restore fields are honoured)."""
        own = self._check_new_task(spec, self._agents)
        return self._run(now, self._add_new_task, spec, own)

    def _check_new_task(
        self, spec: TaskSpec, agents: dict[int, AgentRec] | set[int]
    ) -> tuple[CompiledStep, ...] | None:
        if spec.id in self._tasks:
            raise InvalidTransition(f"task {spec.id} already exists")
        if spec.assigned_to is not None and spec.assigned_to not in agents:
            raise UnknownAgent(f"task {spec.id} names unknown agent {spec.assigned_to}")
        for offer in spec.offered_to:
            if offer.agent_id not in agents:
                raise UnknownAgent(f"task {spec.id} names unknown agent {offer.agent_id}")
        return self._steps.compile(spec.steps) if spec.steps is not None else None

    def _add_new_task(
        self, at: float, spec: TaskSpec, own: tuple[CompiledStep, ...] | None
    ) -> None:
        self._add_task(spec, at, own, announce=True)

    def _add_task(
        self, spec: TaskSpec, at: float, own: tuple[CompiledStep, ...] | None, *, announce: bool
    ) -> None:
        t = self._new_task(spec, at, own, announce=announce)
        idx = step_at(t, at, t.floor)
        if spec.assigned_to is not None:
            a = self._agents[spec.assigned_to]
            self._place(t, idx)
            t.status, t.agent = "assigned", a
            a.tasks[t.id] = t
            self._index.load(a, t.channel, 1)
            if spec.wrap_until is not None:
                t.status, t.wrap_until = "wrapping", spec.wrap_until
                self._push(spec.wrap_until, WRAP, t.id, t.version)
            return
        for offer in spec.offered_to:
            a = self._agents[offer.agent_id]
            rid = offer.reservation_id
            if rid is None:
                rid = self._new_res_id()
            self._next_res = max(self._next_res, rid + 1)
            r = ResRec(rid, t, a, offer.created_at, offer.expires_at)
            t.res[a.id] = a.res[t.id] = r
            t.status = "reserved"
            self._index.load(a, t.channel, 1)
            self._push(offer.expires_at, RES, rid, 0)
            self._res[rid] = r
        self._enter_step(t, idx, at)

    def cancel_task(self, task_id: int, now: float, reason: str = "cancelled") -> list[Event]:
        """Cancel a waiting task (``abandoned``: the customer left); offers are rescinded."""

        def action(at: float) -> None:
            t = self._task(task_id)
            if t.status not in WAITING:
                raise InvalidTransition(f"task {task_id} is {t.status}; complete it instead")
            self._cancel(t, at, reason)

        return self._run(now, action)

    def accept(self, task_id: int, agent_id: int, now: float) -> list[Event]:
        """The agent takes the offered task; other parallel offers are rescinded."""
        return self._run(now, self._accept, task_id, agent_id)

    def _offer(self, task_id: int, agent_id: int) -> tuple[TaskRec, ResRec]:
        t = self._task(task_id)
        r = t.res.get(agent_id)
        if r is None:
            raise InvalidTransition(f"task {task_id} has no offer in flight to agent {agent_id}")
        return t, r

    def _accept(self, at: float, task_id: int, agent_id: int) -> None:
        t, r = self._offer(task_id, agent_id)
        a = r.agent
        del self._res[r.id]
        del t.res[agent_id]
        del a.res[task_id]
        t.status, t.agent = "assigned", a
        a.tasks[task_id] = t
        t.version = self._bump()
        if t.entry is not None:
            self._waiting.remove(t)
        self._events.append(reservation_accepted(at, r.id, task_id, agent_id))
        if t.res:
            for other in list(t.res.values()):
                self._rescind(other, at, "accepted_elsewhere")
        wait, qwait = at - t.created_at, at - t.entered_at
        qname = self._qname(t)
        self._events.append(task_assigned(at, task_id, agent_id, r.id, qname, wait, qwait))
        # One "answered" record also counts the accepted reservation.
        if self._log is not None:
            self._log.record(at, qname, "answered", wait, qwait)
        self._index.set_idle(a, at)

    def reject(
        self, task_id: int, agent_id: int, now: float, reason: str = "rejected"
    ) -> list[Event]:
        """The agent declines; the task is never offered to this agent again."""

        def action(at: float) -> None:
            t, r = self._offer(task_id, agent_id)
            self._drop(r)
            t.excluded |= {agent_id}
            self._events.append(
                ReservationRejected(
                    at=at, reservation_id=r.id, task_id=task_id, agent_id=agent_id, reason=reason
                )
            )
            self._record(at, self._qname(t), "reservation.rejected")
            self._after_failure(t, at)

        return self._run(now, action)

    def complete_task(
        self, task_id: int, now: float, wrap_up_s: float | None = None
    ) -> list[Event]:
        """The conversation ended; wrap-up holds the slot (queue or router default time)."""
        return self._run(now, self._complete, task_id, wrap_up_s)

    def _complete(self, at: float, task_id: int, wrap_up_s: float | None) -> None:
        t = self._task(task_id)
        if t.status != "assigned" or t.agent is None:
            raise InvalidTransition(f"task {task_id} is {t.status}, not assigned")
        if wrap_up_s is None and t.q is not None:
            wrap_up_s = t.q.spec.wrap_up_s
        if wrap_up_s is None:
            wrap_up_s = self.config.wrap_up_s
        if wrap_up_s <= 0:
            self._finish(t, at)
            return
        t.status, t.wrap_until = "wrapping", at + wrap_up_s
        t.version = self._bump()
        self._push(t.wrap_until, WRAP, t.id, t.version)
        self._events.append(
            TaskWrapping(at=at, task_id=task_id, agent_id=t.agent.id, until=t.wrap_until)
        )

    def end_wrap_up(self, task_id: int, now: float) -> list[Event]:
        """The agent finished wrap-up early; the slot is freed."""

        def action(at: float) -> None:
            t = self._task(task_id)
            if t.status != "wrapping":
                raise InvalidTransition(f"task {task_id} is {t.status}, not wrapping")
            self._finish(t, at)

        return self._run(now, action)

    def transfer(
        self,
        task_id: int,
        now: float,
        *,
        queue: str | None = None,
        priority: int | None = None,
        steps: tuple[Step, ...] | None = None,
        attributes: dict[str, object] | None = None,
        exclude_current: bool = True,
    ) -> list[Event]:
        """Send a task back to waiting (maybe in another queue): it keeps its age and loses
        its preferred agents; the agent it leaves is excluded unless told otherwise."""
        own = self._steps.compile(steps) if steps is not None else None

        def action(at: float) -> None:
            t = self._task(task_id)
            if t.status == "wrapping":
                raise InvalidTransition(f"task {task_id} is wrapping")
            from_agent: int | None = None
            if t.status == "assigned":
                from_agent = self._release(t, at).id
                if exclude_current:
                    t.excluded |= {from_agent}
            for r in list(t.res.values()):
                self._rescind(r, at, "transferred")
            if t.entry is not None:
                self._waiting.remove(t)
            t.status = "pending"
            t.queue = queue or t.queue
            t.home = home = self._queue(t.queue)
            if priority is not None:
                t.base_priority = priority
            if steps is not None:
                t.own_steps, t.source_steps = own, steps
            if attributes is not None:
                t.attributes = dict(attributes)
            t.preferred_agents = ()
            t.entered_at = at
            t.floor = 0
            self._steps.build(t, home)
            self._place(t, 0)
            self._events.append(
                TaskTransferred(at=at, task_id=task_id, from_agent_id=from_agent, queue=t.queue)
            )
            self._enter_step(t, step_at(t, at, 0), at)

        return self._run(now, action)

    # ================================================================ clock and restart
    def tick(self, now: float) -> list[Event]:
        """Apply what fell due up to ``now`` and route."""
        return self._run(now, lambda at: None)

    decide = tick

    def next_deadline(self) -> float | None:
        """When something next falls due (call ``tick`` then), or None."""
        heap = self._heap
        while heap and self._due(heap[0]) is None:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def restore(self, snapshot: RouterSnapshot, now: float) -> list[Event]:
        """Rebuild an empty router from stored facts; offers that expired meanwhile time out
        (and re-route) at ``now``. Nothing is routed until everything is loaded."""
        if self._agents or self._tasks:
            raise InvalidTransition("restore needs an empty router")
        ids = {a.id for a in snapshot.agents}
        owns = [self._check_new_task(spec, ids) for spec in snapshot.tasks]
        self._next_res = max(self._next_res, snapshot.next_reservation_id)
        self._now = max(self._now, now)

        def action(at: float) -> None:
            for a in snapshot.agents:
                self._add_agent(a, at)
            for spec, own in zip(snapshot.tasks, owns, strict=True):
                self._add_task(spec, at, own, announce=False)

        return self._run(now, action)

    def snapshot(self) -> RouterSnapshot:
        """Agents and live tasks as plain data (``restore`` takes it back)."""
        return RouterSnapshot(
            agents=tuple(agent_spec(a) for a in self._agents.values()),
            tasks=tuple(task_spec(t) for t in self._tasks.values()),
            next_reservation_id=self._next_res,
        )

    # ================================================================ read-outs
    def task(self, task_id: int) -> TaskView:
        """A live task."""
        return task_view(self._task(task_id))

    def agent(self, agent_id: int) -> AgentView:
        """An agent."""
        return agent_view(self._agent(agent_id))

    def tasks(self) -> list[TaskView]:
        """All live tasks."""
        return [task_view(t) for t in self._tasks.values()]

    def agents(self) -> list[AgentView]:
        """All agents."""
        return [agent_view(a) for a in self._agents.values()]

    def queue_names(self) -> list[str]:
        """Queues known to the router (configured, or named by a task or an agent)."""
        return list(self._queues)

    def live_stats(self, queue: str, now: float) -> QueueLiveStats:
        """Real-time statistics of one queue."""
        q = self._queues.get(queue) or QueueRec(QueueSpec(name=queue), ())
        return live_stats(q, max(now, self._now), self._index.free_slots)

    def window_stats(
        self,
        now: float,
        window_s: float = 900.0,
        *,
        queue: str | None = None,
        thresholds: Iterable[float] = (20.0,),
    ) -> WindowStats:
        """Cumulative statistics over the last ``window_s`` (15 minutes by default)."""
        log = self._log or StatsLog(0.0)
        return log.window(max(now, self._now), window_s, queue=queue, thresholds=thresholds)
