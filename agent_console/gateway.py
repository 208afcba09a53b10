"""The console gateway: authenticated websockets fed from the interaction stream.

One stream subscription feeds every connection; each connection filters what its user may
see, and a reconnecting client is replayed from storage first (see PROTOCOL.md). Frames reach
a socket only through its connection's outbox (``agent_console.sender``), so no client ever
waits for another; if the stream drops events for the gateway, every console is resynced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agent_console.connection import Connection, is_content
from agent_console.pages import same_origin
from agent_console.protocol import (
    HEARTBEAT_S,
    MUTATING,
    RESUME_LIMIT,
    SELF_IDEMPOTENT,
    Frame,
    frame,
)
from agent_console.sender import OUTBOX_LIMIT, SEND_STALL_S, FrameTexts, Outbox, Resync
from contract.channel import ChannelAdapter
from contract.errors import Conflict, Forbidden, HubError, InvalidInput, NotFound
from hub.access import allowed, conversation_filter
from hub.stream import StreamEvent, StreamLagged
from hub.uow import events_between, head_seq
from hub.web import keys
from hub.web.auth import authenticate
from hub.web.middleware import METRICS
from storage.models import Agent, CommandResult, Conversation, Offer, Queue

logger = logging.getLogger(__name__)

# A supervisor's dashboard gathers its live events for this long and writes them in one
# wake-up. Each floor event goes to every dashboard: one wake-up per dashboard per event
# put 50 sender turns on the loop ahead of the agent frames queued behind them.
SUPERVISOR_GATHER_S = 0.05
LAG_REASON = "the hub fell behind; events were dropped"

_ERROR_CODES: list[tuple[type[HubError], str]] = [
    (InvalidInput, "invalid_input"),
    (NotFound, "not_found"),
    (Conflict, "conflict"),
    (Forbidden, "forbidden"),
]


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
        self._watch: asyncio.Task[None] | None = None
        self.commands: dict[str, Command] = {}
        self.permissions: dict[str, str] = {}  # command -> hub.access permission
        self.texts = FrameTexts()
        self.outbox_limit = OUTBOX_LIMIT
        self.send_stall_s = SEND_STALL_S

    def hub_adapters(self) -> dict[str, ChannelAdapter]:
        adapters: dict[str, ChannelAdapter] = self.app[keys.ADAPTERS]
        return adapters

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        lagged = self.app[METRICS].stream_lagged.labels(subscriber="console")
        self._sub = self.hub.stream.subscribe(name="console", on_lag=lagged.inc)
        self._pump = asyncio.create_task(self._run(), name="console-fanout")
        self._watch = asyncio.create_task(self._watch_stalls(), name="console-stall-watch")

    async def stop(self) -> None:
        for task in (self._pump, self._watch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._sub.close()
        for timer in self._offline_timers.values():
            timer.cancel()
        for conn in self.connections:
            conn.out.close_soon(1001, b"server shutting down")
        await asyncio.gather(*(conn.out.closed() for conn in self.connections))

    async def _run(self) -> None:
        while True:
            try:
                event = await self._sub.get()
            except StreamLagged:
                self._resync_all()
                continue
            if event.type == SESSIONS_ENDED:
                self._end_sessions(event)
            # Content reaches supervisors through by_conversation (the ones they follow).
            targets = set() if is_content(event) else set(self.supervisors)
            if event.agent_id is not None:
                targets |= self.by_agent.get(event.agent_id, set())
            if event.conversation_id is not None:
                targets |= self.by_conversation.get(event.conversation_id, set())
            for conn in targets:
                self.push(conn, event)

    def push(self, conn: Connection, item: StreamEvent | Frame) -> None:
        """Queue an event or a frame for one connection; never waits for its socket."""
        if not conn.out.push(
            item if isinstance(item, StreamEvent) else json.dumps(item, default=str)
        ):
            logger.warning("console connection of %s overflowed", conn.principal.name)
            self.app[METRICS].console_dropped.labels(reason="overflow").inc()
            conn.out.close_soon(1013, b"too slow; reconnect and resume")

    def _end_sessions(self, event: StreamEvent) -> None:
        """A user's sessions ended (deactivated, logged out, password changed): close their
        consoles now, each in a task of its own, rather than at the next command."""
        ended = set(event.payload.get("session_hashes") or ())
        everything = bool(event.payload.get("all"))
        for conn in list(self.by_agent.get(event.agent_id or -1, ())):
            if everything or conn.principal.session_hash in ended:
                conn.out.close_soon(SESSION_ENDED_CODE, b"session ended; log in again")

    def _resync_all(self) -> None:
        """The stream dropped events for the gateway: every console rebuilds from storage."""
        logger.warning("console feed fell behind the stream; resyncing every console")
        self._sub.resume()
        for conn in self.connections:
            conn.out.restart(Resync(reason=LAG_REASON))

    async def _watch_stalls(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self.send_stall_s / 4))
            now = loop.time()
            for conn in self.connections:
                if not conn.out.dropped and conn.out.stalled(now, self.send_stall_s):
                    logger.warning("console of %s stopped reading; dropped", conn.principal.name)
                    self.app[METRICS].console_dropped.labels(reason="stalled").inc()
                    conn.out.abort()

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
            principal=principal,
            ws=ws,
            out=Outbox(ws, request.transport, self.outbox_limit),
            supervisor=supervisor,
            index=self.by_conversation,
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
        """The one task writing this connection's socket."""
        out = conn.out
        try:
            await self._open(conn, hello.get("resume_from"))
            while True:
                gather = SUPERVISOR_GATHER_S if conn.supervisor else 0.0
                for item in await out.take(gather):
                    if isinstance(item, str):
                        await out.write(item)
                    elif isinstance(item, Resync):
                        await self._resync(conn, item.reason)
                    elif item.seq > conn.last_seq and conn.sees(item):
                        conn.last_seq = item.seq
                        await out.write(self.texts.get(item))
        except (ConnectionResetError, RuntimeError) as err:
            logger.info("console send to %s stopped: %s", conn.principal.name, err)
            out.close_soon(1000, b"")
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("console sender for %s failed", conn.principal.name)
            out.close_soon(1011, b"internal error")

    async def _open(self, conn: Connection, resume_from: Any) -> None:
        async with self.hub.sessions() as s:
            head = await head_seq(s)
            agent = await s.get_one(Agent, conn.agent_id)
            for conversation_id in await self._involved(s, conn.agent_id):
                conn.follow(conversation_id)
            snapshot = await self._snapshot(s, conn)
        resumable = isinstance(resume_from, int) and 0 <= resume_from <= head
        too_old = resumable and head - int(resume_from) > RESUME_LIMIT
        await conn.out.send(
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
        await conn.out.send(frame("snapshot", {"head": head, **snapshot}))
        if resume_from is not None and (not resumable or too_old):
            await conn.out.send(
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
                    await conn.out.write(self.texts.get(event))
            conn.last_seq = upto

    async def _resync(self, conn: Connection, reason: str) -> None:
        """Rebuild a live connection from storage, as a resume from too far back would."""
        async with self.hub.sessions() as s:
            head = await head_seq(s)
            involved = await self._involved(s, conn.agent_id)
            snapshot = await self._snapshot(s, conn)
        # Dropped events may have ended an offer or moved a conversation: follow anew.
        for conversation_id in conn.conversations - involved - conn.monitoring:
            conn.unfollow(conversation_id)
        for conversation_id in involved:
            conn.follow(conversation_id)
        conn.last_seq = max(conn.last_seq, head)
        await conn.out.send(frame("snapshot", {"head": head, **snapshot}))
        await conn.out.send(frame("resync_required", {"reason": reason, "head": head}))

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

        visible = conversation_filter(conn.principal)
        if conn.supervisor and conn.queues is None and visible is not None:
            # A team's supervisor follows the floor of the team's queues only.
            conn.queues = frozenset(
                (
                    await s.scalars(
                        select(Queue.name).where(Queue.team_id.in_(conn.principal.team_ids))
                    )
                ).all()
            )
        return await views.snapshot(s, conn.agent_id, supervisor=conn.supervisor, visible=visible)

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
        from hub.web.middleware import METRICS

        gauge = self.app[METRICS].ws_clients
        gauge.labels(kind="supervisor").set(sum(c.supervisor for c in self.connections))
        gauge.labels(kind="agent").set(sum(not c.supervisor for c in self.connections))

    # ------------------------------------------------------------------ viewing
    async def start_viewing(self, conn: Connection, conversation_id: int) -> list[dict[str, Any]]:
        conn.viewing.add(conversation_id)
        self.viewers.setdefault(conversation_id, set()).add(conn)
        return self._announce_viewers(conversation_id)

    async def _stop_viewing(self, conn: Connection, conversation_id: int) -> None:
        conn.viewing.discard(conversation_id)
        viewers = self.viewers.get(conversation_id)
        if viewers is not None:
            viewers.discard(conn)
            if not viewers:
                del self.viewers[conversation_id]
        self._announce_viewers(conversation_id)

    def _announce_viewers(self, conversation_id: int) -> list[dict[str, Any]]:
        viewers = self.viewers.get(conversation_id, set())
        people: dict[int, dict[str, Any]] = {
            c.agent_id: {"id": c.agent_id, "display_name": c.principal.display_name}
            for c in viewers
        }
        listing = sorted(people.values(), key=lambda p: int(p["id"]))
        data = {"conversation_id": conversation_id, "viewers": listing}
        for conn in tuple(viewers):
            self.push(conn, frame("viewing", data))
        return listing

    async def notify(self, agent_ids: set[int], f: Frame) -> None:
        """Send an ephemeral frame to every connection of some agents."""
        for conn in tuple(self.connections):
            if conn.agent_id in agent_ids:
                self.push(conn, f)

    # ------------------------------------------------------------------ commands
    async def _on_frame(self, conn: Connection, raw: str) -> None:
        try:
            msg = json.loads(raw)
        except json.JSONDecodeError:
            self.push(
                conn,
                frame(
                    "error",
                    {"client_msg_id": None, "code": "invalid_input", "detail": "frame is not JSON"},
                ),
            )
            return
        if not isinstance(msg, dict):
            return
        if msg.get("type") == "ping":
            self.push(conn, frame("pong", {}))
            return
        if msg.get("type") != "cmd":
            return
        data = msg.get("data") or {}
        cmid = data.get("client_msg_id")
        name = data.get("name")
        args = data.get("args") or {}
        if not isinstance(cmid, str) or not cmid or len(cmid) > 100:
            self.push(
                conn,
                frame(
                    "error",
                    {
                        "client_msg_id": cmid,
                        "code": "invalid_input",
                        "detail": "client_msg_id is required",
                    },
                ),
            )
            return
        try:
            result = await self._execute(conn, cmid, name, args)
        except HubError as err:
            code = next((c for t, c in _ERROR_CODES if isinstance(err, t)), "error")
            self.push(
                conn, frame("error", {"client_msg_id": cmid, "code": code, "detail": str(err)})
            )
            return
        except Exception:
            logger.exception("console command %s failed", name)
            self.push(
                conn,
                frame(
                    "error", {"client_msg_id": cmid, "code": "internal", "detail": "internal error"}
                ),
            )
            return
        self.push(conn, frame("ack", {"client_msg_id": cmid, "result": result}))

    async def _execute(self, conn: Connection, cmid: str, name: Any, args: Any) -> dict[str, Any]:
        handler = self.commands.get(name) if isinstance(name, str) else None
        if handler is None:
            raise InvalidInput(f"unknown command {name!r}")
        if not isinstance(args, dict):
            raise InvalidInput("args must be an object")
        if not allowed(conn.principal, self.permissions.get(name, "")):
            # The same decision as REST (hub.access); a command with no rule is refused.
            raise Forbidden(f"your role may not use {name!r}")
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
# The event the hub emits when a user's sessions end (``payload``: ``all`` or the hashes).
SESSIONS_ENDED = "agent.sessions_ended"
SESSION_ENDED_CODE = 4401


async def gateway_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the console gateway for the app's lifetime."""
    from agent_console.commands import COMMAND_PERMISSIONS, COMMANDS

    gateway = ConsoleGateway(app)
    gateway.commands.update(COMMANDS)
    gateway.permissions.update(COMMAND_PERMISSIONS)
    app[GATEWAY] = gateway
    await gateway.start()
    yield
    await gateway.stop()


async def agent_ws(request: web.Request) -> web.StreamResponse:
    return await request.app[GATEWAY].handle(request, supervisor=False)


async def supervisor_ws(request: web.Request) -> web.StreamResponse:
    return await request.app[GATEWAY].handle(request, supervisor=True)


__all__ = [
    "GATEWAY",
    "Command",
    "Connection",
    "ConsoleGateway",
    "agent_ws",
    "gateway_ctx",
    "supervisor_ws",
]
