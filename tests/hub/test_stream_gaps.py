"""Gaps in the interaction stream are filled from storage while the bus and the stream-head
poll deliver at the same time: every event once, in order, none skipped."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from hub.stream import InteractionStream, StreamEvent


def event(seq: int) -> StreamEvent:
    return StreamEvent(seq=seq, type="message.received", created_at=datetime.now(UTC))


async def test_a_gap_filled_while_the_bus_delivers_it_moves_only_forwards() -> None:
    stored = {n: event(n) for n in range(1, 21)}
    bus_arrives = asyncio.Event()

    async def fetch(first: int, last: int) -> list[StreamEvent]:
        # Storage answers slowly; the bus brings the missing events meanwhile.
        bus_arrives.set()
        await asyncio.sleep(0.05)
        return [stored[n] for n in range(first, last + 1)]

    stream = InteractionStream(fetch, gap_timeout=0.01)
    sub = stream.subscribe(name="test")
    stream.publish([stored[n] for n in (1, 2, 6, 7)])  # 3-5 late: the filler starts
    await bus_arrives.wait()
    stream.publish([stored[n] for n in (3, 4, 5, 8, 9, 10)])  # the bus, during the read
    await asyncio.sleep(0.1)
    got = []
    while not sub.empty():
        got.append(sub.get_nowait().seq)
    assert got == list(range(1, 11))
    assert stream.last_seq == 10

    # The stream-head poll reading storage while the bus delivers too.
    catching = asyncio.create_task(stream.catch_up(20))
    await bus_arrives.wait()
    stream.publish([stored[n] for n in range(11, 16)])
    await catching
    while not sub.empty():
        got.append(sub.get_nowait().seq)
    assert got == list(range(1, 21))


async def test_a_seq_storage_does_not_have_is_skipped_not_waited_for_forever() -> None:
    async def fetch(first: int, last: int) -> list[StreamEvent]:
        return [event(n) for n in range(first, last + 1) if n != 3]

    stream = InteractionStream(fetch, gap_timeout=0.01)
    sub = stream.subscribe(name="test")
    stream.publish([event(1), event(2), event(5)])
    await asyncio.sleep(0.1)
    got = []
    while not sub.empty():
        got.append(sub.get_nowait().seq)
    assert got == [1, 2, 4, 5]
