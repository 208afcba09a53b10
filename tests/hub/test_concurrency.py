"""Concurrent ingest: no lost or duplicated rows, one customer per person, a gap-free stream."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from hub.web import keys
from storage.models import Customer, Event, Message
from tests.conftest import AUTH, ClientFactory


async def test_thousand_concurrent_inbound_from_hundred_customers(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    sem = asyncio.Semaphore(100)

    async def send(i: int) -> Any:
        async with sem:
            resp = await client.post(
                "/api/v1/inbound",
                json={
                    "from": f"+1202555{i % 100:04d}",
                    "text": f"message {i}",
                    "external_id": f"c-{i}",
                },
                headers=AUTH,
            )
            assert resp.status == 201, await resp.text()
            return await resp.json()

    results = await asyncio.gather(*(send(i) for i in range(1000)))
    assert len({r["message_id"] for r in results}) == 1000
    assert len({r["customer_id"] for r in results}) == 100

    hub = client.app[keys.HUB]
    async with hub.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Message)) == 1000
        assert await s.scalar(select(func.count()).select_from(Customer)) == 100
        seqs = list((await s.scalars(select(Event.seq).order_by(Event.seq))).all())
    # 1000 message.received + 100 customer.created + 100 conversation.created
    assert seqs == list(range(1, 1201))
    assert hub.stream.last_seq == 1200


async def test_fifty_concurrent_first_contacts_from_one_number_make_one_customer(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)

    async def send(i: int) -> Any:
        resp = await client.post(
            "/api/v1/inbound",
            json={"from": "+44 7700 900999", "text": f"hello {i}", "external_id": f"same-{i}"},
            headers=AUTH,
        )
        assert resp.status == 201, await resp.text()
        return await resp.json()

    results = await asyncio.gather(*(send(i) for i in range(50)))
    assert len({r["customer_id"] for r in results}) == 1
    assert len({r["conversation_id"] for r in results}) == 1
    assert len({r["message_id"] for r in results}) == 50


async def test_concurrent_redeliveries_store_once(hub_client: ClientFactory, db_url: str) -> None:
    client = await hub_client(database_url=db_url)
    body = {"from": "bob@example.org", "text": "once", "external_id": "dup-1"}
    responses = await asyncio.gather(
        *(client.post("/api/v1/inbound", json=body, headers=AUTH) for _ in range(20))
    )
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] * 19 + [201]
    assert len({(await r.json())["message_id"] for r in responses}) == 1
