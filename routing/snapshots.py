"""Turn the router's records into plain data: specs (for restore), views and live statistics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from routing.index import WAITING
from routing.models import AgentSpec, OfferSpec, QueueMembership, TaskSpec
from routing.records import AgentRec, QueueRec, TaskRec
from routing.views import AgentView, QueueLiveStats, ReservationView, TaskView


def agent_spec(a: AgentRec) -> AgentSpec:
    """The agent as restorable data."""
    return AgentSpec(
        id=a.id,
        skills=dict(a.skills),
        languages=dict(a.languages),
        capacity={**a.cap, **a.pool_cap},
        queues={
            name: QueueMembership(priority=prio, delay_s=delay)
            for name, (prio, delay) in a.queues.items()
        },
        attributes=dict(a.attributes),
        state=a.state,
        reason=a.reason,
        idle_since=a.idle_since,
    )


def task_spec(t: TaskRec) -> TaskSpec:
    """The task as restorable data (assignment and offers in flight included)."""
    return TaskSpec(
        id=t.id,
        queue=t.queue,
        channel=t.channel,
        priority=t.base_priority,
        created_at=t.created_at,
        entered_at=t.entered_at,
        attributes=dict(t.attributes),
        preferred_agents=t.preferred_agents,
        preferred_timeout_s=t.preferred_timeout_s,
        excluded_agents=frozenset(t.excluded),
        steps=None if t.own_steps is None else t.source_steps,
        ttl_s=t.ttl_s,
        offers_made=t.offers_made,
        step_floor=t.floor,
        assigned_to=t.agent.id if t.agent is not None else None,
        wrap_until=t.wrap_until if t.status == "wrapping" else None,
        offered_to=tuple(
            OfferSpec(
                agent_id=r.agent.id,
                created_at=r.created_at,
                expires_at=r.expires_at,
                reservation_id=r.id,
            )
            for r in t.res.values()
        ),
    )


def task_view(t: TaskRec) -> TaskView:
    """A read-only view of a live task."""
    step = t.steps[min(t.step, len(t.steps) - 1)]
    return TaskView(
        id=t.id,
        task_queue=t.queue,
        queue=t.q.name if t.q is not None else t.queue,
        channel=t.channel,
        status=t.status,
        priority=t.priority,
        created_at=t.created_at,
        entered_at=t.entered_at,
        step=t.step,
        requirement=step.req.source,
        agent_id=t.agent.id if t.agent is not None else None,
        reservations=tuple(
            ReservationView(
                reservation_id=r.id,
                task_id=t.id,
                agent_id=r.agent.id,
                created_at=r.created_at,
                expires_at=r.expires_at,
            )
            for r in t.res.values()
        ),
        excluded_agents=frozenset(t.excluded),
        offers_made=t.offers_made,
        wrap_until=t.wrap_until if t.status == "wrapping" else None,
    )


def agent_view(a: AgentRec) -> AgentView:
    """A read-only view of an agent."""
    return AgentView(
        id=a.id,
        state=a.state,
        reason=a.reason,
        available=a.available,
        idle_since=a.idle_since,
        load=dict(a.load),
        routable_channels=a.routable,
        task_ids=tuple(a.tasks),
        reserved_task_ids=tuple(a.res),
    )


def live_stats(
    q: QueueRec, now: float, free_slots: Callable[[AgentRec, str], int]
) -> QueueLiveStats:
    """Real-time statistics of one queue at ``now``."""
    by_status: Counter[str] = Counter()
    by_priority: Counter[int] = Counter()
    longest = longest_in_queue = 0.0
    for t in q.tasks:
        by_status[t.status] += 1
        if t.status in WAITING:
            by_priority[t.priority] += 1
            longest = max(longest, now - t.created_at)
            longest_in_queue = max(longest_in_queue, now - t.entered_at)
    routable: Counter[str] = Counter()
    free: Counter[str] = Counter()
    for a in q.members:
        for c in a.routable:
            routable[c] += 1
            free[c] += free_slots(a, c)
    return QueueLiveStats(
        queue=q.name,
        total_tasks=len(q.tasks),
        tasks_by_status=dict(by_status),
        tasks_by_priority=dict(by_priority),
        longest_wait_s=longest,
        longest_wait_in_queue_s=longest_in_queue,
        agents_by_state=dict(Counter(a.state for a in q.members)),
        eligible_agents=len(q.members),
        available_agents=sum(1 for a in q.members if a.available),
        routable_agents=dict(routable),
        free_slots=dict(free),
    )
