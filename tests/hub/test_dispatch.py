"""Routing through the hub: offers, accept, reject, timeout, restart, offline agents."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from hub.web import keys
from hub.work.dispatcher import ROUTER_LEADER
from storage.models import Conversation, Offer
from tests.conftest import AUTH, ClientFactory


async def agent(
    client: TestClient[Any, Any], name: str, skills: dict[str, float], *, available: bool = True
) -> int:
    resp = await client.post(
        "/api/v1/agents",
        json={
            "username": name,
            "password": "password-123",
            "skills": [{"name": k, "proficiency": v} for k, v in skills.items()],
        },
        headers=AUTH,
    )
    assert resp.status == 201, await resp.text()
    agent_id = int((await resp.json())["id"])
    if available:
        await client.app[keys.HUB].work.set_state(agent_id, "available")
    return agent_id


async def contact(client: TestClient[Any, Any], frm: str, ext: str) -> int:
    resp = await client.post(
        "/api/v1/inbound", json={"from": frm, "text": "help", "external_id": ext}, headers=AUTH
    )
    assert resp.status == 201
    return int((await resp.json())["conversation_id"])


async def offers(client: TestClient[Any, Any], conv: int) -> list[tuple[int, int, str]]:
    async with client.app[keys.HUB].sessions() as s:
        rows = await s.execute(
            select(Offer.id, Offer.agent_id, Offer.state)
            .where(Offer.conversation_id == conv)
            .order_by(Offer.id)
        )
        return [(r.id, r.agent_id, r.state) for r in rows]


async def until(predicate: Any) -> Any:
    """Poll ``predicate`` until it returns something truthy (at most 5 s)."""
    async with asyncio.timeout(5):
        while not (value := await predicate()):  # noqa: ASYNC110 - polls storage
            await asyncio.sleep(0.02)
    return value


async def pending_offer(client: TestClient[Any, Any], conv: int) -> tuple[int, int]:
    async def check() -> tuple[int, int] | None:
        for offer_id, agent_id, state in await offers(client, conv):
            if state == "pending":
                return offer_id, agent_id
        return None

    found: tuple[int, int] = await until(check)
    return found


async def put_queue(client: TestClient[Any, Any], name: str, steps: list[dict[str, Any]]) -> None:
    resp = await client.put(f"/api/v1/queues/{name}", json={"steps": steps}, headers=AUTH)
    assert resp.status == 200, await resp.text()


async def test_new_contact_is_offered_to_the_longest_idle_available_agent_and_accepted(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    first = await agent(client, "first", {})
    await asyncio.sleep(0.01)
    await agent(client, "second", {})
    await agent(client, "away", {}, available=False)
    conv = await contact(client, "+12025550101", "a1")
    offer_id, offered_to = await pending_offer(client, conv)
    assert offered_to == first
    await hub.work.accept(offer_id, first)
    async with hub.sessions() as s:
        c = await s.get_one(Conversation, conv)
    assert (c.state, c.assignee_id) == ("assigned", first)


async def test_skill_requirement_picks_the_skilled_agent(hub_client: ClientFactory) -> None:
    client = await hub_client()
    await agent(client, "generalist", {"billing": 1})
    expert = await agent(client, "expert", {"billing": 5})
    await put_queue(client, "support", [{"expression": "billing >= 3", "timeout_s": 30}, {}])
    conv = await contact(client, "+12025550102", "b1")
    _, offered_to = await pending_offer(client, conv)
    assert offered_to == expert


async def test_rejected_offer_goes_to_someone_else_and_never_back(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    a = await agent(client, "a", {})
    b = await agent(client, "b", {})
    conv = await contact(client, "+12025550103", "c1")
    offer_id, first = await pending_offer(client, conv)
    await hub.work.reject(offer_id, first)

    async def second_offer() -> tuple[int, int] | None:
        rows = [r for r in await offers(client, conv) if r[2] == "pending"]
        return (rows[0][0], rows[0][1]) if rows else None

    _, second = await until(second_offer)
    assert {first, second} == {a, b}
    assert second != first


async def test_offer_timeout_reroutes_and_sets_the_agent_not_responding(
    hub_client: ClientFactory,
) -> None:
    # Long enough that a poll on a loaded machine (CI) still sees each offer pending before
    # it expires; 0.3 s let both offers expire between two polls there.
    client = await hub_client(offer_timeout_s=1.5)
    hub = client.app[keys.HUB]
    slow = await agent(client, "slow", {})
    await asyncio.sleep(0.01)
    fast = await agent(client, "fast", {})
    conv = await contact(client, "+12025550104", "d1")
    _, first = await pending_offer(client, conv)
    assert first == slow

    async def rerouted() -> bool:
        rows = await offers(client, conv)
        return any(a == fast and st == "pending" for _, a, st in rows)

    await until(rerouted)
    states = [st for _, a, st in await offers(client, conv) if a == slow]
    assert states == ["expired"]
    agents = await (await client.get("/api/v1/agents", headers=AUTH)).json()
    slow_state = next(x for x in agents["items"] if x["id"] == slow)
    assert (slow_state["state"], slow_state["state_reason"]) == ("away", "missed offer")
    assert hub is not None


async def test_no_free_agent_means_the_contact_waits_and_is_offered_when_one_frees_up(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    only = await agent(client, "only", {}, available=False)
    conv = await contact(client, "+12025550105", "e1")
    await asyncio.sleep(0.2)
    assert await offers(client, conv) == []
    await hub.work.set_state(only, "available")
    _, offered_to = await pending_offer(client, conv)
    assert offered_to == only


async def test_agent_going_offline_withdraws_the_offer_and_reroutes(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    a = await agent(client, "a", {})
    await asyncio.sleep(0.01)
    b = await agent(client, "b", {})
    conv = await contact(client, "+12025550106", "f1")
    _, first = await pending_offer(client, conv)
    assert first == a
    await hub.work.set_state(a, "offline", "logged out")

    async def to_b() -> bool:
        return any(ag == b and st == "pending" for _, ag, st in await offers(client, conv))

    await until(to_b)
    assert [st for _, ag, st in await offers(client, conv) if ag == a] == ["rescinded"]


async def test_restart_keeps_waiting_work_and_reroutes_offers_in_flight(
    hub_client: ClientFactory, sqlite_url: str
) -> None:
    client = await hub_client(database_url=sqlite_url)
    a = await agent(client, "a", {})
    conv = await contact(client, "+12025550107", "g1")
    waiting = await contact(client, "+12025550108", "g2")  # a is busy? no: capacity 3
    await pending_offer(client, conv)
    await pending_offer(client, waiting)
    await client.close()

    restarted = await hub_client(database_url=sqlite_url)
    dispatcher = restarted.app[ROUTER_LEADER].dispatcher
    assert dispatcher is not None
    assert {t.id for t in dispatcher.router.tasks()} == {conv, waiting}

    async def reoffered() -> bool:
        rows = await offers(restarted, conv)
        return [st for _, _, st in rows] == ["rescinded", "pending"]

    await until(reoffered)
    assert [ag for _, ag, st in await offers(restarted, conv) if st == "pending"] == [a]


async def test_an_agents_message_pool_limits_threads_across_channels(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    bad = {"username": "neg", "password": "password-123", "capacity": {"api": -1}}
    resp = await client.post("/api/v1/agents", json=bad, headers=AUTH)
    assert resp.status == 400, await resp.text()
    assert "capacity" in (await resp.json())["detail"]
    listed = await (await client.get("/api/v1/agents", headers=AUTH)).json()
    assert "neg" not in {a["username"] for a in listed["items"]}
    body = {"username": "pooled", "password": "password-123", "capacity": {"api": 5, "message": 2}}
    resp = await client.post("/api/v1/agents", json=body, headers=AUTH)
    assert resp.status == 201, await resp.text()
    pooled = int((await resp.json())["id"])
    assert (await resp.json())["capacity"] == {"api": 5, "message": 2}
    await client.app[keys.HUB].work.set_state(pooled, "available")
    convs = [await contact(client, f"+1202555020{i}", f"p{i}") for i in range(3)]
    for conv in convs[:2]:
        assert (await pending_offer(client, conv))[1] == pooled
    await asyncio.sleep(0.2)
    assert await offers(client, convs[2]) == []  # the pool of two is full
