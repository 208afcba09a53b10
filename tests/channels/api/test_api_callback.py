"""The API channel's outbound webhook: every attempt at one reply carries the same
Idempotency-Key, so the customer's system can store it once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from channels.api.adapter import IDEMPOTENCY_HEADER, create
from config.settings import load_settings
from contract.channel import ChannelContext, OutboundMessage
from contract.errors import ChannelError
from tests.conftest import AUTH, ClientFactory


@dataclass
class Receiver:
    """The customer's system: answers each POST with the next scripted status (then 200)."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.headers.get(IDEMPOTENCY_HEADER), await request.json()))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({"ok": status < 300}, status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/hub-replies", recv.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        recv.url = str(server.make_url("/hub-replies"))
        yield recv


class _NoHub:
    """Outbound never calls the hub; any call here is a bug in the adapter."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"outbound must not call hub.{name}")


def _out(**kw: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "message_id": 4711,
        "conversation_id": 93,
        "channel": "api",
        "to": "+12025550143",
        "sender": None,
        "text": "Your replacement ships tomorrow.",
        "idempotency_key": "hub-msg-4711",
    }
    values.update(kw)
    return OutboundMessage(**values)


async def test_a_retried_post_carries_the_same_idempotency_key(receiver: Receiver) -> None:
    receiver.statuses = [503]
    async with aiohttp.ClientSession() as http:
        settings = load_settings(
            api_token="test-token", api_callback_url=receiver.url, smtp_enabled=False
        )
        adapter = create(ChannelContext(settings=settings, hub=_NoHub(), http=lambda: http))
        with pytest.raises(ChannelError) as info:
            await adapter.send(_out())
        assert info.value.retryable
        receipt = await adapter.send(_out())
    assert (receipt.provider_id, receipt.status) == ("api-out-4711", "delivered")
    (key1, body1), (key2, body2) = receiver.received
    assert key1 == key2 == "hub-msg-4711"
    assert body1 == body2
    assert body1["id"] == "api-out-4711"


async def test_the_hubs_outbox_retries_a_reply_with_the_same_key(
    hub_client: ClientFactory, receiver: Receiver
) -> None:
    receiver.statuses = [503, 429]
    client = await hub_client(api_callback_url=receiver.url)
    async with client.post(
        "/api/v1/inbound",
        json={"from": "+12025550143", "text": "Is my order coming?", "external_id": "crm-1"},
        headers=AUTH,
    ) as resp:
        assert resp.status == 201, await resp.text()
        conversation_id = (await resp.json())["conversation_id"]
    async with client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"text": "Your replacement ships tomorrow."},
        headers=AUTH,
    ) as resp:
        assert resp.status == 201, await resp.text()
        message_id = (await resp.json())["id"]

    async with asyncio.timeout(10):
        while len(receiver.received) < 3:  # noqa: ASYNC110 - the outbox runs in the background
            await asyncio.sleep(0.02)
    keys = [key for key, _ in receiver.received]
    assert keys == [f"hub-msg-{message_id}"] * 3
    assert {body["id"] for _, body in receiver.received} == {f"api-out-{message_id}"}
