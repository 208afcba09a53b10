"""The visitor websocket as a widget uses it: hello/welcome, messages stored once and
acknowledged, history on resume, agents' replies and typing pushed, identity, limits."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from channels.webchat.testing.visitor import identity_hash
from hub.web import keys
from storage.models import Conversation, Customer, Endpoint, Message, MessageAttachment
from tests import factories
from tests.agent_console.test_gateway import Console
from tests.channels.webchat.conftest import SECRET, ChatHubFactory

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


async def count(hub: Any, model: Any) -> int:
    async with hub.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_visitor_writes_is_routed_the_agent_replies_and_the_reply_arrives(
    chat_hub: ChatHubFactory,
) -> None:
    ch = await chat_hub()
    await factories.agent(ch.hub, "ann")
    jar = await factories.login(ch.client, "ann")
    console, welcome, _ = await Console.connect(ch.client, jar)
    assert any(c["name"] == "webchat" for c in welcome["data"]["channels"])
    await console.cmd("set_state", state="available")

    visitor = ch.visitor()
    hello = await visitor.connect()
    assert hello["v"] == 1
    assert hello["config"]["offline"] is False
    assert hello["status"] == {"type": "status", "state": "new"}
    assert [t["id"] for t in hello["config"]["prechat"]["topics"]] == ["billing"]
    await visitor.send({"type": "prechat", "name": "Vic Visitor", "topic": "billing"})
    assert (await visitor.next("ack"))["ref"] == "prechat"
    ack = await visitor.say("Hi, is my order shipped?", client_msg_id="m-1")
    assert ack["type"] == "ack"
    echoed = await visitor.next("message")
    assert (echoed["id"], echoed["direction"], echoed["client_msg_id"]) == (ack["id"], "in", "m-1")

    offer = await console.until_event("offer.created")
    assert offer["channel"] == "webchat"
    assert offer["queue"] == "billing"
    assert offer["payload"]["customer_name"] == "Vic Visitor"
    accepted = await console.cmd("accept", offer_id=offer["payload"]["offer_id"])
    conv_id = accepted["data"]["result"]["conversation_id"]
    waiting = await visitor.next("status")
    assert (waiting["state"], waiting["position"]) == ("queued", 1)
    status = await visitor.next("status")
    assert status == {"type": "status", "state": "assigned", "agent": "ann"}
    # Opening the conversation is the agent's read receipt.
    await console.cmd("open", conversation_id=conv_id)
    assert (await visitor.next("read"))["id"] == ack["id"]
    await console.cmd("typing", conversation_id=conv_id)
    assert (await visitor.next("typing"))["on"] is True
    await console.cmd("reply", conversation_id=conv_id, text="Yes, it left today.")
    reply = await visitor.next("message")
    assert (reply["direction"], reply["text"], reply["author"]) == (
        "out",
        "Yes, it left today.",
        "ann",
    )
    await visitor.close()
    await console.close()


async def test_a_repeated_client_msg_id_is_stored_once_and_resume_replays_what_was_missed(
    chat_hub: ChatHubFactory,
) -> None:
    ch = await chat_hub()
    tab = ch.visitor()
    await tab.connect()
    first = await tab.say("one", client_msg_id="a1")
    again = await tab.say("one", client_msg_id="a1")
    assert again["id"] == first["id"]
    assert await count(ch.hub, Message) == 1
    second = await tab.say("two", client_msg_id="a2")
    await tab.close()

    # A new tab with the same token (a reload) gets the whole conversation.
    reload = ch.visitor(token=tab.token)
    welcome = await reload.connect(last_id=0)
    assert [m["text"] for m in welcome["messages"]] == ["one", "two"]
    # Reconnecting after a drop replays only what came after the last id seen.
    after = ch.visitor(token=tab.token)
    welcome = await after.connect(last_id=first["id"])
    assert [m["id"] for m in welcome["messages"]] == [second["id"]]
    # Another visitor sees none of it.
    stranger = ch.visitor()
    assert (await stranger.connect())["messages"] == []
    for v in (reload, after, stranger):
        await v.close()


async def test_identity_needs_a_valid_hmac_and_then_links_the_customer(
    chat_hub: ChatHubFactory,
) -> None:
    ch = await chat_hub()
    visitor = ch.visitor()
    await visitor.connect()
    await visitor.send({"type": "identify", "identifier": "user-42", "hash": "00" * 32})
    refused = await visitor.next("error")
    assert refused["code"] == "identity_refused"
    await visitor.send(
        {
            "type": "identify",
            "identifier": "user-42",
            "hash": identity_hash(SECRET, "user-42"),
            "name": "Uma User",
        }
    )
    assert (await visitor.next("identified"))["verified"] is True
    await visitor.say("hello as Uma")
    # A second browser verified as the same user is the same customer.
    other = ch.visitor()
    await other.connect()
    await other.send(
        {"type": "identify", "identifier": "user-42", "hash": identity_hash(SECRET, "user-42")}
    )
    await other.next("identified")
    await other.say("hello from my phone")
    async with ch.hub.sessions() as s:
        owners = (
            await s.scalars(
                select(Endpoint.customer_id).where(Endpoint.kind.in_(("webchat", "webchat_id")))
            )
        ).all()
        assert len(set(owners)) == 1
        names = (await s.scalars(select(Customer.display_name))).all()
        assert "Uma User" in names
    await visitor.close()
    await other.close()


async def test_mandatory_identity_refuses_unverified_messages(chat_hub: ChatHubFactory) -> None:
    ch = await chat_hub(identity="mandatory")
    visitor = ch.visitor()
    await visitor.connect()
    refused = await visitor.say("let me in")
    assert refused["code"] == "identity_refused"
    assert await count(ch.hub, Message) == 0
    await visitor.close()


async def test_hostile_frames_are_refused_and_store_nothing(chat_hub: ChatHubFactory) -> None:
    ch = await chat_hub()
    visitor = ch.visitor()
    await visitor.connect()
    bad: list[dict[str, Any]] = [
        {"type": "message", "client_msg_id": "x y", "text": "hi"},
        {"type": "message", "client_msg_id": "ok", "text": "x" * 4001},
        {"type": "message", "client_msg_id": "ok2", "text": ""},
        {
            "type": "message",
            "client_msg_id": "ok3",
            "text": "f",
            "file": {"type": "image/svg+xml", "data": "PHN2Zz4="},
        },
        {
            "type": "message",
            "client_msg_id": "ok4",
            "text": "f",
            "file": {"type": "image/png", "data": base64.b64encode(b"<html>").decode()},
        },
        {
            "type": "message",
            "client_msg_id": "ok5",
            "text": "f",
            "file": {"type": "image/png", "data": "%%%"},
        },
        {"type": "prechat", "name": "", "topic": "billing"},
        {"type": "prechat", "name": "x", "topic": "nope"},
        {"type": "launch-missiles"},
    ]
    for frame in bad:
        await visitor.send(frame)
        answer = await visitor.next("error")
        assert answer["code"] in ("bad_frame", "too_large", "not_allowed"), (frame, answer)
        # The error names the frame it answers (by its type when its id is unusable).
        usable = frame.get("client_msg_id") if frame.get("client_msg_id") != "x y" else None
        assert answer["ref"] == (usable or frame["type"]), answer
    assert visitor.ws is not None
    await visitor.ws.send_str("not json")
    assert (await visitor.next("error"))["code"] == "bad_frame"
    assert await count(ch.hub, Message) == 0
    assert await count(ch.hub, Conversation) == 0
    # A real PNG goes through, and only this visitor can fetch it back.
    ack = await visitor.say(
        "a photo",
        file={
            "name": "../../etc/shot.png",
            "type": "image/png",
            "data": base64.b64encode(PNG).decode(),
        },
    )
    assert ack["type"] == "ack"
    mine = visitor.messages[ack["id"]]
    url = mine["attachments"][0]["url"]
    async with ch.session.get(url) as resp:
        assert resp.status == 200
        assert await resp.read() == PNG
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    tampered = url.replace("&s=", "&s=0")
    async with ch.session.get(tampered) as resp:
        assert resp.status == 404
    async with ch.hub.sessions() as s:
        stored = await s.scalar(select(MessageAttachment.filename))
    assert stored == "shot.png"
    await visitor.close()


async def test_other_origins_and_unknown_sites_cannot_open_the_chat(
    chat_hub: ChatHubFactory,
) -> None:
    ch = await chat_hub()
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await ch.visitor(origin="https://evil.example").connect()
    assert err.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await ch.visitor(site="nope").connect()
    assert err.value.status == 404


async def test_messages_are_rate_limited_per_visitor(chat_hub: ChatHubFactory) -> None:
    ch = await chat_hub()
    visitor = ch.visitor()
    await visitor.connect()
    answers = [await visitor.say(f"spam {i}") for i in range(22)]
    assert [a["type"] for a in answers].count("ack") == 20
    assert answers[-1]["code"] == "rate_limited"
    await visitor.close()


async def test_nobody_available_means_the_offline_form_which_becomes_an_email(
    chat_hub: ChatHubFactory,
) -> None:
    ch = await chat_hub()
    visitor = ch.visitor()
    welcome = await visitor.connect()
    assert welcome["config"]["offline"] is True  # no agent is logged in
    await visitor.send(
        {"type": "offline", "name": "Olga", "email": "Olga@Example.org", "text": "Call me back"}
    )
    assert (await visitor.next("ack"))["ref"] == "offline"
    async with ch.hub.sessions() as s:
        conv = await s.scalar(select(Conversation))
        assert conv is not None
        assert (conv.channel, conv.queue) == ("email", "support")
        endpoint = await s.get(Endpoint, conv.endpoint_id)
        assert endpoint is not None
        assert endpoint.address == "olga@example.org"
    await visitor.close()


async def test_the_agent_sees_the_visitor_typing(chat_hub: ChatHubFactory) -> None:
    ch = await chat_hub()
    await factories.agent(ch.hub, "ann")
    console, _, _ = await Console.connect(ch.client, await factories.login(ch.client, "ann"))
    await console.cmd("set_state", state="available")
    visitor = ch.visitor()
    await visitor.connect()
    await visitor.say("hello")
    offer = await console.until_event("offer.created")
    await console.cmd("accept", offer_id=offer["payload"]["offer_id"])
    await visitor.send({"type": "typing", "on": True})
    for _ in range(20):
        frame = await console.next_frame()
        if frame["type"] == "typing":
            break
    else:
        raise AssertionError("no typing frame")
    assert frame["data"]["on"] is True
    await visitor.close()
    await console.close()
    await asyncio.sleep(0)


async def test_a_tab_that_stops_reading_is_cut_off_without_holding_up_the_others(
    chat_hub: ChatHubFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A socket whose reader stopped (its send never completes) is aborted after the send
    timeout; the visitor's other tab still gets the frame, and the stuck one catches up by
    replay when it comes back."""
    from channels.webchat import visitors as module

    ch = await chat_hub()
    live = ch.visitor()
    await live.connect()
    adapter = ch.client.app[keys.ADAPTERS]["webchat"]
    registry = adapter.visitors
    (tab,) = registry.by_address[visitor_address := next(iter(registry.by_address))]

    class Stuck:
        closed = False

        async def send_json(self, frame: Any) -> None:
            await asyncio.Event().wait()  # the peer never reads

    class Transport:
        aborted = False

        def abort(self) -> None:
            self.aborted = True

    stuck = module.Visitor(
        site_id="demo",
        site=tab.site,
        token="t" * 43,
        address=visitor_address,
        ws=Stuck(),  # type: ignore[arg-type]
        language="en",
    )
    transport = Transport()
    stuck.transport = transport  # type: ignore[assignment]
    registry.by_address[visitor_address].add(stuck)
    monkeypatch.setattr(module, "SEND_TIMEOUT_S", 0.2)
    got = await registry.push(visitor_address, {"type": "typing", "on": True, "name": ""})
    assert got == 1  # the live tab
    assert (await live.next("typing"))["on"] is True
    assert transport.aborted
    await live.close()


