"""What a live-chat visitor may read, and their typing (``contract.chat.ChatPort``).

Everything here is scoped by the visitor's endpoint: a visitor reads the messages and files
of conversations that endpoint had on the chat channel, nothing else (not notes, not
replies the agent sent on another channel, not another customer's). An unknown endpoint
reads nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import undefer

from config.settings import Settings
from contract.channel import Attachment, EndpointKind
from contract.chat import ChatFile, ChatMessage, ChatStatus
from hub.customers.identity import normalize
from hub.signals import CustomerTyping, Signals
from hub.uow import Transactor
from hub.work.position import queue_position
from storage.models import Agent, Conversation, Endpoint, Message, MessageAttachment

WAITING = ("queued", "offered")


def first_name(display_name: str) -> str:
    """What a visitor sees of an agent: the first word of their display name."""
    parts = display_name.split()
    return parts[0] if parts else ""


WITH_AGENT = ("assigned", "wrap_up")
# Recent answered conversations whose wait estimates a newcomer's.
WAIT_SAMPLE = 20
# Endpoints looked up per statement.
CHUNK = 500


class ChatService:
    def __init__(self, settings: Settings, tx: Transactor, signals: Signals) -> None:
        self.settings = settings
        self.tx = tx
        self.signals = signals

    async def _endpoint(self, s: Any, kind: EndpointKind, address: str) -> int | None:
        norm = normalize(kind, address, default_region=self.settings.default_phone_region)
        found: int | None = await s.scalar(
            select(Endpoint.id).where(Endpoint.kind == norm.kind, Endpoint.address == norm.address)
        )
        return found

    async def history(
        self, *, channel: str, endpoint_kind: EndpointKind, address: str, after_id: int, limit: int
    ) -> list[ChatMessage]:
        async def work(s: Any) -> list[ChatMessage]:
            endpoint = await self._endpoint(s, endpoint_kind, address)
            if endpoint is None:
                return []
            mine = select(Conversation.id).where(
                Conversation.endpoint_id == endpoint, Conversation.channel == channel
            )
            rows = (
                await s.execute(
                    select(Message, Agent.display_name)
                    .outerjoin(Agent, Agent.id == Message.author_id)
                    .where(
                        Message.conversation_id.in_(mine),
                        Message.channel == channel,
                        Message.direction.in_(("in", "out")),
                        Message.id > after_id,
                    )
                    .order_by(Message.id)
                    .limit(limit)
                )
            ).all()
            ids = [m.id for m, _ in rows]
            files: dict[int, list[ChatFile]] = {}
            if ids:
                for a in (
                    await s.scalars(
                        select(MessageAttachment)
                        .where(MessageAttachment.message_id.in_(ids))
                        .order_by(MessageAttachment.id)
                    )
                ).all():
                    files.setdefault(a.message_id, []).append(
                        ChatFile(
                            id=a.id,
                            name=a.filename,
                            content_type=a.content_type,
                            size=a.size,
                            state=a.state,
                        )
                    )
            return [
                ChatMessage(
                    id=m.id,
                    conversation_id=m.conversation_id,
                    direction=m.direction,
                    author=first_name(name or "") if m.direction == "out" else "",
                    text=m.text,
                    at=m.occurred_at or m.created_at,
                    files=tuple(files.get(m.id, ())),
                    bot=m.kind == "bot",
                    survey=m.kind == "survey",
                )
                for m, name in rows
            ]

        return await self.tx.read(work)

    async def status(
        self, *, channel: str, endpoint_kind: EndpointKind, address: str
    ) -> ChatStatus:
        async def work(s: Any) -> ChatStatus:
            endpoint = await self._endpoint(s, endpoint_kind, address)
            if endpoint is None:
                return ChatStatus(state="new")
            conv = await s.scalar(
                select(Conversation)
                .where(Conversation.endpoint_id == endpoint, Conversation.channel == channel)
                .order_by(Conversation.id.desc())
                .limit(1)
            )
            if conv is None:
                return ChatStatus(state="new")
            if conv.state == "bot":
                return ChatStatus(state="bot", conversation_id=conv.id)
            if conv.state in WITH_AGENT:
                name = await s.scalar(
                    select(Agent.display_name).where(Agent.id == conv.assignee_id)
                )
                return ChatStatus(
                    state="assigned", conversation_id=conv.id, agent=first_name(name or "")
                )
            if conv.state not in WAITING:
                return ChatStatus(state="closed", conversation_id=conv.id)
            position = await queue_position(s, conv)
            return ChatStatus(
                state="queued",
                conversation_id=conv.id,
                position=position,
                expected_wait_s=await self._expected_wait(s, conv.channel, conv.queue, position),
            )

        return await self.tx.read(work)

    async def waiting(
        self, *, channel: str, endpoint_kind: EndpointKind, addresses: Sequence[str]
    ) -> dict[str, ChatStatus]:
        """The statuses of those of these endpoints whose conversation still waits: one
        ordered read per queue, not one per visitor (a busy site has many waiting)."""

        async def work(s: Any) -> dict[str, ChatStatus]:
            found: dict[str, ChatStatus] = {}
            for start in range(0, len(addresses), CHUNK):
                chunk = list(addresses[start : start + CHUNK])
                rows = (
                    await s.execute(
                        select(Endpoint.address, Conversation.id, Conversation.queue)
                        .join(Conversation, Conversation.endpoint_id == Endpoint.id)
                        .where(
                            Endpoint.kind == endpoint_kind,
                            Endpoint.address.in_(chunk),
                            Conversation.channel == channel,
                            Conversation.state.in_(WAITING),
                        )
                    )
                ).all()
                by_queue: dict[str, list[tuple[str, int]]] = {}
                for address, conv_id, queue in rows:
                    by_queue.setdefault(queue, []).append((address, conv_id))
                for queue, members in by_queue.items():
                    order = (
                        await s.scalars(
                            select(Conversation.id)
                            .where(
                                Conversation.channel == channel,
                                Conversation.queue == queue,
                                Conversation.state.in_(WAITING),
                            )
                            .order_by(
                                Conversation.priority.desc(),
                                Conversation.waiting_since,
                                Conversation.id,
                            )
                        )
                    ).all()
                    rank = {conv_id: i + 1 for i, conv_id in enumerate(order)}
                    mean = await self._mean_wait(s, channel, queue)
                    for address, conv_id in members:
                        position = rank.get(conv_id, 1)
                        found[address] = ChatStatus(
                            state="queued",
                            conversation_id=conv_id,
                            position=position,
                            expected_wait_s=None if mean is None else round(mean * position),
                        )
            return found

        return await self.tx.read(work)

    async def _expected_wait(self, s: Any, channel: str, queue: str, position: int) -> int | None:
        """The mean time recent customers of this queue waited for a first answer, times
        the position (None without history)."""
        mean = await self._mean_wait(s, channel, queue)
        return None if mean is None else round(mean * position)

    async def _mean_wait(self, s: Any, channel: str, queue: str) -> float | None:
        rows = (
            await s.execute(
                select(Conversation.created_at, Conversation.first_response_at)
                .where(
                    Conversation.channel == channel,
                    Conversation.queue == queue,
                    Conversation.first_response_at.is_not(None),
                )
                .order_by(Conversation.id.desc())
                .limit(WAIT_SAMPLE)
            )
        ).all()
        waits = [(answered - created).total_seconds() for created, answered in rows]
        if not waits:
            return None
        mean: float = max(0.0, sum(waits) / len(waits))
        return mean

    async def file(
        self, *, channel: str, endpoint_kind: EndpointKind, address: str, file_id: int
    ) -> Attachment | None:
        async def work(s: Any) -> Attachment | None:
            endpoint = await self._endpoint(s, endpoint_kind, address)
            if endpoint is None:
                return None
            row = await s.scalar(
                select(MessageAttachment)
                .options(undefer(MessageAttachment.data))
                .join(Message, Message.id == MessageAttachment.message_id)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(
                    MessageAttachment.id == file_id,
                    Conversation.endpoint_id == endpoint,
                    Conversation.channel == channel,
                    Message.direction.in_(("in", "out")),
                )
            )
            if row is None or row.state != "fetched" or row.data is None:
                return None
            return Attachment(filename=row.filename, content_type=row.content_type, data=row.data)

        return await self.tx.read(work)

    async def typing(
        self, *, channel: str, endpoint_kind: EndpointKind, address: str, on: bool
    ) -> None:
        async def work(s: Any) -> tuple[int, int | None] | None:
            endpoint = await self._endpoint(s, endpoint_kind, address)
            if endpoint is None:
                return None
            row = (
                await s.execute(
                    select(Conversation.id, Conversation.assignee_id)
                    .where(
                        Conversation.endpoint_id == endpoint,
                        Conversation.channel == channel,
                        Conversation.state.in_((*WAITING, *WITH_AGENT)),
                    )
                    .order_by(Conversation.id.desc())
                    .limit(1)
                )
            ).first()
            return (row[0], row[1]) if row is not None else None

        found = await self.tx.read(work)
        if found is not None:
            self.signals.send(CustomerTyping(conversation_id=found[0], assignee_id=found[1], on=on))

    async def can_take(self, *, channel: str, queue: str) -> bool:
        """An agent is logged in and available (their capacity may still be full: the
        visitor then waits in the queue, which the status tells them)."""

        async def work(s: Any) -> bool:
            found = await s.scalar(
                select(Agent.id)
                .where(Agent.active, Agent.role == "agent", Agent.state == "available")
                .limit(1)
            )
            return found is not None

        return await self.tx.read(work)
