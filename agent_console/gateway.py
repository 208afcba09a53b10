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
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import WSMsgType, web

from agent_console.commanding import CommandRunner
from agent_console.commands import COMMAND_PERMISSIONS, COMMANDS
from agent_console.connection import Connection, is_content
from agent_console.pages import same_origin
from agent_console.presence import Presence
from agent_console.protocol import HEARTBEAT_S, RESUME_LIMIT, SESSION_ENDED_CODE, Frame, frame
from agent_console.sender import OUTBOX_LIMIT, SEND_STALL_S, FrameTexts, Outbox, Resync
from hub import events
from hub.console.service import Opening
from hub.signals import CustomerTyping, Signal
from hub.stream import StreamEvent, StreamLagged
from hub.web import keys
from hub.web.auth import authenticate
from hub.web.middleware import METRICS

logger = logging.getLogger(__name__)

# A supervisor's dashboard gathers its live events for this long and writes them in one
# wake-up. Each floor event goes to every dashboard: one wake-up per dashboard per event
# put 50 sender turns on the loop ahead of the agent frames queued behind them.
SUPERVISOR_GATHER_S = 0.05
LAG_REASON = "the hub fell behind; events were dropped"
# Close reason at shutdown (code 1012, service restart): the client reconnects and resumes.
RESTARTING = b"hub restarting; reconnect and resume"


