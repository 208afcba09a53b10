"""A hub process that dies in the middle of an SMS send: the next sender asks Twilio (the
fake, through the real adapter and outbox) and the customer gets the text once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from channels.twilio_sms.testing.fake_api import FakeTwilio
from hub.outbox.delivery import OutboxSender
from hub.web import keys
from storage.models import Message, OutboxItem, utcnow
from tests.channels.twilio_sms.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, fixture_body
from tests.channels.twilio_sms.test_twilio_webhook import only_conversation, post, reply
from tests.conftest import ClientFactory

CUSTOMER = "+447700900123"


async def until(check: Callable[[], Awaitable[bool]], limit_s: float = 10.0) -> None:
    async with asyncio.timeout(limit_s):
        while not await check():  # noqa: ASYNC110 - polling storage, no event to wait on
            await asyncio.sleep(0.05)


async def _hub(
    hub_client: ClientFactory, db_url: str, fake: tuple[FakeTwilio, str]
) -> TestClient[Any, Any]:
    client = await hub_client(
        database_url=db_url,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_base=fake[1],
        public_url=PUBLIC_URL,
        outbox_stale_s=0.5,
    )
    answer = await post(client, fixture_body("inbound__sms_plain"))
    assert answer.status == 200
    return client


async def _crash_mid_send(client: TestClient[Any, Any], message_id: int) -> None:
    """What a dead sender leaves: its row in ``sending``, the message without a sid."""
    hub = client.app[keys.HUB]
    async with hub.sessions() as s, s.begin():
        await s.execute(
            update(OutboxItem)
            .where(OutboxItem.message_id == message_id)
            .values(state="sending", updated_at=utcnow() - timedelta(seconds=5))
        )
        await s.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(provider_id=None, status="pending")
        )


async def _resume(client: TestClient[Any, Any]) -> OutboxSender:
    """Another worker's sender, with the hub's real Twilio adapter, until the row is done."""
    hub = client.app[keys.HUB]
    sender = OutboxSender(hub.settings, hub.tx, dict(hub.adapters))
    assert await sender.release_stale() == 1
    task = asyncio.create_task(sender.run())
    try:

        async def done() -> bool:
            async with hub.sessions() as s:
                return set((await s.scalars(select(OutboxItem.state))).all()) == {"done"}

        await until(done)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return sender


async def test_a_text_twilio_took_before_the_crash_is_not_sent_again(
    hub_client: ClientFactory, db_url: str, fake_twilio: tuple[FakeTwilio, str]
) -> None:
    fake = fake_twilio[0]
    client = await _hub(hub_client, db_url, fake_twilio)
    hub = client.app[keys.HUB]
    conv = await only_conversation(client, CUSTOMER)
    status, msg = await reply(client, conv["id"], "Your refund was issued today.")
    assert status == 201, msg

    async def sent() -> bool:
        async with hub.sessions() as s:
            return (await s.get_one(Message, msg["id"])).provider_id is not None

    await until(sent)
    [taken] = fake.sent
    await hub.supervisor.stop("outbox")
    await _crash_mid_send(client, msg["id"])  # Twilio had it; the hub never recorded the sid

    sender = await _resume(client)

    assert len(fake.sent) == 1  # the customer got one text
    assert sender.reconciled == 1
    assert len(fake.list_requests) == 1
    async with hub.sessions() as s:
        stored = await s.get_one(Message, msg["id"])
        assert stored.provider_id == taken["sid"]
        assert stored.status == "queued"


async def test_a_text_that_never_reached_twilio_is_sent_once_after_the_crash(
    hub_client: ClientFactory, db_url: str, fake_twilio: tuple[FakeTwilio, str]
) -> None:
    fake = fake_twilio[0]
    client = await _hub(hub_client, db_url, fake_twilio)
    hub = client.app[keys.HUB]
    await hub.supervisor.stop("outbox")  # the sender dies before its POST leaves
    conv = await only_conversation(client, CUSTOMER)
    status, msg = await reply(client, conv["id"], "Your refund was issued today.")
    assert status == 201, msg
    await _crash_mid_send(client, msg["id"])

    sender = await _resume(client)

    [sent] = fake.sent
    assert sent["Body"] == "Your refund was issued today."
    assert sender.reconciled == 0
    assert len(fake.list_requests) == 1  # asked first, Twilio had nothing
    async with hub.sessions() as s:
        assert (await s.get_one(Message, msg["id"])).provider_id == sent["sid"]
