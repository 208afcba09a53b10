"""Plain data the router takes in: agents, tasks, queues, steps and its configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

AgentId = int
TaskId = int
Selection = Literal["longest_idle", "best_proficiency", "least_busy", "random", "round_robin"]
SELECTIONS: tuple[Selection, ...] = (
    "longest_idle",
    "best_proficiency",
    "least_busy",
    "random",
    "round_robin",
)
TaskOrder = Literal["fifo", "lifo", "score"]
Fallback = Literal["any", "cancel"]
StepClock = Literal["created", "entered"]
# A requirement is an expression string (``billing >= 3 AND languages HAS 'en'``) or its
# structured form (``{"all": [{"skill": "billing", "min": 3}, {"language": "en"}]}``).
RequirementSource = str | Mapping[str, object] | None


class RoutingError(Exception):
    """A call the router cannot apply; the call changed nothing.

    ``events`` holds what happened before the refusal (deadlines that fell due at the call's
    ``now``): the hub persists them like any other call's events.
    """

    events: tuple[object, ...] = ()


class UnknownTask(RoutingError):
    """No live task has this id."""


class UnknownAgent(RoutingError):
    """No agent has this id."""


class InvalidTransition(RoutingError):
    """The task, reservation or agent is not in a state that allows the call."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelRule:
    """Default capacity of a channel, which channels may start while it is in progress, and
    the pool whose one limit it shares with other channels (``RouterConfig.pools``)."""

    capacity: int = 1
    interruptible_by: frozenset[str] = frozenset()
    pool: str | None = None


_MESSAGING = (
    "chat",
    "sms",
    "whatsapp",
    "telegram",
    "api",
    "messenger",
    "web",
    "webchat",
    "wechat",
    "app",
)
MESSAGE_POOL = "message"


def _messaging_rule(name: str) -> ChannelRule:
    others = frozenset(c for c in _MESSAGING if c != name)
    return ChannelRule(capacity=3, interruptible_by=others | {"voice"}, pool=MESSAGE_POOL)


# Voice may interrupt anything and nothing interrupts voice (Genesys' default utilization,
# Connect's ROUTE_ANY_CHANNEL for messaging); messaging threads interleave; email waits.
# The messaging channels are one media type, as Genesys' "message" and Connect's "chat":
# an agent takes three threads in all, on whichever of them, not three on each.
DEFAULT_CHANNELS: Mapping[str, ChannelRule] = MappingProxyType(
    {
        "voice": ChannelRule(capacity=1),
        **{name: _messaging_rule(name) for name in _MESSAGING},
        "email": ChannelRule(capacity=5, interruptible_by=frozenset({"voice", *_MESSAGING})),
    }
)

DEFAULT_POOLS: Mapping[str, int] = MappingProxyType({MESSAGE_POOL: 3})

DEFAULT_ACTIVITIES: Mapping[str, bool] = MappingProxyType(
    {"available": True, "away": False, "offline": False}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterConfig:
    """Router-wide defaults; queues may override offer timeout and wrap-up."""

    offer_timeout_s: float = 30.0
    wrap_up_s: float = 30.0
    not_responding_state: str = "away"
    not_responding_reason: str = "not responding"
    activities: Mapping[str, bool] = field(default_factory=lambda: DEFAULT_ACTIVITIES)
    channels: Mapping[str, ChannelRule] = field(default_factory=lambda: DEFAULT_CHANNELS)
    unknown_channel: ChannelRule = ChannelRule()
    # Default limit of each pool of channels; an agent's capacity may name a pool too.
    pools: Mapping[str, int] = field(default_factory=lambda: DEFAULT_POOLS)
    task_ttl_s: float | None = 86_400.0
    reset_idle_on_offer: bool = False
    record_stats: bool = True
    stats_retention_s: float = 3_600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One routing step: who may take the task while it lasts."""

    requirement: RequirementSource = None
    timeout_s: float | None = None
    priority: int | None = None
    queue: str | None = None
    skip_if: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueSpec:
    """Where tasks wait: ordered steps, selection policy, offer and wrap-up settings."""

    name: str
    steps: tuple[Step, ...] = ()
    selection: Selection = "longest_idle"
    task_order: TaskOrder = "fifo"
    step_clock: StepClock = "created"
    fallback: Fallback = "any"
    offer_timeout_s: float | None = None
    wrap_up_s: float | None = None
    max_offers: int | None = None
    parallel_offers: int = 1
    best_of: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueMembership:
    """An agent's place in a queue: lower priority numbers are served first (1 = highest)."""

    priority: int = 1
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSpec:
    """An agent as the hub knows it; ``idle_since`` None means "now"."""

    id: AgentId
    skills: Mapping[str, float] = field(default_factory=dict)
    languages: Mapping[str, float] = field(default_factory=dict)
    # Per channel, and per pool of channels ("message"); empty means the defaults. A pool the
    # capacity leaves out gets its default limit, or the largest figure given for one of
    # its channels if that is more.
    capacity: Mapping[str, int] = field(default_factory=dict)
    queues: Mapping[str, QueueMembership] = field(default_factory=dict)
    attributes: Mapping[str, object] = field(default_factory=dict)
    state: str = "offline"
    reason: str = ""
    idle_since: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferSpec:
    """A reservation in flight, as stored by the hub (for a restart)."""

    agent_id: AgentId
    created_at: float
    expires_at: float
    reservation_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSpec:
    """A task to route; the restore fields put back what was decided before a restart."""

    id: TaskId
    queue: str
    channel: str
    priority: int = 0
    created_at: float | None = None
    entered_at: float | None = None
    attributes: Mapping[str, object] = field(default_factory=dict)
    preferred_agents: tuple[AgentId, ...] = ()
    preferred_timeout_s: float | None = 30.0
    excluded_agents: frozenset[AgentId] = frozenset()
    steps: tuple[Step, ...] | None = None
    ttl_s: float | None = None
    offers_made: int = 0
    step_floor: int = 0
    assigned_to: AgentId | None = None
    wrap_until: float | None = None
    offered_to: tuple[OfferSpec, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterSnapshot:
    """Everything needed to rebuild a router: agents and live tasks (queues are config)."""

    agents: tuple[AgentSpec, ...]
    tasks: tuple[TaskSpec, ...]
    next_reservation_id: int = 1


def memberships(*names: str, priority: int = 1, delay_s: float = 0.0) -> dict[str, QueueMembership]:
    """Membership in several queues with the same priority and delay."""
    m = QueueMembership(priority=priority, delay_s=delay_s)
    return dict.fromkeys(names, m)


__all__ = [
    "DEFAULT_ACTIVITIES",
    "DEFAULT_CHANNELS",
    "DEFAULT_POOLS",
    "MESSAGE_POOL",
    "SELECTIONS",
    "AgentId",
    "AgentSpec",
    "ChannelRule",
    "Fallback",
    "InvalidTransition",
    "OfferSpec",
    "QueueMembership",
    "QueueSpec",
    "RequirementSource",
    "RouterConfig",
    "RouterSnapshot",
    "RoutingError",
    "Selection",
    "Step",
    "StepClock",
    "TaskId",
    "TaskOrder",
    "TaskSpec",
    "UnknownAgent",
    "UnknownTask",
    "memberships",
]
