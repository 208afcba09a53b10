"""The bus between hub processes: committed events and live signals reach every process.

With one process (no ``HUB_REDIS_URL``) there is nothing to carry: ``LocalBus``. With
several, ``RedisBus`` puts what each process commits on one Redis stream
(``<prefix>:bus``, trimmed to about ``BUS_MAXLEN`` entries) and every process reads all of
it from where it left off, so a short Redis or network blip loses nothing. The database
stays the truth: events carry their stored ``seq``, the interaction stream drops what it
already has and waits for what is missing, and ``poll_stream_head`` reads from storage
whatever the bus did not bring within a second (Redis down, a publisher killed between
commit and publish). Redis persistence is therefore not needed for correctness.

Which agents have a console open is shared as well (``<prefix>:online:<process>``, a set
refreshed every few seconds with a short expiry), so a console that reconnects to another
process is not marked offline by the one it left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from hub.signals import AgentTyping, ConversationRead, CustomerTyping, Signal, Signals
from hub.stream import InteractionStream, StreamEvent
from hub.supervise import Loop, Supervisor

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

BUS_MAXLEN = 100_000
READ_BLOCK_MS = 1_000
READ_COUNT = 500
PUBLISH_BUFFER = 50_000
POLL_EVERY_S = 1.0
# The bus's loops retry at least this often while Redis is away (a round costs one call).
RETRY_CAP_S = 1.0
# A live signal older than this when read (a reader catching up after a blip) is dropped.
SIGNAL_MAX_AGE_S = 5.0
PRESENCE_EVERY_S = 3.0
PRESENCE_TTL_S = 10


class Bus(Protocol):
    """What the hub hands to other processes, and asks of them."""

    def publish(self, events: Sequence[StreamEvent]) -> None:
        """Events this process committed (after the commit)."""

    def send_signal(self, signal: Signal) -> None:
        """A live signal raised in this process."""

    async def ping(self) -> None:
        """Raise if the bus cannot be reached (readiness)."""

    async def online_elsewhere(self, agent_id: int) -> bool | None:
        """Whether another process has a console of the agent open (None: cannot tell)."""

    def start(self, supervisor: Supervisor, local_agents: Callable[[], set[int]]) -> None:
        """Start the bus's loops."""

    async def close(self) -> None:
        """Close connections."""


class LocalBus:
    """One process: nothing to carry."""

    connected = True

    def publish(self, events: Sequence[StreamEvent]) -> None:
        return None

    def send_signal(self, signal: Signal) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def online_elsewhere(self, agent_id: int) -> bool | None:
        return False

    def start(self, supervisor: Supervisor, local_agents: Callable[[], set[int]]) -> None:
        return None

    async def close(self) -> None:
        return None


def encode_events(origin: str, events: Sequence[StreamEvent]) -> bytes:
    return orjson.dumps(
        {
            "o": origin,
            "e": [
                [
                    e.seq,
                    e.type,
                    e.created_at.isoformat(),
                    e.conversation_id,
                    e.customer_id,
                    e.agent_id,
                    e.queue,
                    e.channel,
                    e.payload,
                ]
                for e in events
            ],
        }
    )


def decode_events(items: list[list[Any]]) -> list[StreamEvent]:
    return [
        StreamEvent(
            seq=int(seq),
            type=str(type_),
            created_at=datetime.fromisoformat(at),
            conversation_id=conv,
            customer_id=customer,
            agent_id=agent,
            queue=queue,
            channel=channel,
            payload=payload,
        )
        for seq, type_, at, conv, customer, agent, queue, channel, payload in items
    ]


def encode_signal(origin: str, signal: Signal) -> bytes:
    if isinstance(signal, CustomerTyping):
        body: dict[str, Any] = {
            "k": "typing",
            "conversation_id": signal.conversation_id,
            "assignee_id": signal.assignee_id,
            "on": signal.on,
        }
    elif isinstance(signal, AgentTyping):
        body = {
            "k": "agent_typing",
            "conversation_id": signal.conversation_id,
            "channel": signal.channel,
            "address": signal.address,
        }
    else:
        body = {
            "k": "read",
            "conversation_id": signal.conversation_id,
            "channel": signal.channel,
            "message_id": signal.message_id,
        }
    return orjson.dumps({"o": origin, "t": time.time(), "s": body})


def decode_signal(body: dict[str, Any]) -> Signal | None:
    kind = body.pop("k", None)
    if kind == "typing":
        return CustomerTyping(**body)
    if kind == "read":
        return ConversationRead(**body)
    if kind == "agent_typing":
        return AgentTyping(**body)
    return None


