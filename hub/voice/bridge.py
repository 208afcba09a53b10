"""Connects accepted calls: an agent took a call in the console, so the phone adapter rings
them and joins them to the waiting caller (or places the callback).

Each assignment is claimed in storage before the adapter is asked (the call's state moves
from ``queued`` to ``connecting`` in one conditional update), so a redelivered event or a
second process never rings an agent twice. When ringing fails (no phone configured, the
provider refuses), the agent goes away and the call waits for someone else, as when the
agent's phone rings out (``CallService.missed_by_agent``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy import func, select, update

from contract.errors import ChannelError
from contract.voice import CallControl, CallOrder
from hub import events
from hub.stream import StreamEvent, StreamLagged
from hub.supervise import Loop
from hub.uow import UnitOfWork
from hub.web import keys
from storage.models import Agent, Call, Conversation, Customer, Endpoint

if TYPE_CHECKING:
    from hub.services import Hub

logger = logging.getLogger(__name__)


def announcement(name: str, number: str, segment: str, queue: str, menu: list[str]) -> str:
    """What the agent hears before being connected: who, how important, what about."""
    parts = [name or number or "Unknown caller"]
    if segment == "vip":
        parts.append("VIP")
    parts.append(menu[-1] if menu else queue)
    return ", ".join(p for p in parts if p) + "."


class CallBridge:
    """Stream subscriber: on a voice assignment, ring the agent through the adapter."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._sub = hub.stream.subscribe(name="calls")
        self._behind = False  # lagged, and the catch-up has not worked yet
        self.voice = frozenset(i.name for i in hub.channels if i.media == "voice")

    async def start(self) -> None:
        self.hub.supervisor.spawn("call-bridge", self._run)

    async def stop(self) -> None:
        await self.hub.supervisor.stop("call-bridge")
        self._sub.close()

    async def _run(self, health: Loop) -> None:
        """Until cancelled; a failed catch-up (the database away) ends the run and its
        supervisor starts it again, catching up first."""
        if self._behind:
            await self.catch_up()
            self._behind = False
        health.ok()
        while True:
            try:
                event = await self._sub.get()
            except StreamLagged:
                self._sub.resume()
                self._behind = True
                await self.catch_up()
                self._behind = False
                health.ok()
                continue
            try:
                await self.on_event(event)
            except Exception:  # one bad call must not stop the others being connected
                logger.exception("connecting call of event %s failed", event.seq)

    async def on_event(self, e: StreamEvent) -> None:
        # A waiting call handed to an agent by a transfer rings them like an accepted offer
        # (a connected call cannot be transferred: hub.work.offers refuses it).
        if (
            e.type == events.ConversationAssigned.TYPE
            and e.channel in self.voice
            and e.conversation_id is not None
            and e.agent_id is not None
        ):
            await self.connect(e.conversation_id, e.agent_id)

    async def catch_up(self) -> None:
        """After lagging: connect every assigned voice conversation nobody is ringing."""
        async with self.hub.sessions() as s:
            rows = (
                await s.execute(
                    select(Conversation.id, Conversation.assignee_id).where(
                        Conversation.channel.in_(self.voice),
                        Conversation.state == "assigned",
                        Conversation.assignee_id.is_not(None),
                    )
                )
            ).all()
        for conv_id, agent_id in rows:
            if agent_id is not None:
                await self.connect(conv_id, agent_id)

    async def connect(self, conversation_id: int, agent_id: int) -> None:
        order = await self.hub.tx.run(lambda uow: self._claim(uow, conversation_id, agent_id))
        if order is None:
            return
        adapter: object = self.hub.adapters.get(order.channel)
        why = f"no phone adapter for {order.channel!r}"
        if isinstance(adapter, CallControl):
            try:
                leg = await adapter.connect(order)
            except ChannelError as err:
                why = str(err)
            else:
                await self.hub.tx.run(lambda uow: self._rang(uow, order.call_sid, leg))
                return
        logger.warning("could not ring agent %s for %s: %s", agent_id, order.call_sid, why)
        await self.hub.tx.run(lambda uow: self._failed(uow, order.call_sid, why))

    async def _claim(self, uow: UnitOfWork, conv_id: int, agent_id: int) -> CallOrder | None:
        s = uow.session
        conv = await s.get(Conversation, conv_id)
        agent = await s.get(Agent, agent_id)
        if conv is None or agent is None or conv.state != "assigned":
            return None
        if conv.assignee_id != agent_id:
            return None
        customer = await s.get(Customer, conv.customer_id)
        endpoint = await s.get(Endpoint, conv.endpoint_id)
        call = await s.scalar(
            select(Call).where(Call.conversation_id == conv_id, Call.direction == "inbound")
        )
        name = customer.display_name if customer else ""
        segment = customer.segment if customer else ""
        if call is not None:
            claimed = await s.execute(
                update(Call)
                .where(Call.id == call.id, Call.state == "queued")
                .values(state="connecting", agent_id=agent_id, agent_leg="")
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None  # already being connected, or the caller left
            return CallOrder(
                channel=conv.channel,
                conversation_id=conv_id,
                kind="queued",
                call_sid=call.call_sid,
                agent_id=agent_id,
                agent_address=agent.phone,
                agent_name=agent.display_name,
                customer_number=call.from_number,
                customer_name=name,
                announce=announcement(name, call.from_number, segment, conv.queue, call.ivr),
                language=agent.language or "en",
            )
        # No caller waits: this is a callback task. One attempt at a time per conversation.
        if endpoint is None or endpoint.kind != "phone":
            return None
        busy = await s.scalar(
            select(func.count())
            .select_from(Call)
            .where(Call.conversation_id == conv_id, Call.state.in_(("connecting", "talking")))
        )
        if busy:
            return None
        attempts = await s.scalar(
            select(func.count()).select_from(Call).where(Call.conversation_id == conv_id)
        )
        key = f"cb{conv_id}x{int(attempts or 0) + 1}"
        s.add(
            Call(
                call_sid=key,
                channel=conv.channel,
                direction="callback",
                state="connecting",
                customer_id=conv.customer_id,
                conversation_id=conv_id,
                from_number=conv.our_address,
                to_number=endpoint.address,
                queue=conv.queue,
                agent_id=agent_id,
                ivr=[],
                recording={},
                facts={},
            )
        )
        return CallOrder(
            channel=conv.channel,
            conversation_id=conv_id,
            kind="callback",
            call_sid=key,
            agent_id=agent_id,
            agent_address=agent.phone,
            agent_name=agent.display_name,
            customer_number=endpoint.address,
            customer_name=name or endpoint.address,
            announce="",
            language=agent.language or "en",
        )

    async def _rang(self, uow: UnitOfWork, call_sid: str, leg: str) -> None:
        call = await uow.session.scalar(select(Call).where(Call.call_sid == call_sid))
        if call is not None and not call.agent_leg and call.state == "connecting":
            call.agent_leg = leg

    async def _failed(self, uow: UnitOfWork, call_sid: str, why: str) -> None:
        call = await uow.session.scalar(select(Call).where(Call.call_sid == call_sid))
        if call is not None and call.state == "connecting":
            await self.hub.calls.missed_by_agent(uow, call, why)


async def call_bridge_ctx(app: web.Application) -> AsyncIterator[None]:
    """Connect accepted calls for the app's lifetime."""
    bridge = CallBridge(app[keys.HUB])
    await bridge.start()
    yield
    await bridge.stop()
