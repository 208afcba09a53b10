"""Ingest's fast path for contacts continuing open conversations: same outcome, fewer steps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, update

from contract.channel import Attachment, InboundMessage, IngestResult
from hub.customers.identity import normalize
from hub.ingest.fast import continue_open
from hub.services import Hub
from hub.stream import StreamEvent
from hub.uow import UnitOfWork, events_between
from hub.web import keys
from storage.models import Conversation, Customer, Event, Message
from tests.conftest import ClientFactory


def sms(sender: str, pid: str, text: str = "hi", **kw: Any) -> InboundMessage:
    kw.setdefault("recipient", "+14155550100")
    return InboundMessage(
        channel="sms", sender_kind="phone", sender=sender, provider_id=pid, text=text, **kw
    )


async def open_hub(hub_client: ClientFactory, db_url: str) -> Hub:
    client = await hub_client(database_url=db_url)
    hub: Hub = client.app[keys.HUB]
    return hub


async def try_fast(hub: Hub, *messages: InboundMessage) -> list[IngestResult] | None:
    """The hub's fast path on one batch (plain sqlite3 on SQLite, Core on PostgreSQL)."""
    contacts = [(m, normalize(m.sender_kind, m.sender, default_region="US")) for m in messages]
    if hub.ingestor.inline is not None:
        return await hub.ingestor.inline.run(contacts)

    async def work(uow: UnitOfWork) -> list[IngestResult] | None:
        return await continue_open(uow, contacts)

    return await hub.tx.run(work)


async def counts(hub: Hub) -> tuple[int, int, int]:
    async with hub.sessions() as s:
        return (
            await s.scalar(select(func.count()).select_from(Message)) or 0,
            await s.scalar(select(func.count()).select_from(Conversation)) or 0,
            await s.scalar(select(func.count()).select_from(Event)) or 0,
        )


async def stored(hub: Hub, result: IngestResult, published: StreamEvent) -> dict[str, Any]:
    """The message row, its conversation's timestamps and its event, without ids."""
    async with hub.sessions() as s:
        msg = await s.get_one(Message, result.message_id)
        conv = await s.get_one(Conversation, result.conversation_id)
        event = (await events_between(s, published.seq, published.seq))[0]
        # the stored text of the columns, as another reader of the database sees it
        as_stored = text(
            "SELECT m.created_at, m.metadata, c.last_activity_at, e.created_at, e.payload"
            " FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id"
            " JOIN events AS e ON e.seq = :seq WHERE m.id = :id"
        )
        stored_text = (await s.execute(as_stored, {"id": msg.id, "seq": event.seq})).one()
    assert event == published
    assert event.type == "message.received"
    assert event.payload["message_id"] == msg.id
    assert conv.last_inbound_at == msg.created_at
    assert conv.last_activity_at == msg.created_at
    columns = ("channel", "direction", "kind", "author_id", "text", "provider_id", "status")
    return {
        "message": {c: getattr(msg, c) for c in columns}
        | {"meta": msg.meta, "occurred_at": msg.occurred_at, "edited_at": msg.edited_at},
        # the same shapes of stored text (timestamps differ in value only)
        "stored": [(type(v), len(str(v))) for v in stored_text],
        "conversation": {"state": conv.state, "participants": conv.participants},
        "event": {
            "queue": event.queue,
            "channel": event.channel,
            "customer_id": event.customer_id == msg.customer_id == conv.customer_id,
            "conversation_id": event.conversation_id == conv.id,
            "payload": {k: v for k, v in event.payload.items() if k != "message_id"},
        },
    }


async def test_continuing_contacts_store_what_the_general_path_stores(
    hub_client: ClientFactory, db_url: str
) -> None:
    hub = await open_hub(hub_client, db_url)
    when = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    outcomes: dict[bool, tuple[IngestResult, dict[str, Any]]] = {}
    for fast, sender in ((True, "+12025550101"), (False, "+12025550102")):
        hub.ingestor.fast_path = fast
        first = await hub.ingest(sms(sender, f"first-{fast}", display_name="Ann"))
        before = await counts(hub)
        live = hub.stream.subscribe()
        again = await hub.ingest(
            sms(
                sender,
                f"next-{fast}",
                "second message",
                display_name="Ann",
                subject="Re: order",
                occurred_at=when,
                metadata={"num_media": "0"},
            )
        )
        assert await counts(hub) == (before[0] + 1, before[1], before[2] + 1)
        assert again.conversation_id == first.conversation_id
        assert again.customer_id == first.customer_id
        published = await asyncio.wait_for(live.get(), 5)
        hub.stream.unsubscribe(live)
        outcomes[fast] = (again, await stored(hub, again, published))
    (fast_result, fast_row), (general_result, general_row) = outcomes[True], outcomes[False]
    assert (fast_result.duplicate, fast_result.opened) == (False, False)
    assert (general_result.duplicate, general_result.opened) == (False, False)
    fast_row["message"]["provider_id"] = general_row["message"]["provider_id"]
    fast_row["event"]["payload"]["endpoint"] = general_row["event"]["payload"]["endpoint"]
    assert fast_row == general_row
    assert fast_row["message"]["meta"] == {"num_media": "0", "subject": "Re: order"}


