"""The contract between a phone channel and the hub: calls are facts, not messages.

A phone adapter runs the provider's call flow (IVR, queue, bridge) and reports what it
learns to a :class:`CallPort`; the hub keeps one record per call, decides its outcome and
routes it like any other work. When an agent accepts a call, the hub asks the adapter (a
:class:`CallControl`) to ring the agent and connect them. Providers report facts late, twice
and out of order: every :class:`CallFact` is applied idempotently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "CallControl",
    "CallFact",
    "CallOrder",
    "CallPort",
    "CallView",
    "CallerInfo",
    "EnqueueRequest",
    "FactKind",
    "QueuePlace",
]

# What a fact reports:
# "status": a leg's progress (``status``: ringing / in-progress / completed / busy / no-answer /
#   failed / canceled; ``duration_s`` on terminal ones); ``leg`` says whose leg.
# "queue_result": the caller left the provider's queue (``result``: bridged / hangup / leave /
#   redirected / error; ``wait_s`` the provider's queue time).
# "connecting": the provider is connecting the caller to the agent (``wait_s``).
# "dial_result": the agent's leg finished its dial (``result``: completed / answered / busy /
#   no-answer / failed / canceled; ``talk_s``; ``bridged``).
# "exit": the caller asked, while waiting, to leave a ``result`` = voicemail / callback.
# "recording": the caller left a voicemail (``recording_sid``, ``recording_duration_s``).
FactKind = Literal["status", "queue_result", "connecting", "dial_result", "exit", "recording"]
CallLeg = Literal["caller", "agent"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerInfo:
    """Who is calling, as far as the hub knows, for the greeting and the menus."""

    customer_id: int | None
    name: str
    segment: str
    language: str  # the customer's known language ("" when unknown)
    known: bool  # the number belonged to a customer before this call


@dataclass(frozen=True, slots=True, kw_only=True)
class EnqueueRequest:
    """The caller finished the menus: route them."""

    channel: str
    call_sid: str
    from_number: str
    to_number: str
    queue: str
    language: str
    choices: tuple[str, ...]  # the menu choices, readable ("English", "Billing")
    priority: int | None = None
    occurred_at: datetime | None = None
    # The channel of the callback task a missed or requested call leaves (None: ``channel``).
    callback_channel: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuePlace:
    """Where a waiting caller stands (for the announcement)."""

    # queued / connecting / talking / ended / closed (its conversation was closed while the
    # caller waited) / unknown
    state: str
    position: int  # 1 = next; 0 when not waiting
    expected_wait_s: int | None  # None: no basis for an estimate yet
    agent_name: str = ""  # who is being connected (state connecting/talking)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFact:
    """One thing the provider reported about one leg of a call (see ``FactKind``)."""

    channel: str
    call_sid: str  # the caller's leg (or the callback's agent leg)
    kind: FactKind
    leg: CallLeg = "caller"
    leg_sid: str = ""  # the reporting leg when it is not ``call_sid`` (the agent's)
    status: str = ""
    result: str = ""
    wait_s: int | None = None
    talk_s: int | None = None
    duration_s: int | None = None
    bridged: bool | None = None
    recording_sid: str = ""
    recording_duration_s: int | None = None
    sequence: int | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallView:
    """The hub's record of a call after a fact was applied."""

    call_sid: str
    state: str  # ivr / queued / connecting / talking / ended
    exit: str  # "" / voicemail / callback
    outcome: str  # "" until decided
    conversation_id: int | None
    language: str
    queue: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOrder:
    """The hub asks the phone adapter to ring an agent and connect them."""

    channel: str
    conversation_id: int
    kind: Literal["queued", "callback"]
    # The waiting caller's leg ("queued"), or the hub's key of a callback attempt (its
    # status and dial reports name it).
    call_sid: str
    agent_id: int
    agent_address: str  # E.164 number or sip: address
    agent_name: str
    customer_number: str
    customer_name: str
    # What the agent hears before being connected ("Ann Lee, VIP, billing").
    announce: str
    language: str = "en"


class CallPort(Protocol):
    """What a phone adapter may ask of the hub, besides ``HubPort``. Persisted on return."""

    async def call_started(
        self, *, channel: str, call_sid: str, from_number: str, to_number: str
    ) -> CallerInfo: ...

    async def call_enqueued(self, request: EnqueueRequest) -> CallView: ...

    async def queue_place(self, *, channel: str, call_sid: str) -> QueuePlace: ...

    async def call_fact(self, fact: CallFact) -> CallView: ...


@runtime_checkable
class CallControl(Protocol):
    """An adapter that can ring agents and place calls (the hub calls it on an accept)."""

    async def connect(self, order: CallOrder) -> str:
        """Ring the agent and connect them; the agent leg's provider id.

        Raise ``ChannelError`` when the provider refused (the hub re-routes the call)."""
        ...

    async def end_leg(self, *, channel: str, call_sid: str) -> None:
        """Hang up one leg (an agent leg no longer needed)."""
        ...