async def test_waiting_visitors_positions_in_one_read_match_one_by_one(
    chat_hub: ChatHubFactory,
) -> None:
    ch = await chat_hub()
    visitors = [ch.visitor() for _ in range(3)]
    for v in visitors:
        await v.connect()
        await v.say("anyone there?")
    adapter = ch.client.app[keys.ADAPTERS]["webchat"]
    addresses = list(adapter.visitors.by_address)
    together = await ch.hub.chat_waiting(
        channel="webchat", endpoint_kind="webchat", addresses=[*addresses, "vnobody"]
    )
    assert set(together) == set(addresses)
    for address in addresses:
        alone = await ch.hub.chat_status(
            channel="webchat", endpoint_kind="webchat", address=address
        )
        assert together[address] == alone
    assert sorted(s.position for s in together.values()) == [1, 2, 3]
    for v in visitors:
        await v.close()


BOT = {
    "name": {"en": "Kettlebot", "zh": "小壶"},
    "faq": [
        {
            "keywords": ["shipping", "delivery", "发货"],
            "answer": {"en": "We ship within two days.", "zh": "我们两天内发货。"},
        },
        {"keywords": ["return", "refund"], "answer": {"en": "Returns are free for 30 days."}},
    ],
}


async def test_a_bot_answers_first_and_hands_off_when_asked_with_the_history_kept(
    chat_hub: ChatHubFactory,
) -> None:
    ch = await chat_hub(bot=BOT)
    await factories.agent(ch.hub, "ann")
    console, _, _ = await Console.connect(ch.client, await factories.login(ch.client, "ann"))
    await console.cmd("set_state", state="available")
    visitor = ch.visitor()
    welcome = await visitor.connect()
    assert welcome["config"]["bot"] == "Kettlebot"
    await visitor.say("How long does shipping take?")
    answer = await visitor.next("message")
    while answer["direction"] != "out":
        answer = await visitor.next("message")
    assert (answer["text"], answer["bot"]) == ("We ship within two days.", True)
    assert (await visitor.next("status"))["state"] == "bot"
    await visitor.say("And returns?")  # the same conversation, still the bot's
    # Nothing is offered while the bot holds the conversation.
    async with ch.hub.sessions() as s:
        (conv,) = (await s.scalars(select(Conversation))).all()
        assert conv.state == "bot"
        bot_texts = (await s.scalars(select(Message.text).where(Message.kind == "bot"))).all()
        assert bot_texts == ["We ship within two days.", "Returns are free for 30 days."]
        assert conv.first_response_at is None  # a bot's answer is no agent's response
    await visitor.send({"type": "handoff"})
    assert (await visitor.next("ack"))["ref"] == "handoff"
    status = await visitor.next("status")
    assert status["state"] == "queued"
    offer = await console.until_event("offer.created")
    accepted = await console.cmd("accept", offer_id=offer["payload"]["offer_id"])
    opened = await console.cmd(
        "open", conversation_id=accepted["data"]["result"]["conversation_id"]
    )
    texts = [m["text"] for m in opened["data"]["result"]["history"]["items"]]
    assert "How long does shipping take?" in texts
    assert "We ship within two days." in texts
    await visitor.close()
    await console.close()


async def test_the_bot_hands_off_at_once_when_it_has_no_answer_or_a_person_is_asked_for(
    chat_hub: ChatHubFactory,
) -> None:
    ch = await chat_hub(bot=BOT)
    for text in ("My kettle exploded", "Can I talk to a human please"):
        visitor = ch.visitor()
        # No agent is in, but the bot is: the chat is open, not the offline form.
        assert (await visitor.connect())["config"]["offline"] is False
        await visitor.say(text)
        status = await visitor.next("status")
        while status["state"] == "bot":
            status = await visitor.next("status")
        assert status["state"] == "queued", text
        assert not any(m.get("bot") for m in visitor.messages.values())
        await visitor.close()
    async with ch.hub.sessions() as s:
        states = (await s.scalars(select(Conversation.state))).all()
    assert states == ["queued", "queued"]
