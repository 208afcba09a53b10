"""The hub facade: one object the web layer, channels and CLI talk to."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import Settings
from contract.channel import (
    Attachment,
    ChannelAdapter,
    EndpointKind,
    InboundMessage,
    IngestResult,
    StatusUpdate,
)
from contract.chat import ChatMessage, ChatStatus
from contract.info import Channels
from contract.voice import CallControl, CallerInfo, CallFact, CallView, EnqueueRequest, QueuePlace
from hub.accounts.tokens import Tokens
from hub.accounts.users import Users
from hub.bus import Bus, LocalBus, RedisBus, poll_stream_head
from hub.chat.service import ChatService
from hub.commands import CommandLog
from hub.console.service import ConsoleService
from hub.customers.profiles import CustomerService
from hub.ingest.fast import InlineContinuation
from hub.ingest.orm import Ingestor
from hub.outbox.feedback import ProviderFeedback
from hub.signals import Signals
from hub.stream import InteractionStream, StreamEvent
from hub.supervise import Supervisor
from hub.uow import Transactor, events_between, head_seq
from hub.voice.calls import CallService
from hub.work.conversations import ConversationService
from hub.work.offers import WorkService
from storage.db import session_factory


def process_name(settings: Settings) -> str:
    """This process as logs, PostgreSQL and the router lease name it."""
    return settings.process_name or f"{socket.gethostname()}:{os.getpid()}"


class Hub:
    """Storage, stream and services wired together; implements ``contract.channel.HubPort``
    and the channel ports ``contract.voice.CallPort`` and ``contract.chat.ChatPort``."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        reader: AsyncEngine | None = None,
        *,
        channels: Channels | None = None,
    ) -> None:
        self.settings = settings
        # The registered channels' facts, from the composition root (``channels.registry``).
        self.channels = channels if channels is not None else Channels()
        self.engine = engine
        self.reader = reader or engine
        self.sessions = session_factory(engine)
        # Long read-only queries (reports): see ``storage.db.create_read_engine``.
        self.read_sessions = session_factory(self.reader)
        self.stream = InteractionStream(self._fetch_range)
        self.tx = Transactor(self.sessions, self.stream)
        # This process, as logs, PostgreSQL and the router lease name it; the holder name is
        # unique even for two hubs in one process (tests).
        self.process = process_name(settings)
        self.holder = f"{self.process}/{secrets.token_hex(3)}"
        # Background loops, restarted when they fail; /readyz and /metrics report them.
        self.supervisor = Supervisor()
        inline = (
            InlineContinuation(engine, self.stream) if engine.dialect.name == "sqlite" else None
        )
        self.ingestor = Ingestor(settings, self.tx, inline)
        self.feedback = ProviderFeedback(settings, self.tx)
        # Filled by ``create_app`` from the configured adapters: what a reply may set, by channel.
        self.reply_options: dict[str, frozenset[str]] = {}
        self.conversations = ConversationService(
            settings, self.tx, self.reply_options, channels=self.channels
        )
        self.users = Users(
            self.tx,
            idle=timedelta(seconds=settings.session_idle_s),
            default_capacity=self.channels.default_capacity(),
        )
        self.tokens = Tokens(self.tx)
        self.work = WorkService(settings, self.tx)
        self.customers = CustomerService(self.tx)
        self.commands = CommandLog(self.tx)
        # Filled by ``create_app`` with the configured adapters, by channel.
        self.adapters: dict[str, ChannelAdapter] = {}
        # Ephemeral hints for whoever listens: a customer typing, an agent having read.
        self.signals = Signals()
        # Several processes: committed events and signals go to the others through Redis.
        self.bus: Bus = LocalBus()
        if settings.redis_url:
            redis_bus = RedisBus(
                settings.redis_url, settings.redis_prefix, self.holder, self.stream, self.signals
            )
            self.stream.outlet = redis_bus.publish
            self.signals.outlet = redis_bus.send_signal
            self.bus = redis_bus
        # Agents with a console open in this process (set by the console gateway).
        self.local_agents: Callable[[], set[int]] = set
        self.console = ConsoleService(self.tx, self.adapters, self.signals)
        self.calls = CallService(settings, self.tx, self.ingestor, on_end_leg=self._end_leg)
        self.chat = ChatService(settings, self.tx, self.signals)
        self._leg_tasks: set[asyncio.Task[None]] = set()

    async def dispose(self) -> None:
        """Stop the loops, close the bus and the database connections."""
        await self.supervisor.stop_all()
        await self.bus.close()
        await self.engine.dispose()
        if self.reader is not self.engine:
            await self.reader.dispose()

    async def start(self) -> None:
        """Position the stream at the committed head; with several processes, start the bus
        and the poll that reads from storage what the bus did not bring."""
        self.stream.start_at(await self.head())
        if isinstance(self.bus, RedisBus):
            self.bus.start(self.supervisor, lambda: self.local_agents())
            self.supervisor.spawn(
                "stream-poll", lambda loop: poll_stream_head(loop, self.stream, self.head)
            )

    async def head(self) -> int:
        """The last committed event seq."""
        async with self.sessions() as session:
            return await head_seq(session)

    async def _fetch_range(self, first: int, last: int) -> list[StreamEvent]:
        async with self.sessions() as session:
            return await events_between(session, first, last)

    # HubPort
    async def ingest(self, message: InboundMessage) -> IngestResult:
        return await self.ingestor.ingest(message)

    async def update_status(self, update: StatusUpdate) -> bool:
        return await self.feedback.update_status(update)

    async def set_opt_out(
        self, *, kind: EndpointKind, address: str, channel: str, opted_out: bool
    ) -> None:
        await self.feedback.set_opt_out(
            kind=kind, address=address, channel=channel, opted_out=opted_out
        )

    async def mark_undeliverable(self, *, kind: EndpointKind, address: str, reason: str) -> None:
        await self.feedback.mark_undeliverable(kind=kind, address=address, reason=reason)

    async def sent_message_exists(self, *, channel: str, provider_id: str) -> bool:
        return await self.feedback.sent_message_exists(channel=channel, provider_id=provider_id)

    async def record_auto_reply(self, *, conversation_id: int, text: str, send: bool) -> bool:
        return await self.feedback.record_auto_reply(
            conversation_id=conversation_id, text=text, send=send
        )

    # CallPort (contract.voice)
    async def call_started(
        self, *, channel: str, call_sid: str, from_number: str, to_number: str
    ) -> CallerInfo:
        return await self.calls.started(
            channel=channel, call_sid=call_sid, from_number=from_number, to_number=to_number
        )

    async def call_enqueued(self, request: EnqueueRequest) -> CallView:
        return await self.calls.enqueued(request)

    async def queue_place(self, *, channel: str, call_sid: str) -> QueuePlace:
        return await self.calls.place(channel=channel, call_sid=call_sid)

    async def call_fact(self, fact: CallFact) -> CallView:
        return await self.calls.fact(fact)

    # ChatPort (contract.chat)
    async def chat_history(
        self, *, channel: str, endpoint_kind: EndpointKind, address: str, after_id: int, limit: int
    ) -> list[ChatMessage]:
        return await self.chat.history(
            channel=channel,
            endpoint_kind=endpoint_kind,
            address=address,
            after_id=after_id,
            limit=limit,
        )

    async def chat_status(
        self, *, channel: str, endpoint_kind: EndpointKind, address: str
    ) -> ChatStatus:
        return await self.chat.status(channel=channel, endpoint_kind=endpoint_kind, address=address)

    async def chat_waiting(
        self, *, channel: str, endpoint_kind: EndpointKind, addresses: Sequence[str]
    ) -> dict[str, ChatStatus]:
        return await self.chat.waiting(
            channel=channel, endpoint_kind=endpoint_kind, addresses=addresses
        )

    async def chat_file(
        self, *, channel: str, endpoint_kind: EndpointKind, address: str, file_id: int
    ) -> Attachment | None:
        return await self.chat.file(
            channel=channel, endpoint_kind=endpoint_kind, address=address, file_id=file_id
        )

    async def customer_typing(
        self, *, channel: str, endpoint_kind: EndpointKind, address: str, on: bool
    ) -> None:
        await self.chat.typing(channel=channel, endpoint_kind=endpoint_kind, address=address, on=on)

    async def bot_reply(self, *, conversation_id: int, text: str) -> int | None:
        return await self.conversations.bot_reply(conversation_id, text)

    async def hand_off(self, *, conversation_id: int) -> bool:
        return await self.work.hand_off(conversation_id)

    async def can_take(self, *, channel: str, queue: str) -> bool:
        return await self.chat.can_take(channel=channel, queue=queue)

    def _end_leg(self, channel: str, call_sid: str) -> None:
        """Hang up a leg nobody needs any more (after the commit that decided so)."""
        adapter: object = self.adapters.get(channel)
        if not isinstance(adapter, CallControl):
            return
        task = asyncio.create_task(adapter.end_leg(channel=channel, call_sid=call_sid))
        self._leg_tasks.add(task)
        task.add_done_callback(self._leg_tasks.discard)
