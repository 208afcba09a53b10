"""Tells adapters that want to know (``contract.chat.ConversationObserver``) when an agent
takes, hands on or closes one of their conversations, so a live channel can tell its
customer ("Ana joined", "conversation closed").

Best effort by nature: a visitor who is not connected learns the state when they come back
(``ChatPort.chat_status``); a lagging subscriber skips ahead instead of replaying.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy import select

from contract.chat import ConversationObserver, ConversationUpdate
from hub import events
from hub.signals import AgentTyping, ConversationRead, Signal
from hub.stream import StreamEvent, StreamLagged
from hub.web import keys
from storage.models import Agent, Conversation, Endpoint

if TYPE_CHECKING:
    from hub.services import Hub

logger = logging.getLogger(__name__)

KINDS = {
    events.ConversationAssigned.TYPE: "assigned",
    events.ConversationQueued.TYPE: "queued",
    events.ConversationClosed.TYPE: "closed",
    events.ConversationAbandoned.TYPE: "closed",
    events.ConversationWrapUp.TYPE: "wrap_up",
    events.ConversationTransferred.TYPE: "transferred",
    # A reply stored: the process holding the customer's live socket shows it (the outbox's
    # send may run in another process).
    events.MessageSent.TYPE: "message",
}


class ObserverFeed:
    """Stream subscriber forwarding conversation changes to observing adapters."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.observers: dict[str, ConversationObserver] = {}
        for channel, adapter in hub.adapters.items():
            if isinstance(adapter, ConversationObserver):
                self.observers[channel] = adapter
        self._task: asyncio.Task[None] | None = None
        self._sub = hub.stream.subscribe(name="observers") if self.observers else None
        self._reads: set[asyncio.Task[None]] = set()
        self._unlisten: Callable[[], None] = lambda: None

    async def start(self) -> None:
        if self._sub is not None:
            self._task = asyncio.create_task(self._run(), name="observer-feed")
            self._unlisten = self.hub.signals.listen(self._signal)

    def _signal(self, signal: Signal) -> None:
        """An agent read, or types in, a conversation of an observing channel: tell its
        adapter (the one of this process: it shows it if it holds the customer's socket)."""
        if isinstance(signal, AgentTyping) and signal.channel in self.observers:
            adapter = self.hub.adapters[signal.channel]
            task = asyncio.get_running_loop().create_task(
                adapter.typing(channel=signal.channel, to=signal.address)
            )
        elif isinstance(signal, ConversationRead) and signal.channel in self.observers:
            task = asyncio.get_running_loop().create_task(self._read(signal))
        else:
            return
        self._reads.add(task)
        task.add_done_callback(self._reads.discard)

    async def _read(self, signal: ConversationRead) -> None:
        async with self.hub.sessions() as s:
            row = (
                await s.execute(
                    select(Endpoint.kind, Endpoint.address)
                    .join(Conversation, Conversation.endpoint_id == Endpoint.id)
                    .where(Conversation.id == signal.conversation_id)
                )
            ).first()
        if row is None:
            return
        with contextlib.suppress(Exception):
            await self.observers[signal.channel].conversation_update(
                ConversationUpdate(
                    channel=signal.channel,
                    conversation_id=signal.conversation_id,
                    endpoint_kind=row[0],
                    address=row[1],
                    kind="read",
                    extra={"message_id": signal.message_id},
                )
            )

    async def stop(self) -> None:
        self._unlisten()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sub is not None:
            self._sub.close()

    async def _run(self) -> None:
        assert self._sub is not None
        while True:
            try:
                event = await self._sub.get()
            except StreamLagged:
                self._sub.resume()  # missed updates: clients read the state when they return
                continue
            if event.channel not in self.observers or event.type not in KINDS:
                continue
            try:
                await self.forward(event)
            except Exception:
                logger.exception(
                    "telling the %s adapter about event %s failed", event.channel, event.seq
                )

    async def forward(self, e: StreamEvent) -> None:
        if e.conversation_id is None:
            return
        async with self.hub.sessions() as s:
            row = (
                await s.execute(
                    select(Endpoint.kind, Endpoint.address, Conversation.assignee_id)
                    .join(Conversation, Conversation.endpoint_id == Endpoint.id)
                    .where(Conversation.id == e.conversation_id)
                )
            ).first()
            if row is None:
                return
            kind, address, assignee = row
            agent_id = e.agent_id if e.type == events.ConversationAssigned.TYPE else assignee
            name = (
                await s.scalar(select(Agent.display_name).where(Agent.id == agent_id))
                if agent_id is not None
                else None
            )
        await self.observers[e.channel].conversation_update(
            ConversationUpdate(
                channel=e.channel,
                conversation_id=e.conversation_id,
                endpoint_kind=kind,
                address=address,
                kind=KINDS[e.type],
                agent=(name or "").split(" ")[0],
                at=e.created_at,
                extra={"message_id": e.payload["message_id"]}
                if e.type == events.MessageSent.TYPE
                else {},
            )
        )


async def observers_ctx(app: web.Application) -> AsyncIterator[None]:
    feed = ObserverFeed(app[keys.HUB])
    await feed.start()
    yield
    await feed.stop()
