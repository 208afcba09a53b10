"""The interaction stream: committed events fanned out to subscribers in ``seq`` order.

Events are appended to the database inside the transaction that caused them (see
``hub.uow``); after commit they are handed here. Delivery is strictly in ``seq`` order with no
gaps: an event that arrives early waits for the ones before it, and a gap that does not fill
within ``gap_timeout`` (another process committed it, or a publisher died between commit and
publish) is read back from storage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEvent:
    """One committed event of the interaction stream."""

    seq: int
    type: str
    created_at: datetime
    conversation_id: int | None = None
    customer_id: int | None = None
    agent_id: int | None = None
    queue: str = ""
    channel: str = ""
    payload: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The event as a JSON-ready dict (the console's ``data``)."""
        return {
            "seq": self.seq,
            "type": self.type,
            "at": self.created_at.isoformat(),
            "conversation_id": self.conversation_id,
            "customer_id": self.customer_id,
            "agent_id": self.agent_id,
            "queue": self.queue,
            "channel": self.channel,
            "payload": self.payload,
        }


FetchRange = Callable[[int, int], Awaitable[list[StreamEvent]]]


class Subscription:
    """A subscriber's ordered feed; ``lagged`` is set when it fell too far behind."""

    def __init__(self, stream: InteractionStream, maxsize: int) -> None:
        self._stream = stream
        self.queue: asyncio.Queue[StreamEvent] = asyncio.Queue(maxsize)
        self.lagged = False

    def offer(self, event: StreamEvent) -> None:
        if self.lagged:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # A slow consumer must not hold back the others; it resyncs from storage.
            self.lagged = True
            logger.warning("stream subscriber lagged at seq %s", event.seq)

    async def get(self) -> StreamEvent:
        return await self.queue.get()

    def close(self) -> None:
        self._stream.unsubscribe(self)

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        while True:
            yield await self.queue.get()


class InteractionStream:
    """Embedded (in-process) fan-out of committed events, ordered and gap-free."""

    def __init__(self, fetch_range: FetchRange, *, gap_timeout: float = 0.5) -> None:
        self._fetch_range = fetch_range
        self._gap_timeout = gap_timeout
        self._subs: set[Subscription] = set()
        self._pending: dict[int, StreamEvent] = {}
        self._next_seq = 1
        self._gap_task: asyncio.Task[None] | None = None
        self.delivered = 0

    @property
    def last_seq(self) -> int:
        """The highest seq delivered to subscribers."""
        return self._next_seq - 1

    def start_at(self, head: int) -> None:
        """Begin delivery after ``head`` (the committed head at start-up)."""
        self._next_seq = head + 1

    def subscribe(self, maxsize: int = 10_000) -> Subscription:
        sub = Subscription(self, maxsize)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, events: Sequence[StreamEvent]) -> None:
        """Hand over committed events (any order); delivers every contiguous run."""
        for event in events:
            if event.seq >= self._next_seq:
                self._pending[event.seq] = event
        self._drain()
        if self._pending and self._gap_task is None:
            self._gap_task = asyncio.create_task(self._fill_gap())

    def _drain(self) -> None:
        while (event := self._pending.pop(self._next_seq, None)) is not None:
            self._next_seq += 1
            self.delivered += 1
            for sub in tuple(self._subs):
                sub.offer(event)

    async def _fill_gap(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(self._gap_timeout)
                if not self._pending:
                    break
                missing_to = min(self._pending) - 1
                if missing_to < self._next_seq:
                    self._drain()
                    continue
                events = await self._fetch_range(self._next_seq, missing_to)
                for event in events:
                    self._pending.setdefault(event.seq, event)
                if self._next_seq not in self._pending:
                    logger.error("stream gap at seq %s not found in storage", self._next_seq)
                    # Never stall everyone forever: skip what storage does not have.
                    self._next_seq = min(self._pending)
                self._drain()
        except Exception:
            logger.exception("stream gap filler failed")
        finally:
            self._gap_task = None

    async def close(self) -> None:
        if self._gap_task is not None:
            self._gap_task.cancel()
        self._subs.clear()
