"""Several hub processes on one database: the router lease and its fence, the bus carrying
events and signals between processes, supervised loops in /readyz, outbox sends left by a
dead process."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update

from contract.channel import OutboundMessage, SendReceipt
from contract.errors import ChannelError
from hub.lease import Fence, Lease, LeaseLost
from hub.outbox.delivery import OutboxSender
from hub.signals import CustomerTyping
from hub.web import keys
from storage.models import Conversation, Message, Offer, OutboxItem, utcnow
from storage.models import Lease as LeaseRow
from tests.agent_console.test_gateway import Console, login, make_agent
from tests.conftest import AUTH, ClientFactory
from tests.factories import contact


async def until(check: Callable[[], Awaitable[bool]], limit_s: float = 10.0) -> None:
    async with asyncio.timeout(limit_s):
        while not await check():  # noqa: ASYNC110 - polling storage and HTTP, no event to wait on
            await asyncio.sleep(0.05)


async def ready(client: TestClient[Any, Any]) -> dict[str, Any]:
    resp = await client.get("/readyz")
    body: dict[str, Any] = await resp.json()
    body["http_status"] = resp.status
    return body


# ---------------------------------------------------------------------- the lease


async def test_a_lease_has_one_holder_and_a_new_token_each_time_it_changes_hands(
    hub_client: ClientFactory, db_url: str
) -> None:
    hub = (await hub_client(database_url=db_url)).app[keys.HUB]
    first = Lease(hub.sessions, "test", "p1", ttl_s=0.6)
    second = Lease(hub.sessions, "test", "p2", ttl_s=0.6)
    assert await first.try_acquire()
    assert not await second.try_acquire()
    assert await first.renew()
    token = first.token
    assert token is not None

    # Stolen from outside (an operator, a test): the holder's next renewal finds out.
    async with hub.sessions() as s, s.begin():
        await s.execute(
            update(LeaseRow)
            .where(LeaseRow.name == "test")
            .values(holder="thief", token=LeaseRow.token + 1, expires_at=utcnow())
        )
    assert not await first.renew()
    assert not first.held
    assert await second.try_acquire()
    assert second.token == token + 2

    # A holder that stops renewing loses the lease once it expires.
    await asyncio.sleep(0.7)
    assert await first.try_acquire()
    assert first.token == token + 3
    assert not await second.renew()

    # A clean release hands over at once.
    await first.release()
    assert await second.try_acquire()


async def test_an_offer_under_a_lost_lease_writes_nothing(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    hub = client.app[keys.HUB]
    agent_id = await make_agent(client, "ann")  # offline: the router offers her nothing
    conv = (await contact(hub, "+12025550111", "hello")).conversation_id
    assert conv is not None
    async with hub.sessions() as s:
        holder, token = (
            await s.execute(
                select(LeaseRow.holder, LeaseRow.token).where(LeaseRow.name == "router")
            )
        ).one()
    assert holder == hub.holder  # the lone process routes

    stale = Fence("router", holder, token - 1)
    with pytest.raises(LeaseLost):
        await hub.work.create_offer(conv, agent_id, fence=stale)
    with pytest.raises(LeaseLost):
        await hub.work.create_offer(conv, agent_id, fence=Fence("router", "other", token))
    async with hub.sessions() as s:
        assert (await s.get_one(Conversation, conv)).state == "queued"
        assert await s.scalar(select(func.count()).select_from(Offer)) == 0

    current = Fence("router", holder, token)
    assert await hub.work.create_offer(conv, agent_id, fence=current) is not None


# ---------------------------------------------------------------------- several processes


async def two_processes(
    hub_client: ClientFactory, pg_url: str, redis_url: str, redis_prefix: str
) -> tuple[TestClient[Any, Any], TestClient[Any, Any]]:
    """Two hubs on one PostgreSQL + Redis, a short router lease."""
    shared = {
        "database_url": pg_url,
        "redis_url": redis_url,
        "redis_prefix": redis_prefix,
        "lease_ttl_s": 1.0,
    }
    return await hub_client(**shared), await hub_client(**shared)


@pytest.mark.postgres
@pytest.mark.redis
async def test_two_processes_one_router_events_and_signals_reach_either_and_takeover(
    hub_client: ClientFactory, pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    one, two = await two_processes(hub_client, pg_url, redis_url, redis_prefix)
    states = sorted([(await ready(one))["router"], (await ready(two))["router"]])
    assert states == ["leader", "standby"]
    for app in (one, two):
        body = await ready(app)
        assert body["http_status"] == 200, body
        assert body["checks"] == {"database": "ok", "redis": "ok", "loops": "ok"}

    agent_id = await make_agent(one, "ann")
    console, _, _ = await Console.connect(one, await login(one, "ann"))
    try:
        assert (await console.cmd("set_state", state="available"))["type"] == "ack"

        # A contact arriving at the other process reaches the agent's console here.
        resp = await two.post(
            "/api/v1/inbound",
            json={"from": "+12025550112", "text": "from two", "external_id": "x-1"},
            headers=AUTH,
        )
        assert resp.status == 201
        conv = (await resp.json())["conversation_id"]
        offer = await console.until_event("offer.created")
        assert (offer["conversation_id"], offer["agent_id"]) == (conv, agent_id)
        assert (await console.cmd("accept", offer_id=offer["payload"]["offer_id"]))["type"] == "ack"
        if not any(e["type"] == "conversation.assigned" for e in console.events):
            await console.until_event("conversation.assigned")

        # A live signal raised in the other process (a customer typing) reaches it too.
        two.app[keys.HUB].signals.send(CustomerTyping(conv, agent_id, True))
        while (f := await console.next_frame())["type"] != "typing":
            pass
        assert f["data"] == {"conversation_id": conv, "on": True}

        # The leader stops; the other process takes the lease over and routes.
        leader, standby = (one, two) if (await ready(one))["router"] == "leader" else (two, one)
        await leader.close()

        async def took_over() -> bool:
            return bool((await ready(standby))["router"] == "leader")

        await until(took_over, limit_s=10)
        if leader is one:
            return  # the console was on the stopped process; routing is shown below anyway
        resp = await standby.post(
            "/api/v1/inbound",
            json={"from": "+12025550113", "text": "after takeover", "external_id": "x-2"},
            headers=AUTH,
        )
        assert resp.status == 201
        again = await console.until_event("offer.created")
        assert again["conversation_id"] == (await resp.json())["conversation_id"]
    finally:
        await console.close()


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_stolen_router_lease_moves_routing_to_the_other_process(
    hub_client: ClientFactory, pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    one, two = await two_processes(hub_client, pg_url, redis_url, redis_prefix)
    hub = one.app[keys.HUB]
    before = {id(a): (await ready(a))["router"] for a in (one, two)}
    async with hub.sessions() as s, s.begin():
        await s.execute(
            update(LeaseRow)
            .where(LeaseRow.name == "router")
            .values(holder="thief", token=LeaseRow.token + 1, expires_at=utcnow())
        )

    async def swapped_or_retaken() -> bool:
        # Whoever takes it next has a new token; the old holder knows it lost it.
        async with hub.sessions() as s:
            holder = await s.scalar(select(LeaseRow.holder).where(LeaseRow.name == "router"))
        return holder in (one.app[keys.HUB].holder, two.app[keys.HUB].holder)

    await until(swapped_or_retaken, limit_s=10)
    after = {id(a): (await ready(a))["router"] for a in (one, two)}
    assert sorted(after.values()) == ["leader", "standby"], (before, after)

    # Routing works under the new token.
    agent_id = await make_agent(one, "bo")
    console, _, _ = await Console.connect(two, await login(two, "bo"))
    try:
        await console.cmd("set_state", state="available")
        conv = (await contact(hub, "+12025550114", "after the theft")).conversation_id
        offer = await console.until_event("offer.created")
        assert (offer["conversation_id"], offer["agent_id"]) == (conv, agent_id)
    finally:
        await console.close()


# ---------------------------------------------------------------------- outbox after a crash


class RecordingProvider:
    """A provider at the HTTP boundary, reduced to what it received and what it can say
    about it (the outbox's side is real)."""

    channels = frozenset({"api"})

    def __init__(self, *, has: set[str]) -> None:
        self.reply_options: dict[str, frozenset[str]] = {"api": frozenset()}
        self.sent: list[OutboundMessage] = []
        self.has = has  # idempotency keys of messages it already holds
        self.asked: list[str] = []

    async def send(self, message: OutboundMessage) -> SendReceipt:
        self.sent.append(message)
        return SendReceipt(provider_id=f"p-{message.message_id}")

    async def find_sent(self, message: OutboundMessage, *, since: Any) -> SendReceipt | None:
        self.asked.append(message.idempotency_key)
        if message.idempotency_key in self.has:
            return SendReceipt(provider_id=f"earlier-{message.message_id}")
        return None

    async def typing(self, *, channel: str, to: str) -> None:
        return None


async def test_sends_left_by_a_dead_sender_are_asked_about_then_sent_once(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url, outbox_stale_s=0.5)
    hub = client.app[keys.HUB]
    conv = (await contact(hub, "+12025550115", "hi")).conversation_id
    assert conv is not None
    agent_id = await make_agent(client, "cy")
    ids = []
    for text in ("first", "second"):
        ids.append((await hub.conversations.reply(conv, text=text, author_id=agent_id)).id)
    # A sender claimed both, then its process died before recording either.
    await hub.supervisor.stop("outbox")
    async with hub.sessions() as s, s.begin():
        await s.execute(
            update(OutboxItem).values(state="sending", updated_at=utcnow() - timedelta(seconds=5))
        )
    has = {f"hub-msg-{ids[0]}"}
    provider = RecordingProvider(has=has)
    sender = OutboxSender(hub.settings, hub.tx, {"api": provider})  # type: ignore[dict-item]
    assert await sender.release_stale() == 2
    task = asyncio.create_task(sender.run())
    try:

        async def done() -> bool:
            async with hub.sessions() as s:
                states = (await s.scalars(select(OutboxItem.state))).all()
            return set(states) == {"done"}

        await until(done)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sorted(provider.asked) == sorted(f"hub-msg-{i}" for i in ids)
    assert [m.message_id for m in provider.sent] == [ids[1]]  # the first one it already had
    assert provider.sent[0].idempotency_key == f"hub-msg-{ids[1]}"
    assert sender.reconciled == 1
    async with hub.sessions() as s:
        first = await s.get_one(Message, ids[0])
        assert first.provider_id == f"earlier-{ids[0]}"
        assert (await s.scalars(select(OutboxItem.uncertain_since))).all() == [None, None]


async def test_a_provider_that_cannot_be_asked_keeps_the_send_uncertain(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url, outbox_stale_s=0.5)
    hub = client.app[keys.HUB]
    conv = (await contact(hub, "+12025550116", "hi")).conversation_id
    assert conv is not None
    agent_id = await make_agent(client, "di")
    msg_id = (await hub.conversations.reply(conv, text="once", author_id=agent_id)).id
    await hub.supervisor.stop("outbox")
    async with hub.sessions() as s, s.begin():
        await s.execute(
            update(OutboxItem).values(state="sending", updated_at=utcnow() - timedelta(seconds=5))
        )

    class Unreachable(RecordingProvider):
        async def find_sent(self, message: OutboundMessage, *, since: Any) -> SendReceipt | None:
            raise ChannelError("provider down", retryable=True)

    provider = Unreachable(has=set())
    sender = OutboxSender(hub.settings, hub.tx, {"api": provider})  # type: ignore[dict-item]
    await sender.release_stale()
    task = asyncio.create_task(sender.run())
    try:

        async def tried() -> bool:
            async with hub.sessions() as s:
                row = await s.scalar(select(OutboxItem).where(OutboxItem.message_id == msg_id))
                return row is not None and row.attempts >= 2 and row.state == "pending"

        await until(tried)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert provider.sent == []  # never sent blind while the provider could not say
    async with hub.sessions() as s:
        row = await s.scalar(select(OutboxItem).where(OutboxItem.message_id == msg_id))
        assert row is not None
        assert row.uncertain_since is not None


@pytest.mark.postgres
async def test_one_sender_writing_to_two_processes_at_once_gets_one_conversation(
    hub_client: ClientFactory, pg_url: str
) -> None:
    one = (await hub_client(database_url=pg_url, reopen_window_s=0)).app[keys.HUB]
    two = (await hub_client(database_url=pg_url, reopen_window_s=0)).app[keys.HUB]
    first = await contact(one, "+12025550117", "an old question")
    assert first.conversation_id is not None
    async with one.sessions() as s, s.begin():
        conv = await s.get_one(Conversation, first.conversation_id)
        conv.state, conv.closed_at = "closed", utcnow() - timedelta(seconds=5)

    # A burst from the same customer lands on both processes at once; nothing is open.
    results = await asyncio.gather(
        *(
            contact(hub, "+12025550117", f"burst {i}", provider_id=f"burst-{i}")
            for i, hub in enumerate([one, two] * 10)
        )
    )
    opened = {r.conversation_id for r in results}
    assert len(opened) == 1, opened
    assert first.conversation_id not in opened
    async with one.sessions() as s:
        count = await s.scalar(
            select(func.count()).select_from(Message).where(Message.conversation_id.in_(opened))
        )
    assert count == 20


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_visitor_on_one_process_and_the_agent_on_another_see_each_other_live(
    aiohttp_client: Any, pg_url: str, redis_url: str, redis_prefix: str
) -> None:
    from channels.webchat.testing.visitor import ChatVisitor
    from contract.testing import free_port
    from server.app import create_app
    from tests.channels.webchat.conftest import webchat_section
    from tests.conftest import make_settings

    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    clients = []
    for port, base in zip(ports, bases, strict=True):
        settings = make_settings(
            pg_url,
            public_url=base,
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            channels={"webchat": webchat_section(base, origins=bases)},
        )
        clients.append(await aiohttp_client(create_app(settings), server_kwargs={"port": port}))
    web_two = clients[1]
    await make_agent(web_two, "ann")
    console, _, _ = await Console.connect(web_two, await login(web_two, "ann"))
    session = aiohttp.ClientSession()
    visitor = ChatVisitor(session, bases[0], origin=bases[0])
    try:
        await console.cmd("set_state", state="available")
        await visitor.connect()
        await visitor.send({"type": "prechat", "name": "Vic", "topic": "billing"})
        await visitor.next("ack")
        ack = await visitor.say("Where is my parcel?", client_msg_id="m-1")
        offer = await console.until_event("offer.created")
        accepted = await console.cmd("accept", offer_id=offer["payload"]["offer_id"])
        conv_id = accepted["data"]["result"]["conversation_id"]
        assert (await visitor.next("status"))["state"] in ("queued", "assigned")
        await console.cmd("open", conversation_id=conv_id)
        assert (await visitor.next("read"))["id"] == ack["id"]  # a signal, across processes
        await console.cmd("typing", conversation_id=conv_id)
        assert (await visitor.next("typing"))["on"] is True  # another signal
        await console.cmd("reply", conversation_id=conv_id, text="On its way.")
        reply = await visitor.next("message")
        while reply["direction"] == "in":  # the echo of the visitor's own message first
            reply = await visitor.next("message")
        # The reply reached the visitor: a committed event, across processes.
        assert (reply["direction"], reply["text"]) == ("out", "On its way.")
    finally:
        await visitor.close()
        await session.close()
        await console.close()


async def test_a_send_whose_outcome_is_unknown_is_asked_about_by_the_next_worker(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    hub = client.app[keys.HUB]
    await hub.supervisor.stop("outbox")
    conv = (await contact(hub, "+12025550118", "hi")).conversation_id
    assert conv is not None
    agent_id = await make_agent(client, "eve")
    msg_id = (await hub.conversations.reply(conv, text="timed out", author_id=agent_id)).id

    class TimesOut(RecordingProvider):
        async def send(self, message: OutboundMessage) -> SendReceipt:
            self.sent.append(message)
            raise ChannelError("read timeout", retryable=True, outcome_unknown=True)

    first = TimesOut(has=set())
    worker = OutboxSender(hub.settings, hub.tx, {"api": first})  # type: ignore[dict-item]
    await worker._work((await worker._claim())[0])
    assert len(first.sent) == 1
    assert first.asked == []

    # The provider had taken it after all; another worker's attempt finds it there.
    second = RecordingProvider(has={f"hub-msg-{msg_id}"})
    other = OutboxSender(hub.settings, hub.tx, {"api": second})  # type: ignore[dict-item]

    async with hub.sessions() as s, s.begin():
        await s.execute(update(OutboxItem).values(next_attempt_at=utcnow()))
    claimed = await other._claim()
    assert len(claimed) == 1
    await other._work(claimed[0])
    assert second.asked == [f"hub-msg-{msg_id}"]
    assert second.sent == []
    async with hub.sessions() as s:
        row = await s.scalar(select(OutboxItem).where(OutboxItem.message_id == msg_id))
        assert row is not None
        assert (row.state, row.uncertain_since) == ("done", None)


@pytest.mark.postgres
async def test_an_accept_and_a_rescind_of_one_offer_in_two_processes_never_both_win(
    hub_client: ClientFactory, pg_url: str
) -> None:
    one = (await hub_client(database_url=pg_url)).app[keys.HUB]
    two = (await hub_client(database_url=pg_url)).app[keys.HUB]
    agent_id = await one.users.create(username="fay", password="correct horse battery")
    outcomes: Counter[str] = Counter()
    for i in range(40):
        conv = (await contact(one, f"+120255502{i:02d}", "race")).conversation_id
        assert conv is not None
        offer_id = await one.work.create_offer(conv, agent_id)
        assert offer_id is not None
        # A new router withdrawing offers in flight while the agent accepts elsewhere.
        results: list[object] = list(
            await asyncio.gather(
                one.work.accept(offer_id, agent_id),
                two.work.rescind(offer_id, "hub restarted"),
                return_exceptions=True,
            )
        )
        accepted, rescinded = results
        async with one.sessions() as s:
            offer = await s.get_one(Offer, offer_id)
            row = await s.get_one(Conversation, conv)
        outcomes[offer.state] += 1
        if offer.state == "accepted":
            assert isinstance(rescinded, Exception)
            assert (row.state, row.assignee_id) == ("assigned", agent_id)
        else:
            assert offer.state == "rescinded"
            assert isinstance(accepted, Exception)
            assert (row.state, row.assignee_id) == ("queued", None)
    assert sum(outcomes.values()) == 40
