"""Pushes posted to the real hub (SQLite) through ``/webhooks/wechat``, in the order WeChat
sends them; replies through the outbox reach the fake customer-service API."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from channels.wechat.crypto import MessageCrypto, signature
from channels.wechat.testing.fake_api import FakeWeChat
from channels.wechat.testing.simulator import encrypted, post_push, signed_query, text_push
from contract.errors import ConfigError
from hub.web import keys
from server.lifecycle import OUTBOX
from storage.models import Conversation, utcnow
from tests import factories
from tests.agent_console.test_gateway import Console
from tests.channels.wechat.conftest import (
    AES_KEY,
    APP_ID,
    OLD_AES_KEY,
    OPENID,
    TOKEN,
    fixture,
    section,
)
from tests.conftest import AUTH

Client = TestClient[Any, Any]
PATH = "/webhooks/wechat"


@pytest.fixture
async def hub(hub_client: Callable[..., Awaitable[Client]], fake_wechat: FakeWeChat) -> Client:
    return await hub_client(channels=section(fake_wechat.base_url))


async def post(client: Client, body: bytes, query: dict[str, str] | None = None) -> tuple[int, str]:
    q = query if query is not None else signed_query(TOKEN)
    async with client.post(f"{PATH}?{urlencode(q)}", data=body) as resp:
        return resp.status, await resp.text()


async def get(client: Client, path: str) -> Any:
    async with client.get(path, headers=AUTH) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def the_customer(client: Client, openid: str = OPENID) -> dict[str, Any]:
    items = [
        c
        for c in (await get(client, "/api/v1/customers?limit=100"))["items"]
        if any(e["address"] == openid for e in c["endpoints"])
    ]
    assert len(items) == 1, items
    found: dict[str, Any] = items[0]
    return found


async def conversations(client: Client, customer_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await get(client, f"/api/v1/customers/{customer_id}/conversations")
    )["items"]
    return items


async def messages(client: Client, conversation_id: int) -> list[dict[str, Any]]:
    page = await get(client, f"/api/v1/conversations/{conversation_id}/messages")
    return list(reversed(page["items"]))


async def only_messages(client: Client, openid: str = OPENID) -> list[dict[str, Any]]:
    customer = await the_customer(client, openid)
    (conversation,) = await conversations(client, customer["id"])
    return await messages(client, conversation["id"])


async def reply(client: Client, conversation_id: int, text: str) -> tuple[int, dict[str, Any]]:
    async with client.post(
        f"/api/v1/conversations/{conversation_id}/messages", json={"text": text}, headers=AUTH
    ) as resp:
        return resp.status, await resp.json()


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(100):
        if await check():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"{check.__name__} did not become true within 5 s")


def head(client: Client) -> int:
    return int(client.app[keys.HUB].stream.last_seq)


# ---------------------------------------------------------------------- verification, auth
async def test_url_verification_echoes_echostr_only_with_the_right_signature(hub: Client) -> None:
    query = {**signed_query(TOKEN), "echostr": "7155628419839432192"}
    async with hub.get(f"{PATH}?{urlencode(query)}") as resp:
        assert (resp.status, await resp.text()) == (200, "7155628419839432192")
    query["signature"] = signature("wrong", query["timestamp"], query["nonce"])
    async with hub.get(f"{PATH}?{urlencode(query)}") as resp:
        assert resp.status == 403
        assert "7155628419839432192" not in await resp.text()


@pytest.mark.parametrize("tamper", ["signature", "timestamp", "missing"])
async def test_wrong_signature_is_403_and_stores_nothing(hub: Client, tamper: str) -> None:
    before = head(hub)
    query = signed_query(TOKEN)
    if tamper == "missing":
        query.pop("signature")
    elif tamper == "signature":
        query["signature"] = "0" * 40
    else:
        query["timestamp"] = str(int(query["timestamp"]) + 1)
    assert (await post(hub, fixture("text"), query))[0] == 403
    assert head(hub) == before
    assert (await get(hub, "/api/v1/customers"))["items"] == []


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b"<xml><MsgType>text</MsgType></xml>",
        b'<!DOCTYPE x [<!ENTITY a "a">]><xml><Content>&a;</Content></xml>',
    ],
)
async def test_a_signed_body_that_is_not_a_push_is_400_and_stores_nothing(
    hub: Client, body: bytes
) -> None:
    before = head(hub)
    assert (await post(hub, body))[0] == 400
    assert head(hub) == before


async def test_oversized_body_is_413(hub: Client) -> None:
    big = text_push(OPENID, "x" * 70_000, 1)
    assert (await post(hub, big))[0] == 413


async def test_without_token_or_secret_the_hub_refuses_to_start(
    hub_client: Callable[..., Awaitable[Client]], fake_wechat: FakeWeChat
) -> None:
    for missing in ("token", "app_secret"):
        with pytest.raises(ConfigError, match=missing):
            await hub_client(channels=section(fake_wechat.base_url, **{missing: ""}))


# ---------------------------------------------------------------------- what is stored
async def test_text_is_stored_once_though_wechat_retries_it_three_times(hub: Client) -> None:
    for _ in range(4):  # the first delivery and three retries
        assert await post(hub, fixture("text")) == (200, "success")
    (msg,) = await only_messages(hub)
    assert msg["text"].startswith("你好，我的订单 #8812")
    assert msg["provider_id"] == "24530001234567890"
    assert msg["channel"] == "wechat"


async def test_each_message_type_is_stored_in_one_conversation(hub: Client) -> None:
    names = ["text", "image", "voice", "voice_recognition", "video", "shortvideo", "location"]
    names.append("link")
    for name in names:
        assert await post(hub, fixture(name)) == (200, "success"), name
    stored = await only_messages(hub)
    assert len(stored) == len(names)
    texts = [m["text"] for m in stored]
    assert "我想退货。" in texts  # speech recognition is the text of a voice message
    assert any(t.startswith("📍 上海市黄浦区人民广场") for t in texts)
    assert "订单详情\n我的订单页面\nhttps://shop.example/orders/8812" in texts
    with_media = [m for m in stored if m["attachments"]]
    assert len(with_media) == 5  # image, two voices, video, short video


async def test_announced_image_is_fetched_from_media_get(hub: Client, fake: FakeWeChat) -> None:
    fake.media["media-image-1"] = (b"\xff\xd8\xff\xe0JPEGDATA", "image/jpeg")
    assert (await post(hub, fixture("image")))[0] == 200

    async def fetched() -> bool:
        (msg,) = await only_messages(hub)
        return bool(msg["attachments"][0]["state"] == "fetched")

    await eventually(fetched)
    (msg,) = await only_messages(hub)
    assert msg["attachments"][0]["content_type"] == "image/jpeg"


async def test_events_are_deduplicated_by_sender_and_time(hub: Client) -> None:
    for _ in range(3):
        assert await post(hub, fixture("event_click")) == (200, "success")
    (msg,) = await only_messages(hub)
    assert msg["text"] == "menu: CONTACT_SUPPORT"


async def test_location_reports_and_unknown_types_are_acknowledged_not_stored(
    hub: Client,
) -> None:
    before = head(hub)
    for name in ("event_location", "event_view", "unknown_type"):
        assert await post(hub, fixture(name)) == (200, "success")
    assert head(hub) == before


async def test_follow_then_unfollow_records_consent_and_refuses_replies(hub: Client) -> None:
    assert await post(hub, fixture("event_subscribe")) == (200, "success")
    assert await post(hub, fixture("text")) == (200, "success")
    customer = await the_customer(hub)
    assert customer["endpoints"][0]["opted_out"] == []
    assert await post(hub, fixture("event_unsubscribe")) == (200, "success")
    customer = await the_customer(hub)
    assert customer["endpoints"][0]["opted_out"] == ["wechat"]
    (conversation,) = await conversations(hub, customer["id"])
    status, body = await reply(hub, conversation["id"], "Are you still there?")
    assert status == 409, body


async def test_unionid_links_the_same_person_across_two_accounts(hub: Client) -> None:
    assert (await post(hub, fixture("text_unionid_first")))[0] == 200
    assert (await post(hub, fixture("text_unionid")))[0] == 200
    first = await the_customer(hub, OPENID)
    second = await the_customer(hub, "oZz9y8x7w6v5u4t3s2r1q0pn")
    assert first["id"] == second["id"]


# ---------------------------------------------------------------------- safe mode
async def test_encrypted_push_round_trip(
    hub_client: Callable[..., Awaitable[Client]], fake_wechat: FakeWeChat
) -> None:
    client = await hub_client(
        channels=section(
            fake_wechat.base_url, encoding_aes_key=AES_KEY, previous_encoding_aes_key=OLD_AES_KEY
        )
    )
    base = str(client.make_url("")).rstrip("/")
    status, body = await post_push(
        client.session, base, fixture("text"), token=TOKEN, crypto=MessageCrypto(AES_KEY, APP_ID)
    )
    assert (status, body) == (200, "success")
    # While WeChat switches keys, pushes under the previous key still decrypt.
    old = text_push(OPENID, "under the old key", 77)
    status, _ = await post_push(
        client.session, base, old, token=TOKEN, crypto=MessageCrypto(OLD_AES_KEY, APP_ID)
    )
    assert status == 200
    assert [m["text"][:4] for m in await only_messages(client)] == ["你好，我", "unde"]
    # A ciphertext whose msg_signature does not match is refused before decrypting.
    before = head(client)
    enc_body, query = encrypted(
        text_push(OPENID, "forged", 78),
        token=TOKEN,
        crypto=MessageCrypto(AES_KEY, APP_ID),
        query=signed_query(TOKEN),
    )
    query["msg_signature"] = "f" * 40
    assert (await post(client, enc_body, query))[0] == 403
    # Encrypted for another account (AppID): refused, nothing stored.
    other, query = encrypted(
        text_push(OPENID, "other app", 79),
        token=TOKEN,
        crypto=MessageCrypto(AES_KEY, "wx0000000000000000"),
        query=signed_query(TOKEN),
    )
    assert (await post(client, other, query))[0] == 400
    assert head(client) == before


# ---------------------------------------------------------------------- replies
@pytest.fixture
def fake(fake_wechat: FakeWeChat) -> FakeWeChat:
    return fake_wechat


async def test_message_reaches_the_console_and_the_reply_reaches_the_right_openid(
    hub: Client, fake: FakeWeChat
) -> None:
    app_hub = hub.app[keys.HUB]
    await factories.agent(app_hub, "ann")
    console, welcome, _ = await Console.connect(hub, await factories.login(hub, "ann"))
    declared = {c["name"]: c for c in welcome["data"]["channels"]}
    assert declared["wechat"]["labels"] == {"zh": "微信"}
    assert (await console.cmd("set_state", state="available"))["type"] == "ack"
    # Another follower writes first: the reply must not go to them.
    assert (await post(hub, text_push("oOtherFollower000001", "hi", 5)))[0] == 200
    first = await console.until_event("offer.created")
    await console.cmd("accept", offer_id=first["payload"]["offer_id"])
    assert (await post(hub, fixture("text")))[0] == 200
    offer = await console.until_event("offer.created")
    assert offer["channel"] == "wechat"
    accepted = await console.cmd("accept", offer_id=offer["payload"]["offer_id"])
    conversation_id = accepted["data"]["result"]["conversation_id"]
    ack = await console.cmd("reply", conversation_id=conversation_id, text="已为您查询，明天发货。")
    assert ack["type"] == "ack", ack

    async def sent() -> bool:
        return bool(fake.sends)

    await eventually(sent)
    assert fake.sends == [
        {"touser": OPENID, "msgtype": "text", "text": {"content": "已为您查询，明天发货。"}}
    ]
    while (await console.until_event("message.status"))["payload"]["status"] != "sent":
        pass
    await console.close()
    await hub.app[OUTBOX].drain()


async def test_an_expired_token_is_refreshed_once_and_the_send_goes_through(
    hub: Client, fake: FakeWeChat
) -> None:
    assert (await post(hub, fixture("text")))[0] == 200
    customer = await the_customer(hub)
    (conversation,) = await conversations(hub, customer["id"])
    assert (await reply(hub, conversation["id"], "first"))[0] == 201

    async def one_sent() -> bool:
        return len(fake.sends) == 1

    await eventually(one_sent)
    assert len(fake.token_calls) == 1
    fake.expire_token()  # e.g. another system forced a refresh: ours stops working
    assert (await reply(hub, conversation["id"], "second"))[0] == 201

    async def two_sent() -> bool:
        return len(fake.sends) == 2

    await eventually(two_sent)
    assert [s["text"]["content"] for s in fake.sends] == ["first", "second"]
    # One non-forced fetch got the new token: no forced refresh (20 a day) was spent.
    assert [c["force_refresh"] for c in fake.token_calls] == [False, False]
    await hub.app[OUTBOX].drain()


async def test_outside_the_48_hour_window_the_agent_sees_why(hub: Client, fake: FakeWeChat) -> None:
    assert (await post(hub, fixture("text")))[0] == 200
    customer = await the_customer(hub)
    (conversation,) = await conversations(hub, customer["id"])
    app_hub = hub.app[keys.HUB]
    async with app_hub.sessions() as s, s.begin():
        await s.execute(
            update(Conversation)
            .where(Conversation.id == conversation["id"])
            .values(last_inbound_at=utcnow() - timedelta(hours=49))
        )
    status, body = await reply(hub, conversation["id"], "Still there?")
    assert status == 409
    assert "48-hour" in body["detail"]
    assert "template" not in body["detail"]  # WeChat has none to offer
    assert fake.sends == []


async def test_window_closed_at_wechat_fails_the_message_visibly_without_retry(
    hub: Client, fake: FakeWeChat
) -> None:
    assert (await post(hub, fixture("text")))[0] == 200
    customer = await the_customer(hub)
    (conversation,) = await conversations(hub, customer["id"])
    fake.closed.add(OPENID)
    status, sent = await reply(hub, conversation["id"], "Hello?")
    assert status == 201

    async def failed() -> bool:
        out = [m for m in await messages(hub, conversation["id"]) if m["id"] == sent["id"]]
        return bool(out[0]["status"] == "failed")

    await eventually(failed)
    out = [m for m in await messages(hub, conversation["id"]) if m["id"] == sent["id"]]
    assert out[0]["error_code"] == "window_closed"
    assert fake.sends == []
    await hub.app[OUTBOX].drain()
