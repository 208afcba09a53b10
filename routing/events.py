"""Events the router emits for every transition; the hub persists and publishes them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskCreated:
    """A task entered the router."""

    type: Literal["task.created"] = "task.created"
    at: float
    task_id: int
    queue: str
    channel: str
    priority: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskStepExpired:
    """The task moved to its next routing step (``skipped``: by ``skip_if``, not by time)."""

    type: Literal["task.step_expired"] = "task.step_expired"
    at: float
    task_id: int
    step: int
    queue: str
    priority: int
    skipped: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskAssigned:
    """An agent accepted the task; waits are measured from creation and from queue entry."""

    type: Literal["task.assigned"] = "task.assigned"
    at: float
    task_id: int
    agent_id: int
    reservation_id: int
    queue: str
    wait_s: float
    queue_wait_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskCanceled:
    """The task ended before assignment: abandoned, cancelled, ttl, workflow_timeout, ..."""

    type: Literal["task.canceled"] = "task.canceled"
    at: float
    task_id: int
    queue: str
    reason: str
    wait_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskWrapping:
    """The conversation ended; the agent's slot stays held until ``until``."""

    type: Literal["task.wrapping"] = "task.wrapping"
    at: float
    task_id: int
    agent_id: int
    until: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskCompleted:
    """The task is done and the agent's slot is free."""

    type: Literal["task.completed"] = "task.completed"
    at: float
    task_id: int
    agent_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskTransferred:
    """The task went back to waiting in ``queue``, keeping its age."""

    type: Literal["task.transferred"] = "task.transferred"
    at: float
    task_id: int
    from_agent_id: int | None
    queue: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRequeued:
    """An assigned task lost its agent (the agent was removed) and waits again."""

    type: Literal["task.requeued"] = "task.requeued"
    at: float
    task_id: int
    agent_id: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationCreated:
    """The task is offered to an agent until ``expires_at``."""

    type: Literal["reservation.created"] = "reservation.created"
    at: float
    reservation_id: int
    task_id: int
    agent_id: int
    expires_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationAccepted:
    """The agent took the offer."""

    type: Literal["reservation.accepted"] = "reservation.accepted"
    at: float
    reservation_id: int
    task_id: int
    agent_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationRejected:
    """The agent declined; the task is never offered to this agent again."""

    type: Literal["reservation.rejected"] = "reservation.rejected"
    at: float
    reservation_id: int
    task_id: int
    agent_id: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationTimeout:
    """The agent did not answer in time and is moved to the not-responding state."""

    type: Literal["reservation.timeout"] = "reservation.timeout"
    at: float
    reservation_id: int
    task_id: int
    agent_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationRescinded:
    """The offer was withdrawn (task cancelled, abandoned, taken elsewhere, agent left)."""

    type: Literal["reservation.rescinded"] = "reservation.rescinded"
    at: float
    reservation_id: int
    task_id: int
    agent_id: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStateChanged:
    """An agent's activity changed (by the hub, or by the router after a missed offer)."""

    type: Literal["agent.state_changed"] = "agent.state_changed"
    at: float
    agent_id: int
    state: str
    reason: str
    previous: str


Event = (
    TaskCreated
    | TaskStepExpired
    | TaskAssigned
    | TaskCanceled
    | TaskWrapping
    | TaskCompleted
    | TaskTransferred
    | TaskRequeued
    | ReservationCreated
    | ReservationAccepted
    | ReservationRejected
    | ReservationTimeout
    | ReservationRescinded
    | AgentStateChanged
)

EVENT_TYPES: tuple[str, ...] = (
    "task.created",
    "task.step_expired",
    "task.assigned",
    "task.canceled",
    "task.wrapping",
    "task.completed",
    "task.transferred",
    "task.requeued",
    "reservation.created",
    "reservation.accepted",
    "reservation.rejected",
    "reservation.timeout",
    "reservation.rescinded",
    "agent.state_changed",
)


def event_to_dict(event: Event) -> dict[str, object]:
    """The event as plain JSON-ready data (``type`` first)."""
    return asdict(event)