async def test_a_batch_stores_each_provider_id_once_and_reports_redeliveries(
    hub_client: ClientFactory, db_url: str
) -> None:
    hub = await open_hub(hub_client, db_url)
    old = await hub.ingest(sms("+12025550103", "old"))
    other = await hub.ingest(sms("+12025550104", "other"))
    before = await counts(hub)
    results = await try_fast(
        hub,
        sms("+12025550103", "new-1"),
        sms("+12025550104", "new-2"),
        sms("+12025550103", "new-1"),  # redelivered within the batch
        sms("+12025550103", "old"),  # redelivered after it was stored
    )
    assert results is not None
    new1, new2, again, old_again = results
    assert await counts(hub) == (before[0] + 2, before[1], before[2] + 2)
    assert (new1.conversation_id, new1.duplicate) == (old.conversation_id, False)
    assert (new2.conversation_id, new2.duplicate) == (other.conversation_id, False)
    assert again == IngestResult(
        customer_id=new1.customer_id,
        conversation_id=new1.conversation_id,
        message_id=new1.message_id,
        duplicate=True,
    )
    assert old_again.message_id == old.message_id
    assert old_again.duplicate
    async with hub.sessions() as s:
        payloads = [
            e.payload
            for e in await s.scalars(select(Event).where(Event.seq > before[2]).order_by(Event.seq))
        ]
    assert [p["message_id"] for p in payloads] == [new1.message_id, new2.message_id]


async def test_anything_else_leaves_the_batch_to_the_general_path_untouched(
    hub_client: ClientFactory, db_url: str
) -> None:
    hub = await open_hub(hub_client, db_url)
    ann = await hub.ingest(sms("+12025550105", "a1"))
    await hub.ingest(sms("+12025550106", "b1", display_name="Bea"))
    unnamed = await hub.ingest(sms("+12025550107", "c1"))
    before = await counts(hub)
    continuing = sms("+12025550105", "a2")
    # each of these, alone or with a continuing contact, is the general path's
    others = [
        sms("+12025550199", "new-customer"),
        sms("+12025550105", "to-another-number", recipient="+14155550111"),
        sms("+12025550107", "names-the-customer", display_name="Cy"),
        sms(
            "+12025550105",
            "with-file",
            attachments=(Attachment(filename="a.txt", content_type="text/plain", data=b"x"),),
        ),
        sms("+12025550105", "with-refs", thread_refs=("b1",)),
        sms("+12025550105", "new-thread", threading="explicit"),
        sms("+12025550105", "cc", participants=("+12025550106",)),
        sms("+12025550105", "an-event", kind="event"),
    ]
    for msg in others:
        assert await try_fast(hub, msg) is None, msg.provider_id
        assert await try_fast(hub, continuing, msg) is None, msg.provider_id
    assert await counts(hub) == before
    # a closed conversation is reopened by the general path, not continued
    async with hub.sessions() as s, s.begin():
        await s.execute(
            update(Conversation)
            .where(Conversation.id == ann.conversation_id)
            .values(state="closed", closed_at=func.now())
        )
    assert await try_fast(hub, continuing) is None
    reopened = await hub.ingest(continuing)
    assert (reopened.conversation_id, reopened.opened) == (ann.conversation_id, True)
    named = await hub.ingest(sms("+12025550107", "c2", display_name="Cy"))
    assert named.conversation_id == unnamed.conversation_id
    async with hub.sessions() as s:
        customer = await s.get_one(Customer, unnamed.customer_id)
        assert customer.display_name == "Cy"


async def test_concurrent_mixed_contacts_all_land_once(
    hub_client: ClientFactory, db_url: str
) -> None:
    hub = await open_hub(hub_client, db_url)
    senders = [f"+1202555{i:04d}" for i in range(200, 230)]
    firsts = await asyncio.gather(*(hub.ingest(sms(s, f"{s}-0")) for s in senders))
    # continuing contacts, redeliveries and new customers arrive together and share batches
    batch = [sms(s, f"{s}-{k}") for s in senders for k in (1, 2)]
    batch += [sms(s, f"{s}-1") for s in senders[:10]]
    batch += [sms(f"+1202555{i:04d}", f"new-{i}") for i in range(300, 310)]
    results = await asyncio.gather(*(hub.ingest(m) for m in batch))
    by_sender = {s: r.conversation_id for s, r in zip(senders, firsts, strict=True)}
    for msg, result in zip(batch, results, strict=True):
        if msg.sender in by_sender:
            assert result.conversation_id == by_sender[msg.sender]
    assert sum(not r.duplicate for r in results) == 70
    assert len({r.message_id for r in results}) == 70
    assert await counts(hub) == (100, 40, 30 * 3 + 70 + 10 * 2)
