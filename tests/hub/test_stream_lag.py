"""A stream subscriber that falls too far behind is told so, counted, and rebuilds from storage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from contract.channel import InboundMessage
from hub.stream import InteractionStream, StreamEvent, StreamLagged
from hub.web import keys
from server.app import create_app
from storage.models import Offer
from tests.agent_console.test_gateway import PASSWORD, Console, login
from tests.conftest import make_settings

BURST = 40  # contacts committed together: over 40 events in one publish


def event(seq: int) -> StreamEvent:
    return StreamEvent(seq=seq, type="conversation.created", created_at=datetime.now(UTC))


async def no_fetch(first: int, last: int) -> list[StreamEvent]:
    return []


async def test_a_subscriber_past_its_limit_is_told_and_resumes_after_the_head() -> None:
    stream = InteractionStream(no_fetch, subscriber_limit=3)
    lags: list[str] = []
    slow = stream.subscribe(name="slow", on_lag=lambda: lags.append("slow"))
    roomy = stream.subscribe(maxsize=100, name="roomy")
    stream.publish([event(seq) for seq in range(1, 6)])
    with pytest.raises(StreamLagged):
        await slow.get()
    with pytest.raises(StreamLagged):
        slow.get_nowait()
    assert lags == ["slow"]
    assert [(await roomy.get()).seq for _ in range(5)] == [1, 2, 3, 4, 5]  # others unaffected
    slow.resume()
    stream.publish([event(6)])
    assert (await asyncio.wait_for(slow.get(), 1)).seq == 6
    assert slow.empty()


def sms(sender: str, pid: str, text: str) -> InboundMessage:
    return InboundMessage(
        channel="sms",
        sender_kind="phone",
        sender=sender,
        recipient="+14155550100",
        provider_id=pid,
        text=text,
    )


async def test_after_a_lag_the_console_resyncs_and_the_router_rebuilds_and_routes(
    aiohttp_client: Any, sqlite_url: str
) -> None:
    app = create_app(make_settings(sqlite_url, offer_timeout_s=60))
    app[keys.HUB].stream.subscriber_limit = 30
    client = await aiohttp_client(app)
    hub = app[keys.HUB]
    ann = await hub.users.create(username="ann", password=PASSWORD)
    talking = (await hub.ingest(sms("+12025550100", "t0", "hello"))).conversation_id
    assert talking is not None
    offer_id = await hub.work.create_offer(talking, ann)
    assert offer_id is not None
    await hub.work.accept(offer_id, ann)
    console, _, _ = await Console.connect(client, await login(client, "ann"))
    assert (await console.cmd("set_state", state="away", reason="busy"))["type"] == "ack"

    # One transaction commits the whole burst (the customer ann talks to writes 39 times,
    # then someone new writes): the console feed and the router get more events at once
    # than they may have waiting, and the newcomer's arrival is among what they lose.
    messages = [sms("+12025550100", f"t{n}", f"more {n}") for n in range(1, BURST)]
    burst = await asyncio.gather(
        *(hub.ingest(m) for m in [*messages, sms("+12025550111", "new", "I am new")])
    )
    newcomer = burst[-1].conversation_id
    assert newcomer != talking
    frames: list[dict[str, Any]] = []
    while not frames or frames[-1]["type"] != "resync_required":
        frames.append(await console.next_frame())
    snapshot, resync = frames[-2], frames[-1]
    assert snapshot["type"] == "snapshot"
    assert resync["data"]["head"] == snapshot["data"]["head"] >= hub.stream.last_seq
    assert resync["data"]["reason"]
    assert [c["id"] for c in snapshot["data"]["conversations"]] == [talking]
    console.last_seq = resync["data"]["head"]
    metrics = await (await client.get("/metrics")).text()
    assert 'hub_stream_lagged_total{subscriber="console"} 1.0' in metrics
    assert 'hub_stream_lagged_total{subscriber="router"} 1.0' in metrics

    # The router, rebuilt from storage, knows the newcomer it never saw arrive, and routes a
    # conversation that comes after the lag; the console's view (the snapshot, then events)
    # agrees with storage.
    offers = {o["offer_id"] for o in snapshot["data"]["offers"]}
    seen = len(console.events)
    assert (await console.cmd("set_state", state="available"))["type"] == "ack"
    late = (await hub.ingest(sms("+12025550122", "late", "after the lag"))).conversation_id

    async def stored_offers() -> set[int]:
        async with hub.sessions() as s:
            rows = await s.scalars(
                select(Offer.id).where(Offer.agent_id == ann, Offer.state == "pending")
            )
            return set(rows.all())

    offered: dict[int, int] = {}

    def take(data: dict[str, Any]) -> None:
        if data["agent_id"] != ann:
            return
        if data["type"] == "offer.created":
            offers.add(data["payload"]["offer_id"])
            offered[data["payload"]["offer_id"]] = data["conversation_id"]
        elif data["type"] in ("offer.expired", "offer.rescinded", "offer.rejected"):
            offers.discard(data["payload"]["offer_id"])

    # The router may offer the newcomer before the state change is acknowledged: the frames
    # read while waiting for the ack count too.
    for data in console.events[seen:]:
        take(data)
    async with asyncio.timeout(10):
        while len(offered) < 2 or offers != await stored_offers():
            f = await console.next_frame()
            if f["type"] == "event":
                take(f["data"])
    assert set(offered.values()) == {newcomer, late}
    assert len(offered) == 2
    assert offers == set(offered)
    await console.close()
