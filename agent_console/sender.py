"""A console connection's outbound side: its bounded queue and the one task that writes it.

Nothing serving one client awaits another client's socket. The fan-out, command replies and
ephemeral frames only queue (``Outbox.push`` never waits); a connection's own sender task is
the only one that writes its socket; a client that overflows its queue or whose socket takes
nothing for a while is dropped by a task of its own (a close, then an abort if that stalls).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import dataclass

from aiohttp import web

from agent_console.protocol import Frame, frame
from hub.stream import StreamEvent

logger = logging.getLogger(__name__)

# Frames a connection may have waiting; a console this far behind resumes faster anew.
OUTBOX_LIMIT = 20_000
# A socket that accepts no byte for this long belongs to a client that stopped reading
# (its TCP window is shut). The heartbeat would notice only after 45 s, and meanwhile its
# queue grows.
SEND_STALL_S = 10.0
# How long a dropped client gets to answer our close frame before its socket is aborted.
CLOSE_GRACE_S = 2.0

_closing: set[asyncio.Task[None]] = set()


@dataclass(frozen=True, slots=True, kw_only=True)
class Resync:
    """Queue marker: events were dropped for this client; rebuild it from a fresh snapshot."""

    reason: str


# A stored event (filtered by the sender), a frame already serialized, or a resync marker.
Outgoing = StreamEvent | str | Resync


class Outbox:
    """Frames waiting for one websocket; written only by that connection's sender task."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        limit: int = OUTBOX_LIMIT,
    ) -> None:
        self.ws = ws
        self._transport = transport
        self.limit = limit
        self._items: deque[Outgoing] = deque()
        self._ready = asyncio.Event()
        self.dropped = False
        self.writing_since: float | None = None
        self._closer: asyncio.Task[None] | None = None

    def push(self, item: Outgoing) -> bool:
        """Queue without waiting; False when the queue is full (the client is too slow)."""
        if self.dropped:
            return True
        if len(self._items) >= self.limit:
            return False
        self._items.append(item)
        self._ready.set()
        return True

    def restart(self, marker: Resync) -> None:
        """Replace what is queued by ``marker`` (the client rebuilds from a snapshot)."""
        self._items.clear()
        self.push(marker)

    async def take(self, gather_s: float = 0.0) -> list[Outgoing]:
        """Everything queued, once there is something; events wait ``gather_s`` for company."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        if gather_s and isinstance(self._items[0], StreamEvent):
            await asyncio.sleep(gather_s)
        items = list(self._items)
        self._items.clear()
        return items

    async def write(self, text: str) -> None:
        """Write one frame. Without compression it is written at once; the writer only
        awaits when the socket's buffer is over its limit, which the stall watch times."""
        self.writing_since = asyncio.get_running_loop().time()
        try:
            await self.ws.send_str(text)
        finally:
            self.writing_since = None

    async def send(self, f: Frame) -> None:
        await self.write(json.dumps(f, default=str))

    def stalled(self, now: float, limit_s: float) -> bool:
        """True when one write has waited for the socket longer than ``limit_s``."""
        return self.writing_since is not None and now - self.writing_since > limit_s

    def close_soon(self, code: int, message: bytes) -> None:
        """Stop serving this client: close in a task of its own, abort if the close stalls."""
        if self.dropped:
            return
        self.dropped = True
        self._items.clear()
        task = asyncio.create_task(self._close(code, message), name="console-close")
        _closing.add(task)
        task.add_done_callback(_closing.discard)
        self._closer = task

    def abort(self) -> None:
        """Stop serving this client now: its socket takes nothing, so no close frame fits."""
        self.dropped = True
        self._items.clear()
        if self._transport is not None:
            self._transport.abort()

    async def closed(self) -> None:
        """Wait until a ``close_soon`` has finished."""
        if self._closer is not None:
            await self._closer

    async def _close(self, code: int, message: bytes) -> None:
        done = False
        try:
            async with asyncio.timeout(CLOSE_GRACE_S):
                await self.ws.close(code=code, message=message)
            done = True
        except TimeoutError:
            logger.info("console close timed out; aborting the socket")
        finally:
            if not done and self._transport is not None:
                self._transport.abort()


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
