"""Outbound replies go through the outbox: retried with backoff, dead-lettered, visible."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from hub.outbox.delivery import backoff
from server.lifecycle import OUTBOX
from tests.conftest import AUTH, ClientFactory


class Callback:
    """A stand-in for an integrator's HTTP endpoint that answers a scripted series of statuses."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_post("/hook", self.hook)

    async def hook(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status)


async def _conversation(client: Any) -> int:
    resp = await client.post(
        "/api/v1/inbound",
        json={"from": "+12025550100", "text": "help", "external_id": "x1"},
        headers=AUTH,
    )
    return int((await resp.json())["conversation_id"])


async def _wait_status(client: Any, conv: int, message_id: int, wanted: str) -> dict[str, Any]:
    for _ in range(200):
        page = await (
            await client.get(f"/api/v1/conversations/{conv}/messages", headers=AUTH)
        ).json()
        msg = next(m for m in page["items"] if m["id"] == message_id)
        if msg["status"] == wanted:
            return dict(msg)
        await asyncio.sleep(0.02)
    raise AssertionError(f"message {message_id} never reached {wanted}: {msg}")


async def test_reply_is_retried_after_provider_errors_then_delivered(
    hub_client: ClientFactory,
) -> None:
    cb = Callback([500, 503])
    async with TestServer(cb.app) as server:
        client = await hub_client(api_callback_url=str(server.make_url("/hook")))
        conv = await _conversation(client)
        resp = await client.post(
            f"/api/v1/conversations/{conv}/messages", json={"text": "on it"}, headers=AUTH
        )
        assert resp.status == 201
        msg = await resp.json()
        assert msg["direction"] == "out"
        assert msg["status"] == "pending"
        done = await _wait_status(client, conv, msg["id"], "delivered")
        assert done["provider_id"] == f"api-out-{msg['id']}"
    assert [r["text"] for r in cb.received] == ["on it"] * 3


async def test_refused_send_is_dead_lettered_and_visible(hub_client: ClientFactory) -> None:
    cb = Callback([400])
    async with TestServer(cb.app) as server:
        client = await hub_client(api_callback_url=str(server.make_url("/hook")))
        conv = await _conversation(client)
        msg = await (
            await client.post(
                f"/api/v1/conversations/{conv}/messages", json={"text": "x"}, headers=AUTH
            )
        ).json()
        failed = await _wait_status(client, conv, msg["id"], "failed")
        assert "refused" in failed["error_message"]
        dead = await (await client.get("/api/v1/outbox?state=dead", headers=AUTH)).json()
        assert [i["message_id"] for i in dead["items"]] == [msg["id"]]
        assert dead["items"][0]["attempts"] == 1


async def test_unreachable_provider_delays_but_never_drops(hub_client: ClientFactory) -> None:
    client = await hub_client(
        api_callback_url="http://127.0.0.1:9/unreachable", outbox_max_attempts=3
    )
    conv = await _conversation(client)
    msg = await (
        await client.post(
            f"/api/v1/conversations/{conv}/messages", json={"text": "y"}, headers=AUTH
        )
    ).json()
    failed = await _wait_status(client, conv, msg["id"], "failed")
    assert "unreachable" in failed["error_message"]
    dead = await (await client.get("/api/v1/outbox?state=dead", headers=AUTH)).json()
    assert dead["items"][0]["attempts"] == 3
    await client.app[OUTBOX].drain()


async def test_internal_note_is_not_sent(api: Any) -> None:
    conv = await _conversation(api)
    note = await (
        await api.post(
            f"/api/v1/conversations/{conv}/messages",
            json={"text": "@agent2 can you check the refund?", "note": True},
            headers=AUTH,
        )
    ).json()
    assert note["direction"] == "note"
    assert note["metadata"]["mentions"] == ["agent2"]
    pending = await (await api.get("/api/v1/outbox?state=pending", headers=AUTH)).json()
    assert pending["items"] == []


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    import random

    rng = random.Random(1)
    delays = [backoff(n, base=1.0, cap=30.0, rng=rng) for n in range(1, 8)]
    for n, d in enumerate(delays, start=1):
        assert 0.5 * min(30.0, 2 ** (n - 1)) <= d <= min(30.0, 2 ** (n - 1))


async def test_status_report_that_beats_the_send_receipt_is_applied_after_it(
    hub_client: ClientFactory,
) -> None:
    from contract.channel import StatusUpdate
    from hub.web import keys

    release = asyncio.Event()

    async def slow_hook(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", slow_hook)
    async with TestServer(app) as server:
        client = await hub_client(api_callback_url=str(server.make_url("/hook")))
        hub = client.app[keys.HUB]
        conv = await _conversation(client)
        msg = await (
            await client.post(
                f"/api/v1/conversations/{conv}/messages", json={"text": "z"}, headers=AUTH
            )
        ).json()
        # The provider reports "read" before its answer to our send arrived.
        early = StatusUpdate(channel="api", provider_id=f"api-out-{msg['id']}", status="read")
        assert await hub.update_status(early) is False
        release.set()
        done = await _wait_status(client, conv, msg["id"], "read")
        assert done["provider_id"] == f"api-out-{msg['id']}"
