"""A returning customer goes first to the agent who last served them (and a VIP to their
account owner), for the queue's preference wait, then to the whole queue."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from hub.web import keys
from storage.models import Conversation, Event, Offer
from tests.conftest import AUTH, ClientFactory
from tests.hub.test_dispatch import agent, offers, pending_offer, until

PHONE = "+12025550177"
WAIT_S = 2.5  # the queue's last_agent_wait_s: short, so the fallback is quick to see, long
# enough that a loaded CI machine still routes the returning customer within it


async def inbound(client: TestClient[Any, Any], ext: str, frm: str = PHONE) -> tuple[int, int]:
    """(customer id, conversation id) of an inbound API contact."""
    resp = await client.post(
        "/api/v1/inbound",
        json={"from": frm, "text": "hello again", "external_id": ext},
        headers=AUTH,
    )
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    return int(body["customer_id"]), int(body["conversation_id"])


async def queue_options(client: TestClient[Any, Any], **options: Any) -> None:
    resp = await client.put("/api/v1/queues/support", json={"options": options}, headers=AUTH)
    assert resp.status == 200, await resp.text()


async def offer_reasons(client: TestClient[Any, Any], conv: int) -> list[tuple[int, Any]]:
    """(agent, why) of each offer.created of a conversation, in order."""
    async with client.app[keys.HUB].sessions() as s:
        rows = await s.execute(
            select(Event.agent_id, Event.payload)
            .where(Event.conversation_id == conv, Event.type == "offer.created")
            .order_by(Event.seq)
        )
        return [(int(a), p.get("preferred")) for a, p in rows]


async def served_and_gone(client: TestClient[Any, Any]) -> tuple[int, int, int]:
    """Alice serves the customer (accepts, replies, closes) while Bob comes on shift; from
    then on Bob has been idle longer, so plain routing would pick him. (alice, bob, conv)"""
    hub = client.app[keys.HUB]
    alice = await agent(client, "alice", {})
    bob = await agent(client, "bob", {}, available=False)
    _, conv = await inbound(client, "first")
    offer_id, offered_to = await pending_offer(client, conv)
    assert offered_to == alice
    await hub.work.accept(offer_id, alice)
    await hub.conversations.reply(conv, text="All sorted.", author_id=alice)
    await hub.work.set_state(bob, "available")
    await asyncio.sleep(0.05)
    await hub.conversations.close(conv, agent_id=alice)
    return alice, bob, conv


@pytest.mark.parametrize("returns", ["reopen", "new_conversation"])
async def test_a_returning_customer_is_offered_to_their_last_agent_then_to_the_queue(
    hub_client: ClientFactory, db_url: str, returns: str
) -> None:
    # reopen_window_s=0: the customer's next message starts a new conversation.
    reopen = {} if returns == "reopen" else {"reopen_window_s": 0}
    client = await hub_client(database_url=db_url, offer_timeout_s=0.4, **reopen)
    await queue_options(client, last_agent_wait_s=WAIT_S)
    alice, bob, first = await served_and_gone(client)

    _, conv = await inbound(client, "second")
    assert (conv == first) == (returns == "reopen")
    _, offered_to = await pending_offer(client, conv)
    assert offered_to == alice

    # Alice lets it ring out; Bob gets it when the preference wait is over, not before.
    async def to_bob() -> bool:
        return any(a == bob and st == "pending" for _, a, st in await offers(client, conv))

    await until(to_bob)
    async with client.app[keys.HUB].sessions() as s:
        c = await s.get_one(Conversation, conv)
        bob_offer = await s.scalar(
            select(Offer).where(Offer.conversation_id == conv, Offer.agent_id == bob)
        )
    assert bob_offer is not None
    assert c.waiting_since is not None
    assert (bob_offer.created_at - c.waiting_since).total_seconds() >= WAIT_S - 0.05
    assert [(a, st) for _, a, st in await offers(client, conv)][-2:] == [
        (alice, "expired"),
        (bob, "pending"),
    ]
    assert (await offer_reasons(client, conv))[-2:] == [(alice, "last_agent"), (bob, None)]


async def test_a_last_agent_who_declines_leaves_it_to_the_queue_after_the_wait(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    await queue_options(client, last_agent_wait_s=WAIT_S)
    alice, bob, _ = await served_and_gone(client)
    _, conv = await inbound(client, "second")
    offer_id, offered_to = await pending_offer(client, conv)
    assert offered_to == alice
    await client.app[keys.HUB].work.reject(offer_id, alice)
    await asyncio.sleep(WAIT_S / 2)
    assert [a for _, a, _ in await offers(client, conv)][-1] == alice  # Bob waits his turn
    _, offered_to = await pending_offer(client, conv)
    assert offered_to == bob


async def test_without_a_preference_wait_the_longest_idle_agent_gets_the_returning_customer(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url, last_agent_wait_s=20)
    await queue_options(client, last_agent_wait_s=0)
    _, bob, _ = await served_and_gone(client)
    _, conv = await inbound(client, "second")
    _, offered_to = await pending_offer(client, conv)
    assert offered_to == bob
    assert (await offer_reasons(client, conv))[-1] == (bob, None)


async def test_a_last_agent_outside_the_window_is_not_preferred(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url, last_agent_window_s=0)
    _, bob, _ = await served_and_gone(client)
    _, conv = await inbound(client, "second")
    _, offered_to = await pending_offer(client, conv)
    assert offered_to == bob


async def test_a_vip_is_offered_to_their_account_owner_first(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    hub = client.app[keys.HUB]
    bob = await agent(client, "bob", {}, available=False)
    carol = await agent(client, "carol", {}, available=False)
    customer, conv = await inbound(client, "first")
    await hub.conversations.close(conv, agent_id=None)  # nobody served them
    resp = await client.patch(
        f"/api/v1/customers/{customer}",
        json={"segment": "vip", "attributes": {"account_owner": "carol"}},
        headers=AUTH,
    )
    assert resp.status == 200, await resp.text()
    await hub.work.set_state(bob, "available")  # Bob has been idle longer than Carol
    await asyncio.sleep(0.05)
    await hub.work.set_state(carol, "available")

    _, conv = await inbound(client, "second")
    _, offered_to = await pending_offer(client, conv)
    assert offered_to == carol
    assert (await offer_reasons(client, conv))[-1] == (carol, "account_owner")
