"""In-app messaging through the reference client against the real hub (SQLite): sending,
an agent's reply, drops and resumes, the push hook while the app is away, and who may read
what."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from channels.inapp.auth import sign_user
from channels.inapp.client import AppClient, Refused
from channels.inapp.testing.push_receiver import PushReceiver
from contract.errors import ConfigError
from hub.web import keys
from server.lifecycle import OUTBOX
from tests import factories
from tests.agent_console.test_gateway import Console

Client = TestClient[Any, Any]
SECRET = "shop-app-secret-0123456789abcdef-xyz"
PUSH_KEY = "push-key-for-the-company-server-0001"


@pytest.fixture
async def receiver() -> AsyncIterator[PushReceiver]:
    fake = PushReceiver(key=PUSH_KEY.encode())
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def hub(hub_client: Callable[..., Awaitable[Client]], receiver: PushReceiver) -> Client:
    app = {"secret": SECRET, "queue": "support", "push_url": receiver.url, "push_secret": PUSH_KEY}
    return await hub_client(channels={"inapp": {"apps": {"shop": app}}})


def base(client: Client) -> str:
    return str(client.make_url("")).rstrip("/")


def token(user: str = "u-42", **kw: Any) -> str:
    return sign_user("shop", user, SECRET, **kw)


@pytest.fixture
async def app_user(hub: Client) -> AsyncIterator[AppClient]:
    client = AppClient(base(hub), token(), backoff=(0.05, 0.1, 0.2))
    await client.start()
    yield client
    await client.close()


async def agent_console(hub: Client) -> Console:
    await factories.agent(hub.app[keys.HUB], "ann")
    console, _, _ = await Console.connect(hub, await factories.login(hub, "ann"))
    assert (await console.cmd("set_state", state="available"))["type"] == "ack"
    return console


async def accept_next(console: Console) -> int:
    offer = await console.until_event("offer.created")
    assert offer["channel"] == "app"
    accepted = await console.cmd("accept", offer_id=offer["payload"]["offer_id"])
    return int(accepted["data"]["result"]["conversation_id"])


async def agent_reply(console: Console, conversation_id: int, text: str) -> None:
    ack = await console.cmd("reply", conversation_id=conversation_id, text=text)
    assert ack["type"] == "ack", ack


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"{check} did not hold within {within} s"
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------------- the happy path
async def test_the_app_sends_and_receives_the_agents_reply(
    hub: Client, app_user: AppClient, receiver: PushReceiver
) -> None:
    console = await agent_console(hub)
    message_id = await app_user.send("Where is my order #8812?")
    assert app_user.messages[message_id]["direction"] == "in"  # echoed to the sender's devices
    conversation_id = await accept_next(console)
    await agent_reply(console, conversation_id, "It ships tomorrow.")
    reply = await app_user.next_message(direction="out")
    assert reply["text"] == "It ships tomorrow."
    assert reply["author"] == "ann"  # the agent's first name
    assert receiver.received == []  # the socket took it: no push notification
    await console.close()
    await hub.app[OUTBOX].drain()


async def test_a_message_resent_with_the_same_id_is_stored_once(hub: Client) -> None:
    client = AppClient(base(hub), token(), session=hub.session)
    first = await client.post("hello", client_msg_id="m-1")
    again = await client.post("hello", client_msg_id="m-1")
    assert (first["duplicate"], again["duplicate"], again["id"]) == (False, True, first["id"])
    assert [m["text"] for m in (await client.history())["messages"]] == ["hello"]


# ---------------------------------------------------------------------- drops and resumes
async def test_a_dropped_app_resumes_with_nothing_lost(hub: Client, app_user: AppClient) -> None:
    console = await agent_console(hub)
    await app_user.send("I have a question")
    conversation_id = await accept_next(console)
    await app_user.drop(offline_for=0.6)  # a tunnel: the socket is gone for a while
    # While the app is away the agent answers twice, and the user types one more message.
    await agent_reply(console, conversation_id, "Hello! What is it?")
    await agent_reply(console, conversation_id, "Take your time.")
    queued = app_user.queue("Can I change my address?")
    queued_id = await asyncio.wait_for(queued, 10)  # sent on reconnect, acknowledged once
    await app_user.wait_for(
        lambda ms: (
            {"Hello! What is it?", "Take your time."}
            <= {m["text"] for m in ms.values() if m["direction"] == "out"}
        )
    )
    assert app_user.connections == 2
    history = (await app_user.history())["messages"]
    texts = [m["text"] for m in history]
    assert texts.count("Can I change my address?") == 1
    assert [m["id"] for m in history] == sorted(m["id"] for m in history)
    assert queued_id in {m["id"] for m in history}
    await console.close()
    await hub.app[OUTBOX].drain()


async def test_a_hub_restart_sends_the_app_to_reconnect_and_it_catches_up(
    hub: Client, app_user: AppClient
) -> None:
    console = await agent_console(hub)
    await app_user.send("hi")
    conversation_id = await accept_next(console)
    adapter = hub.app[keys.ADAPTERS]["app"]
    await adapter.draining()  # 1012: as when this process drains for a restart
    await agent_reply(console, conversation_id, "Back again")
    reply = await app_user.next_message(direction="out")
    assert reply["text"] == "Back again"
    assert app_user.connections >= 2
    await console.close()
    await hub.app[OUTBOX].drain()


# ---------------------------------------------------------------------- push hook
async def test_a_reply_while_the_app_is_closed_goes_to_the_push_hook_once(
    hub: Client, receiver: PushReceiver
) -> None:
    console = await agent_console(hub)
    client = AppClient(base(hub), token(), session=hub.session)
    await client.post("Please call me back", client_msg_id="bg-1")  # from the background
    conversation_id = await accept_next(console)
    receiver.fail_next = 1  # the company's server is briefly away: the outbox retries
    await agent_reply(console, conversation_id, "We will call at 3 pm.")
    await eventually(lambda: bool(receiver.deliveries), within=15)
    await hub.app[OUTBOX].drain()
    assert receiver.bad_signatures == 0
    (delivery,) = receiver.deliveries.values()
    assert delivery["app"] == "shop"
    assert delivery["user"] == "u-42"
    assert delivery["message"]["text"] == "We will call at 3 pm."
    # Every attempt carried the same delivery id, so the company sends one notification.
    assert {r["delivery"] for r in receiver.received} == {delivery["delivery"]}
    assert len(receiver.received) == 1
    history = (await client.history())["messages"]
    assert history[-1]["text"] == "We will call at 3 pm."
    await console.close()


# ---------------------------------------------------------------------- who may do what
@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda: "", 401),
        (lambda: "Bearer something", 401),
        (lambda: "HubApp " + token(ttl_s=-5), 401),  # expired
        (lambda: "HubApp " + token(ttl_s=365 * 86400), 401),  # lives too long
        (lambda: "HubApp " + token()[:-1] + "x", 403),  # the user id changed after signing
        (lambda: "HubApp " + sign_user("shop", "u-42", "another-secret-0123456789abcdef-x"), 403),
        (lambda: "HubApp " + sign_user("other", "u-42", SECRET), 403),  # unknown app
    ],
)
async def test_bad_tokens_are_refused_and_store_nothing(
    hub: Client, make: Callable[[], str], status: int
) -> None:
    before = hub.app[keys.HUB].stream.last_seq
    headers = {"Authorization": make()}
    body = {"client_msg_id": "x-1", "text": "hello"}
    async with hub.post("/app/v1/messages", json=body, headers=headers) as resp:
        assert resp.status == status
    async with hub.get("/app/v1/messages", headers=headers) as resp:
        assert resp.status == status
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await hub.session.ws_connect(hub.make_url("/app/v1/ws"), headers=headers)
    assert refused.value.status == status
    assert hub.app[keys.HUB].stream.last_seq == before


async def test_the_client_stops_on_a_refused_token(hub: Client) -> None:
    client = AppClient(base(hub), token(ttl_s=-1), session=hub.session, backoff=(0.05,))
    with pytest.raises(Refused):
        await client.start()
    await client.close()


async def test_a_second_user_never_reads_the_first_users_messages(hub: Client) -> None:
    mine = AppClient(base(hub), token("u-1"), session=hub.session)
    theirs = AppClient(base(hub), token("u-2"), session=hub.session)
    await mine.post("my secret order")
    await theirs.post("hello")
    assert [m["text"] for m in (await theirs.history())["messages"]] == ["hello"]
    assert [m["text"] for m in (await mine.history())["messages"]] == ["my secret order"]


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"client_msg_id": "a b", "text": "x"}', b'{"client_msg_id": "a"}'],
)
async def test_bad_bodies_are_400_and_store_nothing(hub: Client, body: bytes) -> None:
    before = hub.app[keys.HUB].stream.last_seq
    headers = {"Authorization": "HubApp " + token(), "Content-Type": "application/json"}
    async with hub.post("/app/v1/messages", data=body, headers=headers) as resp:
        assert resp.status == 400
    assert hub.app[keys.HUB].stream.last_seq == before


async def test_an_app_secret_too_short_stops_the_hub(
    hub_client: Callable[..., Awaitable[Client]],
) -> None:
    with pytest.raises(ConfigError, match="secret"):
        await hub_client(channels={"inapp": {"apps": {"shop": {"secret": "short"}}}})
