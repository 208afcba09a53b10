"""The interaction stream: committed events fanned out to subscribers in ``seq`` order.

Events are appended to the database inside the transaction that caused them (see
``hub.uow``); after commit they are handed here. Delivery is strictly in ``seq`` order with no
gaps: an event that arrives early waits for the ones before it, and a gap that does not fill
within ``gap_timeout`` (another process committed it, or a publisher died between commit and
publish) is read back from storage. A subscriber that falls more than its limit behind is
not waited for: its backlog is dropped and its next read raises ``StreamLagged``, after which
it resumes and rebuilds from storage.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)
# Events a subscriber may have queued before it lags (about a minute of a very busy floor).
SUBSCRIBER_LIMIT = 100_000


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


class StreamLagged(Exception):
    """The subscription fell more than its limit behind: events were dropped for it.

    The subscriber calls ``Subscription.resume`` and rebuilds what it keeps from storage.
    """


class Subscription:
    """A subscriber's ordered feed, bounded; one that falls too far behind is told so."""

    def __init__(
        self,
        stream: InteractionStream,
        maxsize: int,
        *,
        name: str,
        on_lag: Callable[[], None] | None = None,
    ) -> None:
        self._stream = stream
        self.name = name
        self.maxsize = maxsize
        self._items: deque[StreamEvent] = deque()
        self._ready = asyncio.Event()
        self._on_lag = on_lag
        self.lagged = False

    def offer(self, event: StreamEvent) -> None:
        if self.lagged:
            return
        if len(self._items) >= self.maxsize:
            # A slow consumer must not hold back the others, nor keep an unbounded backlog:
            # what it has not read is dropped and its next read raises StreamLagged.
            self.lagged = True
            self._items.clear()
            self._ready.set()
            logger.warning("stream subscriber %s lagged at seq %s", self.name, event.seq)
            if self._on_lag is not None:
                self._on_lag()
            return
        self._items.append(event)
        self._ready.set()

    async def get(self) -> StreamEvent:
        """The next event; raises ``StreamLagged`` once events were dropped for this feed."""
        while not self._items:
            if self.lagged:
                raise StreamLagged(self.name)
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def get_nowait(self) -> StreamEvent:
        if self.lagged:
            raise StreamLagged(self.name)
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    def empty(self) -> bool:
        return not self._items and not self.lagged

    def discard_pending(self) -> None:
        """Drop what is queued (the subscriber is about to read storage instead)."""
        self._items.clear()

    def resume(self) -> None:
        """Clear the lag: every event after the stream's head from now on is delivered.

        The subscriber then reads storage, which holds everything up to that head (events
        are published after they commit).
        """
        self.lagged = False
        self._items.clear()

    def close(self) -> None:
        self._stream.unsubscribe(self)


class InteractionStream:
    """Embedded (in-process) fan-out of committed events, ordered and gap-free."""

    def __init__(
        self,
        fetch_range: FetchRange,
        *,
        gap_timeout: float = 0.5,
        subscriber_limit: int = SUBSCRIBER_LIMIT,
    ) -> None:
        self._fetch_range = fetch_range
        self.gap_timeout = gap_timeout
        # Where events this process committed go besides its subscribers (the bus to the
        # other processes, ``hub.bus``); remote events come in through ``publish``.
        self.outlet: Callable[[Sequence[StreamEvent]], None] | None = None
        # How far a subscriber may fall behind before it lags (tests make it small).
        self.subscriber_limit = subscriber_limit
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

    def subscribe(
        self,
        maxsize: int | None = None,
        *,
        name: str = "anonymous",
        on_lag: Callable[[], None] | None = None,
    ) -> Subscription:
        """A new feed of every event delivered from now on; ``on_lag`` runs when it lags."""
        limit = self.subscriber_limit if maxsize is None else maxsize
        sub = Subscription(self, limit, name=name, on_lag=on_lag)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def committed(self, events: Sequence[StreamEvent]) -> None:
        """Events this process just committed: delivered here, and handed to the outlet."""
        self.publish(events)
        if self.outlet is not None:
            self.outlet(events)

    async def catch_up(self, upto: int) -> None:
        """Read from storage and deliver every event up to ``upto`` not delivered yet."""
        while self._next_seq <= upto:
            start = self._next_seq
            self.publish(await self._fetch_range(start, min(upto, start + 999)))
            if self._next_seq == start and start not in self._pending:
                logger.error("stream gap at seq %s not found in storage", start)
                self._next_seq += 1  # skip the one storage does not have
                self._drain()

    def publish(self, events: Sequence[StreamEvent]) -> None:
        """Hand over committed events (any order, repeats ignored); delivers every
        contiguous run."""
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
                await asyncio.sleep(self.gap_timeout)
                if not self._pending:
                    break
                start = self._next_seq
                missing_to = min(self._pending) - 1
                if missing_to < start:
                    self._drain()
                    continue
                # The bus or the stream poll may deliver meanwhile: ``publish`` takes only
                # what is still missing, and the skip below only if nothing moved.
                self.publish(await self._fetch_range(start, missing_to))
                if self._next_seq == start and start not in self._pending:
                    logger.error("stream gap at seq %s not found in storage", start)
                    # Never stall everyone forever: skip what storage does not have.
                    self._next_seq += 1
                    self._drain()
        except Exception:
            logger.exception("stream gap filler failed")
        finally:
            self._gap_task = None

    async def close(self) -> None:
        if self._gap_task is not None:
            self._gap_task.cancel()
        self._subs.clear()
