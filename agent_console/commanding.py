"""Client frames of a console connection: pings and commands, each answered by an ``ack`` or
an ``error`` carrying the client's ``client_msg_id``.

A command is looked up in a table, checked against ``hub.access`` (deny by default), and
run at most once per ``client_msg_id`` through the hub's command log. Its ack waits until
the events it caused have been queued for the connection, so a client that stops reading
at the ack resumes from a point that already includes them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from agent_console.connection import Connection
from agent_console.protocol import MUTATING, SELF_IDEMPOTENT, SESSION_ENDED_CODE, Frame, frame
from contract.errors import Conflict, Forbidden, HubError, InvalidInput, NotFound
from hub.access import allowed
from hub.commands import agent_actor
from hub.services import Hub
from hub.stream import StreamEvent

logger = logging.getLogger(__name__)

# How long an ack may wait for the fan-out to queue the command's own events.
SETTLE_S = 0.5
# How often a console's commands re-check its login: a person who works only in the
# console keeps the session alive (``HUB_SESSION_IDLE_S`` counts from the last use), and a
# session that ended or went idle stops taking commands even if its close event was missed.
SESSION_CHECK_S = 60.0

_ERROR_CODES: list[tuple[type[HubError], str]] = [
    (InvalidInput, "invalid_input"),
    (NotFound, "not_found"),
    (Conflict, "conflict"),
    (Forbidden, "forbidden"),
]


class Console(Protocol):
    """What a command may use of the gateway: the hub, presence and ephemeral frames."""

    hub: Hub

    async def start_viewing(self, conn: Connection, conversation_id: int) -> list[dict[str, Any]]:
        """Mark the conversation as open on this connection; who else has it open."""
        ...

    async def stop_viewing(self, conn: Connection, conversation_id: int) -> None: ...

    async def notify(self, agent_ids: set[int], f: Frame) -> None:
        """Send an ephemeral frame to every connection of some agents."""
        ...

    def push(self, conn: Connection, item: StreamEvent | Frame) -> None: ...

    async def settled(self, seq: int, wait_s: float) -> None:
        """Return once the fan-out has queued every event up to ``seq`` (or after ``wait_s``)."""
        ...


Command = Callable[[Console, Connection, dict[str, Any]], Awaitable[dict[str, Any]]]


class CommandRunner:
    """Reads a connection's frames and runs its commands."""

    def __init__(
        self, console: Console, commands: dict[str, Command], permissions: dict[str, str]
    ) -> None:
        self.console = console
        self.commands = commands
        self.permissions = permissions  # command -> hub.access permission

    def _error(self, conn: Connection, cmid: Any, code: str, detail: str) -> None:
        data = {"client_msg_id": cmid, "code": code, "detail": detail}
        self.console.push(conn, frame("error", data))

    async def on_frame(self, conn: Connection, raw: str) -> None:
        """Answer one text frame from the client."""
        try:
            msg = json.loads(raw)
        except json.JSONDecodeError:
            self._error(conn, None, "invalid_input", "frame is not JSON")
            return
        if not isinstance(msg, dict):
            return
        if msg.get("type") == "ping":
            self.console.push(conn, frame("pong", {}))
            return
        if msg.get("type") != "cmd":
            return
        data = msg.get("data") or {}
        cmid = data.get("client_msg_id")
        name = data.get("name")
        args = data.get("args") or {}
        if not isinstance(cmid, str) or not cmid or len(cmid) > 100:
            self._error(conn, cmid, "invalid_input", "client_msg_id is required")
            return
        if not await self._session_alive(conn):
            # The close code tells the page to log in again (as when a logout closes it).
            conn.out.close_soon(SESSION_ENDED_CODE, b"session ended; log in again")
            return
        try:
            result = await self._execute(conn, cmid, name, args)
        except HubError as err:
            code = next((c for t, c in _ERROR_CODES if isinstance(err, t)), "error")
            self._error(conn, cmid, code, str(err))
            return
        except Exception:
            logger.exception("console command %s failed", name)
            self._error(conn, cmid, "internal", "internal error")
            return
        await self.console.settled(self.console.hub.stream.last_seq, SETTLE_S)
        self.console.push(conn, frame("ack", {"client_msg_id": cmid, "result": result}))

    async def _session_alive(self, conn: Connection) -> bool:
        """Whether the console's login still holds; refreshes its last use (once a minute)."""
        hashed = conn.principal.session_hash
        now = time.monotonic()
        if hashed is None or now - conn.session_checked_at < SESSION_CHECK_S:
            return True
        conn.session_checked_at = now
        return await self.console.hub.users.principal_for(hashed) is not None

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
            return await handler(self.console, conn, {**args, "_client_msg_id": cmid})
        if name not in MUTATING:
            return await handler(self.console, conn, args)
        return await self.console.hub.commands.once(
            actor=agent_actor(conn.agent_id),
            key=cmid,
            command=name,
            run=lambda: handler(self.console, conn, {**args, "_client_msg_id": cmid}),
        )
