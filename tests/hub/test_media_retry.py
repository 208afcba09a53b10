"""Announced media fetched in the background: backoff, giving up, an agent's retry (SQLite and
PostgreSQL), through a Twilio MMS against the fake Twilio API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from channels.twilio_sms.testing.fake_api import FakeTwilio, start_fake_twilio
from channels.twilio_sms.testing.simulator import signed_inbound
from hub.ingest.media import next_delay
from tests.conftest import AUTH, ClientFactory

ACCOUNT_SID = "AC" + "7" * 32
AUTH_TOKEN = "media-retry-auth-token"
PUBLIC_URL = "http://127.0.0.1:8080"
Client = TestClient[Any, Any]


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeTwilio, str]]:
    fake, base = await start_fake_twilio(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, callbacks=False
    )
    yield fake, base
    await fake.close()


async def hub(hub_client: ClientFactory, db_url: str, base: str, delays: list[float]) -> Client:
    return await hub_client(
        database_url=db_url,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_base=base,
        public_url=PUBLIC_URL,
        media_retry_delays_s=delays,
    )


async def mms(client: Client, media: list[tuple[str, str]], sid: str = "MM" + "1" * 32) -> None:
    body, headers = signed_inbound(
        PUBLIC_URL,
        AUTH_TOKEN,
        ACCOUNT_SID,
        from_="+12025550143",
        to="+14155550100",
        body="the receipt",
        message_sid=sid,
        media=media,
    )
    async with client.post("/webhooks/twilio/messaging", data=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()


async def attachments(client: Client) -> list[dict[str, Any]]:
    async with client.get("/api/v1/customers?phone=%2B12025550143", headers=AUTH) as resp:
        [customer] = (await resp.json())["items"]
    async with client.get(f"/api/v1/customers/{customer['id']}/history", headers=AUTH) as resp:
        [message] = (await resp.json())["items"]
    return list(message["attachments"])


async def until(client: Client, state: str, timeout_s: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            [att] = await attachments(client)
            if att["state"] == state:
                return att
            await asyncio.sleep(0.02)


async def retry(client: Client, attachment_id: int) -> tuple[int, Any]:
    async with client.post(f"/api/v1/attachments/{attachment_id}/retry", headers=AUTH) as resp:
        return resp.status, await resp.json()


def asked(twilio: FakeTwilio, sid: str) -> int:
    """How often the hub asked Twilio's Media API for this media."""
    return len([p for p, _ in twilio.media_requests if "/Media/" in p and p.endswith(sid)])


async def updates(client: Client) -> list[dict[str, Any]]:
    async with client.get("/api/v1/events?limit=1000", headers=AUTH) as resp:
        events = (await resp.json())["items"]
    return [e["payload"] for e in events if e["type"] == "message.attachment_updated"]


def test_backoff_follows_the_configured_delays_and_ends_after_the_last() -> None:
    delays = (2.0, 10.0, 60.0, 300.0, 1800.0)
    assert [next_delay(n, delays) for n in range(1, 7)] == [2.0, 10.0, 60.0, 300.0, 1800.0, None]
    assert next_delay(0, delays) is None


async def test_media_that_never_arrives_fails_after_the_last_attempt_and_an_agent_retries_it(
    hub_client: ClientFactory, db_url: str, fake: tuple[FakeTwilio, str]
) -> None:
    twilio, base = fake
    url = twilio.add_media(b"%PDF-1.7 receipt", "application/pdf", base_url=base)
    sid = url.rsplit("/", 1)[-1]
    twilio.fail_media(sid, times=None, status=503)
    client = await hub(hub_client, db_url, base, [0.05, 0.1, 0.15])

    started = asyncio.get_running_loop().time()
    await mms(client, [(url, "application/pdf")])
    [att] = await attachments(client)
    assert (att["state"], att["content_type"], att["url"]) == ("pending", "application/pdf", None)
    failed = await until(client, "failed")
    took = asyncio.get_running_loop().time() - started
    assert failed["error"] == "HTTP 503"
    assert failed["url"] is None
    # The webhook's try and one after each of the three delays; no more.
    assert asked(twilio, sid) == 4
    assert took >= 0.3
    await asyncio.sleep(0.3)
    assert asked(twilio, sid) == 4
    assert [(u["attachment_id"], u["state"]) for u in await updates(client)] == [
        (att["id"], "failed")
    ]

    # Twilio's store is back; the agent asks again.
    twilio.media_failures.clear()
    status, out = await retry(client, att["id"])
    assert (status, out["state"], out["url"]) == (200, "pending", None)
    fetched = await until(client, "fetched")
    async with client.get(fetched["url"], headers=AUTH) as resp:
        assert await resp.read() == b"%PDF-1.7 receipt"
    assert [u["state"] for u in await updates(client)] == ["failed", "pending", "fetched"]
    # Only a failed attachment can be retried; an unknown one is a 404.
    assert (await retry(client, att["id"]))[0] == 409
    assert (await retry(client, att["id"] + 1000))[0] == 404


async def test_refused_media_url_is_failed_at_once_and_never_requested(
    hub_client: ClientFactory, db_url: str, fake: tuple[FakeTwilio, str]
) -> None:
    twilio, base = fake
    client = await hub(hub_client, db_url, base, [0.05])
    await mms(client, [("https://169.254.169.254/latest/meta-data/", "image/png")])
    [att] = await attachments(client)
    assert (att["state"], att["content_type"], att["url"]) == ("failed", "image/png", None)
    assert att["error"].startswith("refused: ")
    status, out = await retry(client, att["id"])
    assert status == 409
    assert "cannot be fetched again" in out["detail"]
    assert twilio.media_requests == []
    assert "169.254" not in str(await updates(client))


async def test_media_answered_404_not_yet_is_retried_then_too_large_fails(
    hub_client: ClientFactory, db_url: str, fake: tuple[FakeTwilio, str]
) -> None:
    twilio, base = fake
    # Announced before Twilio's media store has it (404), then larger than the limit.
    url = twilio.add_media(b"x" * 3000, "video/mp4", base_url=base)
    sid = url.rsplit("/", 1)[-1]
    twilio.fail_media(sid, times=1, status=404)
    client = await hub_client(
        database_url=db_url,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_base=base,
        public_url=PUBLIC_URL,
        media_retry_delays_s=[0.05, 0.05],
        attachment_max_bytes=1000,
    )
    await mms(client, [(url, "video/mp4")])
    assert (await attachments(client))[0]["state"] == "pending"
    failed = await until(client, "failed")
    assert failed["error"] == "larger than the attachment limit (3000 bytes)"
    assert asked(twilio, sid) == 2
