"""/metrics costs one storage read per refresh interval however hard it is scraped."""

from __future__ import annotations

import asyncio

from hub.web import middleware as hubweb
from tests.conftest import AUTH, ClientFactory


async def test_a_scrape_storm_reads_storage_once_per_interval(hub_client: ClientFactory) -> None:
    # Long enough that a loaded machine (CI) cannot let it pass before the second scrape.
    client = await hub_client(metrics_refresh_s=3.0)
    refresh = client.app[hubweb.METRICS_REFRESH]
    answers = await asyncio.gather(*(client.get("/metrics") for _ in range(50)))
    assert [r.status for r in answers] == [200] * 50
    assert refresh.refreshes == 1
    # A new conversation shows once the interval has passed, not before.
    await client.post(
        "/api/v1/inbound",
        json={"from": "+12025550143", "text": "x", "external_id": "m1"},
        headers=AUTH,
    )
    text = await (await client.get("/metrics")).text()
    assert 'hub_conversations{queue="support",state="queued"}' not in text
    await asyncio.sleep(3.1)
    text = await (await client.get("/metrics")).text()
    assert 'hub_conversations{queue="support",state="queued"} 1.0' in text
    assert refresh.refreshes == 2


async def test_metrics_token_when_set(hub_client: ClientFactory) -> None:
    client = await hub_client(metrics_token="scrape-secret")
    assert (await client.get("/metrics")).status == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    assert (await client.get("/metrics", headers=AUTH)).status == 401  # not the admin token
    ok = await client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert ok.status == 200
    assert "hub_http_requests_total" in await ok.text()
