"""Frozen read-outs of the router's state: tasks, agents, reservations, live queue statistics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationView:
    """A reservation in flight."""

    reservation_id: int
    task_id: int
    agent_id: int
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskView:
    """A live task; ``queue`` is where it waits now (a step may move it), ``step`` its step."""

    id: int
    task_queue: str
    queue: str
    channel: str
    status: str
    priority: int
    created_at: float
    entered_at: float
    step: int
    requirement: str
    agent_id: int | None
    reservations: tuple[ReservationView, ...]
    excluded_agents: frozenset[int]
    offers_made: int
    wrap_until: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentView:
    """An agent's activity, load and what it holds."""

    id: int
    state: str
    reason: str
    available: bool
    idle_since: float
    load: Mapping[str, int]
    routable_channels: frozenset[str]
    task_ids: tuple[int, ...]
    reserved_task_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueLiveStats:
    """Real-time statistics of one queue (TaskRouter's queue real-time statistics)."""

    queue: str
    total_tasks: int
    tasks_by_status: Mapping[str, int]
    tasks_by_priority: Mapping[int, int]
    longest_wait_s: float
    longest_wait_in_queue_s: float
    agents_by_state: Mapping[str, int]
    eligible_agents: int
    available_agents: int
    routable_agents: Mapping[str, int]
    free_slots: Mapping[str, int]
