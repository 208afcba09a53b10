"""Who is connected to the console: the indexes the fan-out uses, who has which conversation
open (``viewing`` frames), and the grace before a user whose last console closed is marked
offline (a page reload must not flip an agent's state)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from agent_console.connection import Connection
from agent_console.protocol import Frame, frame
from hub.services import Hub

logger = logging.getLogger(__name__)


class Presence:
    """The open console connections, indexed for the fan-out."""

    def __init__(
        self,
        hub: Hub,
        push: Callable[[Connection, Frame], None],
        counted: Callable[[int, int], None],
    ) -> None:
        self.hub = hub
        self._push = push
        self._counted = counted  # (agents, supervisors) connected, for the metrics
        self.connections: set[Connection] = set()
        # Fan-out indexes: an event only reaches connections that may see it.
        self.supervisors: set[Connection] = set()
        self.by_agent: dict[int, set[Connection]] = {}
        self.by_conversation: dict[int, set[Connection]] = {}
        self.viewers: dict[int, set[Connection]] = {}
        self._offline_timers: dict[int, asyncio.TimerHandle] = {}

    def connected(self, conn: Connection) -> None:
        self.connections.add(conn)
        if conn.supervisor:
            self.supervisors.add(conn)
        else:
            self.by_agent.setdefault(conn.agent_id, set()).add(conn)
        timer = self._offline_timers.pop(conn.agent_id, None)
        if timer is not None:
            timer.cancel()
        self._count()

    async def disconnected(self, conn: Connection) -> None:
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
            await self.stop_viewing(conn, conv_id)
        self._count()
        if not any(c.agent_id == conn.agent_id for c in self.connections):
            grace = self.hub.settings.offline_grace_s
            loop = asyncio.get_running_loop()
            self._offline_timers[conn.agent_id] = loop.call_later(
                grace, lambda: asyncio.ensure_future(self._went_away(conn.agent_id))
            )

    def stop(self) -> None:
        """Forget the pending offline marks (the hub is shutting down)."""
        for timer in self._offline_timers.values():
            timer.cancel()

    async def _went_away(self, agent_id: int) -> None:
        self._offline_timers.pop(agent_id, None)
        if any(c.agent_id == agent_id for c in self.connections):
            return
        # Several processes: the console may have reconnected to another one. When that
        # cannot be told (the bus is away), the agent is left as is: an offer to an agent
        # who is gone times out and sets them away; marking a working agent offline would not.
        elsewhere = await self.hub.bus.online_elsewhere(agent_id)
        if elsewhere is not False:
            logger.info("agent %s left this process but not the hub (%s)", agent_id, elsewhere)
            return
        try:
            await self.hub.work.set_state(agent_id, "offline", "console closed")
        except Exception:
            logger.exception("could not mark agent %s offline", agent_id)

    def _count(self) -> None:
        supervisors = sum(c.supervisor for c in self.connections)
        self._counted(len(self.connections) - supervisors, supervisors)

    async def start_viewing(self, conn: Connection, conversation_id: int) -> list[dict[str, Any]]:
        conn.viewing.add(conversation_id)
        self.viewers.setdefault(conversation_id, set()).add(conn)
        return self._announce_viewers(conversation_id)

    async def stop_viewing(self, conn: Connection, conversation_id: int) -> None:
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
            self._push(conn, frame("viewing", data))
        return listing

    async def notify(self, agent_ids: set[int], f: Frame) -> None:
        """Send an ephemeral frame to every connection of some agents."""
        for conn in tuple(self.connections):
            if conn.agent_id in agent_ids:
                self._push(conn, f)
