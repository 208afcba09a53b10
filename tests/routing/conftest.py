"""Helpers for the routing tests: small factories and event filters on a fake clock."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from routing.core import Router
from routing.events import Event, ReservationCreated
from routing.models import AgentSpec, QueueMembership, QueueSpec, RouterConfig, Step, TaskSpec

E = TypeVar("E")


def agent(
    agent_id: int,
    *,
    skills: Mapping[str, float] | None = None,
    queues: Iterable[str] = ("support",),
    state: str = "available",
    capacity: Mapping[str, int] | None = None,
    idle_since: float | None = 0.0,
    languages: Mapping[str, float] | None = None,
    attributes: Mapping[str, object] | None = None,
    priority: int = 1,
    delay_s: float = 0.0,
) -> AgentSpec:
    """An agent in the given queues (voice capacity 1 unless told otherwise)."""
    return AgentSpec(
        id=agent_id,
        skills=dict(skills or {}),
        languages=dict(languages or {}),
        capacity=dict(capacity if capacity is not None else {"voice": 1}),
        queues={q: QueueMembership(priority=priority, delay_s=delay_s) for q in queues},
        attributes=dict(attributes or {}),
        state=state,
        idle_since=idle_since,
    )


def task(
    task_id: int,
    *,
    queue: str = "support",
    channel: str = "voice",
    priority: int = 0,
    created_at: float | None = None,
    steps: Sequence[Step] | None = None,
    preferred: Sequence[int] = (),
    preferred_timeout_s: float | None = 30.0,
    attributes: Mapping[str, object] | None = None,
) -> TaskSpec:
    """A task in a queue (voice unless told otherwise)."""
    return TaskSpec(
        id=task_id,
        queue=queue,
        channel=channel,
        priority=priority,
        created_at=created_at,
        steps=tuple(steps) if steps is not None else None,
        preferred_agents=tuple(preferred),
        preferred_timeout_s=preferred_timeout_s,
        attributes=dict(attributes or {}),
    )


def router(*queues: QueueSpec, **config: object) -> Router:
    """A router with no wrap-up by default (tests that need wrap-up say so)."""
    settings: dict[str, object] = {"wrap_up_s": 0.0}
    settings.update(config)
    return Router(RouterConfig(**settings), queues=queues)  # type: ignore[arg-type]


def types(events: Iterable[Event]) -> list[str]:
    """The event types, in order."""
    return [e.type for e in events]


def offers(events: Iterable[Event]) -> list[tuple[int, int]]:
    """(task, agent) of every offer made."""
    return [(e.task_id, e.agent_id) for e in events if isinstance(e, ReservationCreated)]


def of_type(events: Iterable[Event], kind: type[E]) -> list[E]:
    """The events of one class."""
    return [e for e in events if isinstance(e, kind)]
