"""The console gateway: authenticated websockets fed from the interaction stream.

One stream subscription feeds every connection; each connection filters what its user may
see, and a reconnecting client is replayed from storage first (see PROTOCOL.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent_console.pages import same_origin
from agent_console.protocol import (
    HEARTBEAT_S,
    MUTATING,
    RESUME_LIMIT,
    SELF_IDEMPOTENT,
    SUPERVISOR_ONLY,
    Frame,
    frame,
)
from channels.base import ChannelAdapter
from hub import keys
from hub.auth import Principal, authenticate
from hub.errors import Conflict, HubError, InvalidInput, NotFound
from hub.stream import StreamEvent
from hub.uow import events_between, head_seq
from storage.models import Agent, CommandResult, Conversation, Offer

logger = logging.getLogger(__name__)

# A supervisor's dashboard gathers its live events for this long and writes them in one
# wake-up. Each floor event goes to every dashboard: one wake-up per dashboard per event
# put 50 sender turns on the loop ahead of the agent frames queued behind them.
SUPERVISOR_GATHER_S = 0.05

_ERROR_CODES: list[tuple[type[HubError], str]] = [
    (InvalidInput, "invalid_input"),
    (NotFound, "not_found"),
    (Conflict, "conflict"),
]


@dataclass(eq=False)
class Connection:
    """One open console websocket."""

    principal: Principal
    ws: web.WebSocketResponse
    supervisor: bool
    # conversation id -> connections following it, shared by the gateway (fan-out index).
    index: dict[int, set[Connection]] = field(default_factory=dict)
    conversations: set[int] = field(default_factory=set)
    viewing: set[int] = field(default_factory=set)
    monitoring: set[int] = field(default_factory=set)  # followed read-only (supervisors)
    last_seq: int = 0
    live: asyncio.Queue[StreamEvent] = field(default_factory=lambda: asyncio.Queue(20_000))
    replaying: bool = True

    @property
    def agent_id(self) -> int:
        assert self.principal.agent_id is not None
        return self.principal.agent_id

    def sees(self, event: StreamEvent) -> bool:
        """Visibility rule; also tracks which conversations this agent is involved in."""
        conv = event.conversation_id
        if self.supervisor:
            # The floor (conversations, offers, agents, queues) in full; what is said in a
            # conversation only where the supervisor follows it (monitoring, own work).
            return not is_content(event) or conv in self.conversations
        mine = event.agent_id == self.agent_id
        if conv is not None and mine and event.type in ("offer.created", "conversation.assigned"):
            self.follow(conv)
        visible = mine or (conv is not None and conv in self.conversations)
        if conv is not None and not mine and event.type == "conversation.assigned":
            # The conversation went to someone else (transfer): stop following it.
            self.unfollow(conv)
        ended = event.type in ("offer.rejected", "offer.expired", "offer.rescinded")
        if ended and mine and conv is not None:
            self.unfollow(conv)
        return visible

    def follow(self, conversation_id: int) -> None:
        self.conversations.add(conversation_id)
        self.index.setdefault(conversation_id, set()).add(self)

    def unfollow(self, conversation_id: int) -> None:
        self.conversations.discard(conversation_id)
        followers = self.index.get(conversation_id)
        if followers is not None:
            followers.discard(self)
            if not followers:
                del self.index[conversation_id]

    async def send(self, f: Frame) -> None:
        await self.ws.send_str(json.dumps(f, default=str))


CONTENT_PREFIXES = ("message.", "note.")


def is_content(event: StreamEvent) -> bool:
    """An event about what was said (messages, notes), not about the state of the floor."""
    return event.type.startswith(CONTENT_PREFIXES)


class FrameTexts:
    """Each event's frame serialized once, however many consoles it goes to."""

    def __init__(self, keep: int = 4096) -> None:
        self.keep = keep
        self._texts: dict[int, str] = {}

    def get(self, event: StreamEvent) -> str:
        text = self._texts.get(event.seq)
        if text is None:
            text = json.dumps(frame("event", event.as_json(), seq=event.seq), default=str)
            self._texts[event.seq] = text
            if len(self._texts) > self.keep:
                del self._texts[next(iter(self._texts))]  # oldest first (insertion order)
        return text


Command = Callable[["ConsoleGateway", Connection, dict[str, Any]], Awaitable[dict[str, Any]]]


