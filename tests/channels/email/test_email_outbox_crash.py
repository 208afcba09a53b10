"""A hub process that dies after the relay took a reply but before recording it: the reply
goes out again (SMTP cannot be asked) with the same Message-ID, which receivers dedupe on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from channels.email.testing.sink import MailSink, start_sink
from hub.outbox.delivery import OutboxSender
from hub.web import keys
from storage.models import Message, OutboxItem, utcnow
from tests.channels.email.test_email_smtp import (
    BILLING,
    agent_reply,
    deliver,
    email_hub,
    only_conversation,
    sent,
)
from tests.conftest import ClientFactory


@pytest.fixture
async def sink() -> AsyncIterator[MailSink]:
    running = await start_sink()
    yield running
    await running.stop()


async def test_a_reply_sent_again_after_a_crash_keeps_its_message_id(
    hub_client: ClientFactory, db_url: str, sink: MailSink
) -> None:
    client, port = await email_hub(hub_client, sink, database_url=db_url, outbox_stale_s=0.5)
    hub = client.app[keys.HUB]
    await deliver(port, "quoted_printable.eml", mail_from="j.weber@example.de", rcpts=(BILLING,))
    conv = await only_conversation(client, "j.weber@example.de")
    msg = await agent_reply(client, conv["id"], "We corrected the invoice.")
    first = (await sent(client, sink)).message["Message-ID"]

    # The relay said 250; the process died before the hub recorded it.
    await hub.supervisor.stop("outbox")
    async with hub.sessions() as s, s.begin():
        await s.execute(
            update(OutboxItem)
            .where(OutboxItem.message_id == msg["id"])
            .values(state="sending", updated_at=utcnow() - timedelta(seconds=5))
        )
        await s.execute(update(Message).where(Message.id == msg["id"]).values(provider_id=None))
    sender = OutboxSender(hub.settings, hub.tx, dict(hub.adapters))
    assert await sender.release_stale() == 1
    task = asyncio.create_task(sender.run())
    try:
        again = await sink.next()
        async with asyncio.timeout(10):
            while True:
                async with hub.sessions() as s:
                    row = await s.scalar(
                        select(OutboxItem).where(OutboxItem.message_id == msg["id"])
                    )
                    if row is not None and row.state == "done":
                        break
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert again.message["Message-ID"] == first
    assert len(sink.received) == 2
    async with hub.sessions() as s:
        assert (await s.get_one(Message, msg["id"])).provider_id == first.strip("<>")