class RedisBus:
    """Several processes: one Redis stream carries events and signals to all of them."""

    def __init__(
        self,
        url: str,
        prefix: str,
        origin: str,
        stream: InteractionStream,
        signals: Signals,
    ) -> None:
        import redis.asyncio as aioredis

        self.origin = origin
        self.prefix = prefix
        self.key = f"{prefix}:bus"
        self.stream = stream
        self.signals = signals
        self.client: Redis = aioredis.from_url(
            url, socket_timeout=READ_BLOCK_MS / 1000 + 4, socket_connect_timeout=2
        )
        self._outgoing: deque[bytes] = deque(maxlen=PUBLISH_BUFFER)
        self._wake = asyncio.Event()
        self.connected = False
        self.received = 0
        self.published = 0

    # ------------------------------------------------------------------ outgoing
    def publish(self, events: Sequence[StreamEvent]) -> None:
        if events:
            self._outgoing.append(encode_events(self.origin, events))
            self._wake.set()

    def send_signal(self, signal: Signal) -> None:
        self._outgoing.append(encode_signal(self.origin, signal))
        self._wake.set()

    async def _publish_loop(self, loop: Loop) -> None:
        while True:
            if not self._outgoing:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1 if not loop.healthy else 5):
                        await self._wake.wait()
                if not self._outgoing and not loop.healthy:
                    await self.client.ping()  # idle after a failure: working again?
                    loop.ok()
                continue
            batch = list(self._outgoing)
            pipe = self.client.pipeline(transaction=False)
            for body in batch:
                pipe.xadd(self.key, {"m": body}, maxlen=BUS_MAXLEN, approximate=True)
            await pipe.execute()
            # Only what was sent leaves the buffer (more may have come meanwhile); if Redis
            # failed, the stream poll of every other process reads the events from storage.
            for _ in batch:
                self._outgoing.popleft()
            self.published += len(batch)
            loop.ok()

    # ------------------------------------------------------------------ incoming
    async def _read_loop(self, loop: Loop) -> None:
        last_id = "$"
        while True:
            try:
                if last_id == "$":
                    # Start at the newest entry; what came before is in storage.
                    info = await self.client.xinfo_stream(self.key)
                    last_id = info["last-generated-id"]
                    if isinstance(last_id, bytes):
                        last_id = last_id.decode()
                reply: Any = await self.client.xread(
                    {self.key: last_id}, count=READ_COUNT, block=READ_BLOCK_MS
                )
            except Exception as err:
                if "no such key" in str(err).lower():
                    last_id = "0-0"
                    continue
                self.connected = False
                raise
            self.connected = True
            loop.ok()
            for _key, entries in reply or ():
                for entry_id, fields in entries:
                    last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    self._deliver(fields.get(b"m") or fields.get("m"))

    def _deliver(self, raw: bytes | str | None) -> None:
        if raw is None:
            return
        try:
            body = orjson.loads(raw)
            if body.get("o") == self.origin:
                return  # this process delivered its own commits already
            if "e" in body:
                events = decode_events(body["e"])
                self.received += len(events)
                self.stream.publish(events)
            elif "s" in body and time.time() - float(body.get("t", 0)) < SIGNAL_MAX_AGE_S:
                signal = decode_signal(dict(body["s"]))
                if signal is not None:
                    self.signals.deliver(signal)
        except Exception:
            logger.exception("undecodable bus entry dropped")

    # ------------------------------------------------------------------ presence
    def _online_key(self, origin: str) -> str:
        return f"{self.prefix}:online:{origin}"

    async def _presence_loop(self, loop: Loop, local_agents: Callable[[], set[int]]) -> None:
        key = self._online_key(self.origin)
        while True:
            agents = local_agents()
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(key)
            if agents:
                pipe.sadd(key, *sorted(agents))
                pipe.expire(key, PRESENCE_TTL_S)
            await pipe.execute()
            loop.ok()
            await asyncio.sleep(PRESENCE_EVERY_S)

    async def online_elsewhere(self, agent_id: int) -> bool | None:
        mine = self._online_key(self.origin).encode()
        try:
            async for key in self.client.scan_iter(match=self._online_key("*"), count=100):
                if key != mine and await self.client.sismember(key, str(agent_id)):
                    return True
        except Exception as err:
            logger.warning("presence of agent %s unknown: %s", agent_id, err)
            return None
        return False

    # ------------------------------------------------------------------ lifecycle
    async def ping(self) -> None:
        await self.client.ping()

    def start(self, supervisor: Supervisor, local_agents: Callable[[], set[int]]) -> None:
        cap = RETRY_CAP_S
        supervisor.spawn("fanout", self._read_loop, backoff_cap_s=cap)
        supervisor.spawn("fanout-publish", self._publish_loop, backoff_cap_s=cap)
        supervisor.spawn(
            "presence", lambda loop: self._presence_loop(loop, local_agents), backoff_cap_s=cap
        )

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.delete(self._online_key(self.origin))
        await self.client.aclose()


async def poll_stream_head(
    loop: Loop,
    stream: InteractionStream,
    head: Callable[[], Any],
    every_s: float = POLL_EVERY_S,
) -> None:
    """Deliver from storage what the bus did not bring: every ``every_s``, if the stored
    head is ahead of the stream and still is after one more wait, the stream reads the gap
    (``InteractionStream.catch_up``)."""
    while True:
        await asyncio.sleep(every_s)
        stored = await head()
        if stored > stream.last_seq:
            seen = stream.last_seq
            await asyncio.sleep(min(every_s, stream.gap_timeout))
            if stream.last_seq <= seen:
                await stream.catch_up(stored)
        loop.ok()