class ConsoleGateway:
    """Fan-out of stream events to console connections, and their commands."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.hub = app[keys.HUB]
        self.connections: set[Connection] = set()
        # Fan-out indexes: an event only reaches connections that may see it.
        self.supervisors: set[Connection] = set()
        self.by_agent: dict[int, set[Connection]] = {}
        self.by_conversation: dict[int, set[Connection]] = {}
        self.viewers: dict[int, set[Connection]] = {}
        self._offline_timers: dict[int, asyncio.TimerHandle] = {}
        self._pump: asyncio.Task[None] | None = None
        self.commands: dict[str, Command] = {}
        self.texts = FrameTexts()

    def hub_adapters(self) -> dict[str, ChannelAdapter]:
        adapters: dict[str, ChannelAdapter] = self.app[keys.ADAPTERS]
        return adapters

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._sub = self.hub.stream.subscribe(maxsize=100_000)
        self._pump = asyncio.create_task(self._run(), name="console-fanout")

    async def stop(self) -> None:
        if self._pump:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        self._sub.close()
        for timer in self._offline_timers.values():
            timer.cancel()
        for conn in list(self.connections):
            await conn.ws.close(code=1001, message=b"server shutting down")

    async def _run(self) -> None:
        while True:
            event = await self._sub.get()
            # Content reaches supervisors through by_conversation (the ones they follow).
            targets = set() if is_content(event) else set(self.supervisors)
            if event.agent_id is not None:
                targets |= self.by_agent.get(event.agent_id, set())
            if event.conversation_id is not None:
                targets |= self.by_conversation.get(event.conversation_id, set())
            for conn in targets:
                try:
                    conn.live.put_nowait(event)
                except asyncio.QueueFull:
                    logger.warning("console connection of %s overflowed", conn.principal.name)
                    await conn.ws.close(code=1013, message=b"too slow; reconnect and resume")

    # ------------------------------------------------------------------ websocket
    async def handle(self, request: web.Request, *, supervisor: bool) -> web.StreamResponse:
        principal = await authenticate(request)
        if principal is None or principal.agent_id is None:
            raise web.HTTPUnauthorized(text="login required")
        if not same_origin(request):
            raise web.HTTPForbidden(text="cross-origin websocket refused")
        if supervisor and principal.role not in ("supervisor", "admin"):
            raise web.HTTPForbidden(text="supervisors only")
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Connection(
            principal=principal, ws=ws, supervisor=supervisor, index=self.by_conversation
        )
        try:
            hello = await ws.receive_json(timeout=30)
        except (TypeError, ValueError, TimeoutError):
            await ws.close(code=4400, message=b"expected hello")
            return ws
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            await ws.close(code=4400, message=b"expected hello")
            return ws
        self._connected(conn)
        sender = asyncio.create_task(self._sender(conn, (hello.get("data") or {})))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._on_frame(conn, msg.data)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            await self._disconnected(conn)
        return ws

    async def _sender(self, conn: Connection, hello: dict[str, Any]) -> None:
        try:
            await self._open(conn, hello.get("resume_from"))
            conn.replaying = False
            while True:
                events = [await conn.live.get()]
                if conn.supervisor:
                    await asyncio.sleep(SUPERVISOR_GATHER_S)
                while not conn.live.empty():
                    events.append(conn.live.get_nowait())
                for event in events:
                    if event.seq <= conn.last_seq or not conn.sees(event):
                        continue
                    conn.last_seq = event.seq
                    # Without compression a frame is written at once; the writer only
                    # awaits when the socket's buffer is over its limit.
                    await conn.ws.send_str(self.texts.get(event))
        except (ConnectionResetError, RuntimeError) as err:
            logger.info("console send to %s stopped: %s", conn.principal.name, err)
            await conn.ws.close()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("console sender for %s failed", conn.principal.name)
            await conn.ws.close(code=1011)

    async def _open(self, conn: Connection, resume_from: Any) -> None:
        async with self.hub.sessions() as s:
            head = await head_seq(s)
            agent = await s.get_one(Agent, conn.agent_id)
            for conversation_id in await self._involved(s, conn.agent_id):
                conn.follow(conversation_id)
            snapshot = await self._snapshot(s, conn)
        resumable = isinstance(resume_from, int) and 0 <= resume_from <= head
        too_old = resumable and head - int(resume_from) > RESUME_LIMIT
        await conn.send(
            frame(
                "welcome",
                {
                    "protocol": 1,
                    "head": head,
                    "resumed": bool(resumable and not too_old),
                    "user": {
                        "id": agent.id,
                        "username": agent.username,
                        "display_name": agent.display_name,
                        "role": agent.role,
                        "state": agent.state,
                        "state_reason": agent.state_reason,
                        "language": agent.language,
                    },
                },
            )
        )
        await conn.send(frame("snapshot", {"head": head, **snapshot}))
        if resume_from is not None and (not resumable or too_old):
            await conn.send(
                frame(
                    "resync_required",
                    {"reason": "resume point unknown or too old", "head": head},
                )
            )
            conn.last_seq = head
            return
        if resume_from is None:
            conn.last_seq = head
            return
        conn.last_seq = int(resume_from)
        while conn.last_seq < head:
            upto = min(head, conn.last_seq + 500)
            async with self.hub.sessions() as s:
                events = await events_between(s, conn.last_seq + 1, upto)
            for event in events:
                if conn.sees(event):
                    await conn.ws.send_str(self.texts.get(event))
            conn.last_seq = upto

    async def _involved(self, s: AsyncSession, agent_id: int) -> set[int]:
        assigned = await s.scalars(
            select(Conversation.id).where(
                Conversation.assignee_id == agent_id,
                Conversation.state.in_(("assigned", "wrap_up")),
            )
        )
        offered = await s.scalars(
            select(Offer.conversation_id).where(
                Offer.agent_id == agent_id, Offer.state == "pending"
            )
        )
        return set(assigned.all()) | set(offered.all())

    async def _snapshot(self, s: AsyncSession, conn: Connection) -> dict[str, Any]:
        from agent_console import views

        return await views.snapshot(s, conn.agent_id, supervisor=conn.supervisor)

    # ------------------------------------------------------------------ presence
    def _connected(self, conn: Connection) -> None:
        self.connections.add(conn)
        if conn.supervisor:
            self.supervisors.add(conn)
        else:
            self.by_agent.setdefault(conn.agent_id, set()).add(conn)
        timer = self._offline_timers.pop(conn.agent_id, None)
        if timer is not None:
            timer.cancel()
        self._ws_gauge()

    async def _disconnected(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self.supervisors.discard(conn)
        mine = self.by_agent.get(conn.agent_id)
        if mine is not None:
            mine.discard(conn)
            if not mine:
                del self.by_agent[conn.agent_id]
        for conversation_id in list(conn.conversations):
            conn.unfollow(conversation_id)
        for conv_id in list(conn.viewing):
            await self._stop_viewing(conn, conv_id)
        self._ws_gauge()
        if not any(c.agent_id == conn.agent_id for c in self.connections):
            grace = self.hub.settings.offline_grace_s
            loop = asyncio.get_running_loop()
            self._offline_timers[conn.agent_id] = loop.call_later(
                grace, lambda: asyncio.ensure_future(self._went_away(conn.agent_id))
            )

    async def _went_away(self, agent_id: int) -> None:
        self._offline_timers.pop(agent_id, None)
        if any(c.agent_id == agent_id for c in self.connections):
            return
        try:
            await self.hub.work.set_state(agent_id, "offline", "console closed")
        except Exception:
            logger.exception("could not mark agent %s offline", agent_id)

    def _ws_gauge(self) -> None:
        from hub.web import METRICS

        gauge = self.app[METRICS].ws_clients
        gauge.labels(kind="supervisor").set(sum(c.supervisor for c in self.connections))
        gauge.labels(kind="agent").set(sum(not c.supervisor for c in self.connections))

    # ------------------------------------------------------------------ viewing
    async def start_viewing(self, conn: Connection, conversation_id: int) -> list[dict[str, Any]]:
        conn.viewing.add(conversation_id)
        self.viewers.setdefault(conversation_id, set()).add(conn)
        return await self._announce_viewers(conversation_id)

    async def _stop_viewing(self, conn: Connection, conversation_id: int) -> None:
        conn.viewing.discard(conversation_id)
        viewers = self.viewers.get(conversation_id)
        if viewers is not None:
            viewers.discard(conn)
            if not viewers:
                del self.viewers[conversation_id]
        await self._announce_viewers(conversation_id)

    async def _announce_viewers(self, conversation_id: int) -> list[dict[str, Any]]:
        viewers = self.viewers.get(conversation_id, set())
        people: dict[int, dict[str, Any]] = {
            c.agent_id: {"id": c.agent_id, "display_name": c.principal.display_name}
            for c in viewers
        }
        listing = sorted(people.values(), key=lambda p: int(p["id"]))
        data = {"conversation_id": conversation_id, "viewers": listing}
        for conn in tuple(viewers):
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await conn.send(frame("viewing", data))
        return listing

    async def notify(self, agent_ids: set[int], f: Frame) -> None:
        """Send an ephemeral frame to every connection of some agents."""
        for conn in tuple(self.connections):
            if conn.agent_id in agent_ids:
                with contextlib.suppress(ConnectionResetError, RuntimeError):
                    await conn.send(f)

    # ------------------------------------------------------------------ commands
    async def _on_frame(self, conn: Connection, raw: str) -> None:
        try:
            msg = json.loads(raw)
        except json.JSONDecodeError:
            await conn.send(
                frame(
                    "error",
                    {"client_msg_id": None, "code": "invalid_input", "detail": "frame is not JSON"},
                )
            )
            return
        if not isinstance(msg, dict):
            return
        if msg.get("type") == "ping":
            await conn.send(frame("pong", {}))
            return
        if msg.get("type") != "cmd":
            return
        data = msg.get("data") or {}
        cmid = data.get("client_msg_id")
        name = data.get("name")
        args = data.get("args") or {}
        if not isinstance(cmid, str) or not cmid or len(cmid) > 100:
            await conn.send(
                frame(
                    "error",
                    {
                        "client_msg_id": cmid,
                        "code": "invalid_input",
                        "detail": "client_msg_id is required",
                    },
                )
            )
            return
        try:
            result = await self._execute(conn, cmid, name, args)
        except HubError as err:
            code = next((c for t, c in _ERROR_CODES if isinstance(err, t)), "error")
            await conn.send(
                frame("error", {"client_msg_id": cmid, "code": code, "detail": str(err)})
            )
            return
        except Exception:
            logger.exception("console command %s failed", name)
            await conn.send(
                frame(
                    "error", {"client_msg_id": cmid, "code": "internal", "detail": "internal error"}
                )
            )
            return
        await conn.send(frame("ack", {"client_msg_id": cmid, "result": result}))

    async def _execute(self, conn: Connection, cmid: str, name: Any, args: Any) -> dict[str, Any]:
        handler = self.commands.get(name) if isinstance(name, str) else None
        if handler is None:
            raise InvalidInput(f"unknown command {name!r}")
        if not isinstance(args, dict):
            raise InvalidInput("args must be an object")
        if name in SUPERVISOR_ONLY and conn.principal.role not in ("supervisor", "admin"):
            raise Conflict("supervisors only")
        if name in SELF_IDEMPOTENT:
            # Deduplicated inside the command's own transaction (no window for a double send).
            return await handler(self, conn, {**args, "_client_msg_id": cmid})
        if name not in MUTATING:
            return await handler(self, conn, args)
        async with self.hub.sessions() as s:
            done = await s.get(CommandResult, (conn.agent_id, cmid))
        if done is not None:
            return dict(done.result)
        result = await handler(self, conn, {**args, "_client_msg_id": cmid})
        async with self.hub.sessions() as s, s.begin():
            s.add(CommandResult(agent_id=conn.agent_id, client_msg_id=cmid, result=result))
        return result


GATEWAY: web.AppKey[ConsoleGateway] = web.AppKey("console_gateway")


async def gateway_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the console gateway for the app's lifetime."""
    from agent_console.commands import COMMANDS

    gateway = ConsoleGateway(app)
    gateway.commands.update(COMMANDS)
    app[GATEWAY] = gateway
    await gateway.start()
    yield
    await gateway.stop()


async def agent_ws(request: web.Request) -> web.StreamResponse:
    return await request.app[GATEWAY].handle(request, supervisor=False)


async def supervisor_ws(request: web.Request) -> web.StreamResponse:
    return await request.app[GATEWAY].handle(request, supervisor=True)