class ConsoleGateway:
    """Fan-out of stream events to console connections; each connection's socket session."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.hub = app[keys.HUB]
        self.presence = Presence(self.hub, self.push, self._count)
        # The presence indexes, under the names the fan-out reads them by.
        self.connections = self.presence.connections
        self.supervisors = self.presence.supervisors
        self.by_agent = self.presence.by_agent
        self.by_conversation = self.presence.by_conversation
        self.viewers = self.presence.viewers
        self.runner = CommandRunner(self, dict(COMMANDS), dict(COMMAND_PERMISSIONS))
        self._pump: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        # The last event the fan-out has queued, and a signal each time it moves.
        self.pumped = 0
        self._progress = asyncio.Event()
        self.texts = FrameTexts()
        self.outbox_limit = OUTBOX_LIMIT
        self.send_stall_s = SEND_STALL_S
        self._signal_tasks: set[asyncio.Task[None]] = set()
        self._unlisten: Callable[[], None] = lambda: None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        lagged = self.app[METRICS].stream_lagged.labels(subscriber="console")
        self._sub = self.hub.stream.subscribe(name="console", on_lag=lagged.inc)
        self.pumped = self.hub.stream.last_seq
        self._pump = asyncio.create_task(self._run(), name="console-fanout")
        self._watch = asyncio.create_task(self._watch_stalls(), name="console-stall-watch")
        self._unlisten = self.hub.signals.listen(self._signal)
        self.hub.local_agents = lambda: {c.agent_id for c in self.connections}

    def _signal(self, signal: Signal) -> None:
        """A customer typing: the agent handling the conversation sees it (never stored)."""
        if not isinstance(signal, CustomerTyping) or signal.assignee_id is None:
            return
        f = frame("typing", {"conversation_id": signal.conversation_id, "on": signal.on})
        task = asyncio.get_running_loop().create_task(self.notify({signal.assignee_id}, f))
        self._signal_tasks.add(task)
        task.add_done_callback(self._signal_tasks.discard)

    async def stop(self) -> None:
        self._unlisten()
        for task in (self._pump, self._watch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._sub.close()
        self.presence.stop()
        await self.drain()

    async def drain(self) -> None:
        """Tell every console to reconnect (to another process) and resume: the hub is
        stopping. Runs at shutdown before in-flight requests are waited for."""
        for conn in self.connections:
            conn.out.close_soon(1012, RESTARTING)
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
            self.pumped = event.seq
            self._progress.set()

    async def settled(self, seq: int, wait_s: float) -> None:
        """Return once the fan-out has queued every event up to ``seq`` (or after ``wait_s``:
        a lagging feed is resynced anyway)."""
        try:
            async with asyncio.timeout(wait_s):
                while self.pumped < seq:
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            logger.debug("console fan-out still short of %s after %ss", seq, wait_s)

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
        self.pumped = max(self.pumped, self.hub.stream.last_seq)
        self._progress.set()
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
        self.presence.connected(conn)
        sender = asyncio.create_task(self._sender(conn, (hello.get("data") or {})))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self.runner.on_frame(conn, msg.data)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            await self.presence.disconnected(conn)
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
        opening = await self._opening(conn)
        head, snapshot = opening.head, opening.snapshot
        for conversation_id in opening.involved:
            conn.follow(conversation_id)
        resumable = isinstance(resume_from, int) and 0 <= resume_from <= head
        too_old = resumable and head - int(resume_from) > RESUME_LIMIT
        await conn.out.send(
            frame(
                "welcome",
                {
                    "protocol": 1,
                    "head": head,
                    "resumed": bool(resumable and not too_old),
                    "user": opening.user,
                    "channels": self.hub.channels.as_json(),
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
            events = await self.hub.console.events(conn.last_seq + 1, upto)
            for event in events:
                if conn.sees(event):
                    await conn.out.write(self.texts.get(event))
            conn.last_seq = upto

    async def _resync(self, conn: Connection, reason: str) -> None:
        """Rebuild a live connection from storage, as a resume from too far back would."""
        opening = await self._opening(conn)
        head, involved, snapshot = opening.head, opening.involved, opening.snapshot
        # Dropped events may have ended an offer or moved a conversation: follow anew.
        for conversation_id in conn.conversations - involved - conn.monitoring:
            conn.unfollow(conversation_id)
        for conversation_id in involved:
            conn.follow(conversation_id)
        conn.last_seq = max(conn.last_seq, head)
        await conn.out.send(frame("snapshot", {"head": head, **snapshot}))
        await conn.out.send(frame("resync_required", {"reason": reason, "head": head}))

    async def _opening(self, conn: Connection) -> Opening:
        opening = await self.hub.console.opening(conn.principal, supervisor=conn.supervisor)
        if conn.supervisor and conn.queues is None:
            conn.queues = opening.queues
        return opening

    # ------------------------------------------------------------------ presence
    def _count(self, agents: int, supervisors: int) -> None:
        gauge = self.app[METRICS].ws_clients
        gauge.labels(kind="supervisor").set(supervisors)
        gauge.labels(kind="agent").set(agents)

    async def start_viewing(self, conn: Connection, conversation_id: int) -> list[dict[str, Any]]:
        return await self.presence.start_viewing(conn, conversation_id)

    async def stop_viewing(self, conn: Connection, conversation_id: int) -> None:
        await self.presence.stop_viewing(conn, conversation_id)

    async def notify(self, agent_ids: set[int], f: Frame) -> None:
        await self.presence.notify(agent_ids, f)


GATEWAY: web.AppKey[ConsoleGateway] = web.AppKey("console_gateway")
# The event the hub emits when a user's sessions end (``payload``: ``all`` or the hashes).
SESSIONS_ENDED = events.AgentSessionsEnded.TYPE


async def gateway_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the console gateway for the app's lifetime."""
    gateway = ConsoleGateway(app)
    app[GATEWAY] = gateway
    await gateway.start()

    async def drain(_app: web.Application) -> None:
        await gateway.drain()

    app.on_shutdown.append(drain)
    yield
    await gateway.stop()


async def agent_ws(request: web.Request) -> web.StreamResponse:
    return await request.app[GATEWAY].handle(request, supervisor=False)


async def supervisor_ws(request: web.Request) -> web.StreamResponse:
    return await request.app[GATEWAY].handle(request, supervisor=True)


__all__ = [
    "GATEWAY",
    "Connection",
    "ConsoleGateway",
    "agent_ws",
    "gateway_ctx",
    "supervisor_ws",
]
