"""Fixtures posted to the real hub (SQLite) through ``POST /webhooks/telegram``; replies through
the outbox reach the fake Bot API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from channels.telegram.testing.fake_api import FakeTelegram
from channels.telegram.testing.simulator import post_update, text_update
from contract.channel import InboundMessage
from contract.errors import ConfigError
from hub.web import keys
from server.lifecycle import OUTBOX
from tests.channels.telegram.conftest import OLIVIA, SECRET, TOKEN, fixture_bytes, fixture_json
from tests.conftest import AUTH

Client = TestClient[Any, Any]
PATH = "/webhooks/telegram"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
GROUP = -1001234567890


@pytest.fixture
async def hub(
    hub_client: Callable[..., Awaitable[Client]], fake_telegram: tuple[FakeTelegram, str]
) -> Client:
    return await hub_client(
        telegram_bot_token=TOKEN,
        telegram_secret_token=SECRET,
        telegram_api_base=fake_telegram[1],
    )


@pytest.fixture
def fake(fake_telegram: tuple[FakeTelegram, str]) -> FakeTelegram:
    return fake_telegram[0]


async def post(client: Client, body: bytes | str, secret: str | None = SECRET) -> int:
    """Post a fixture (by name) or raw bytes with the secret header; returns the status."""
    data = fixture_bytes(body) if isinstance(body, str) else body
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[HEADER] = secret
    async with client.post(PATH, data=data, headers=headers) as resp:
        await resp.read()
        return resp.status


async def get(client: Client, path: str) -> Any:
    async with client.get(path, headers=AUTH) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def customers(client: Client, **query: str) -> list[dict[str, Any]]:
    page = await get(client, "/api/v1/customers?" + "&".join(f"{k}={v}" for k, v in query.items()))
    items: list[dict[str, Any]] = page["items"]
    return items


async def the_customer(client: Client, user_id: int = OLIVIA) -> dict[str, Any]:
    (customer,) = await customers(client, telegram_user_id=str(user_id))
    return customer


async def conversations(client: Client, customer_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await get(client, f"/api/v1/customers/{customer_id}/conversations")
    )["items"]
    return items


async def messages(client: Client, conversation_id: int) -> list[dict[str, Any]]:
    """Messages of a conversation, oldest first."""
    page = await get(client, f"/api/v1/conversations/{conversation_id}/messages")
    return list(reversed(page["items"]))


async def only_conversation_messages(client: Client, user_id: int = OLIVIA) -> list[dict[str, Any]]:
    customer = await the_customer(client, user_id)
    (conversation,) = await conversations(client, customer["id"])
    return await messages(client, conversation["id"])


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` for up to 5 s (the outbox delivers in the background)."""
    for _ in range(100):
        if await check():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"{check.__name__} did not become true within 5 s")


async def settle(client: Client) -> None:
    """Let in-flight outbox sends record their outcome before the app shuts down."""
    await client.app[OUTBOX].drain()


# ---------------------------------------------------------------------------- authentication
@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET + "x"])
async def test_missing_or_wrong_secret_is_403_and_stores_nothing(
    hub: Client, secret: str | None
) -> None:
    assert await post(hub, "text", secret=secret) == 403
    assert await customers(hub, telegram_user_id=str(OLIVIA)) == []


async def test_empty_configured_secret_refuses_to_start(
    hub_client: Callable[..., Awaitable[Client]], fake_telegram: tuple[FakeTelegram, str]
) -> None:
    # Fail closed at start: a bot without a secret would have to accept unsigned updates.
    with pytest.raises(ConfigError, match="HUB_TELEGRAM_SECRET_TOKEN"):
        await hub_client(
            telegram_bot_token=TOKEN, telegram_secret_token="", telegram_api_base=fake_telegram[1]
        )


# ---------------------------------------------------------------------------- bad input
async def test_malformed_update_is_acknowledged_and_stores_nothing(hub: Client) -> None:
    assert await post(hub, "malformed") == 200
    assert await customers(hub, telegram_user_id=str(OLIVIA)) == []
    assert await post(hub, "text") == 200  # and the hub keeps serving


async def test_body_that_is_not_json_is_400(hub: Client) -> None:
    assert await post(hub, b"update_id=1&message=hi") == 400
    assert await post(hub, b'{"update_id": 1, "message": ') == 400
    assert await customers(hub, telegram_user_id=str(OLIVIA)) == []


async def test_oversized_body_is_413(
    hub_client: Callable[..., Awaitable[Client]], fake_telegram: tuple[FakeTelegram, str]
) -> None:
    client = await hub_client(
        telegram_bot_token=TOKEN,
        telegram_secret_token=SECRET,
        telegram_api_base=fake_telegram[1],
        max_body_bytes=512,
    )
    data = fixture_json("text")
    data["message"]["text"] = "x" * 1000
    assert await post(client, json.dumps(data).encode()) == 413
    assert await customers(client, telegram_user_id=str(OLIVIA)) == []


@pytest.mark.parametrize("name", ["message_reaction", "unknown_type"])
async def test_reactions_and_unknown_types_are_200_and_ignored(hub: Client, name: str) -> None:
    assert await post(hub, name) == 200
    assert await customers(hub, telegram_user_id=str(OLIVIA)) == []


# ---------------------------------------------------------------------------- messages
async def test_text_creates_customer_and_conversation(hub: Client) -> None:
    assert await post(hub, "text") == 200
    customer = await the_customer(hub)
    assert customer["display_name"] == "Olivia Brown"
    assert customer["language"] == "en"
    assert {"kind": "telegram", "address": str(OLIVIA)}.items() <= customer["endpoints"][0].items()
    (conversation,) = await conversations(hub, customer["id"])
    assert conversation["channel"] == "telegram"
    assert conversation["queue"] == "support"
    (message,) = await messages(hub, conversation["id"])
    assert message["text"] == "Hi, my order #48213 hasn't arrived yet."
    assert message["provider_id"] == f"{OLIVIA}:51"
    assert message["direction"] == "in"
    assert message["metadata"]["update_id"] == 811300001


async def test_unicode_escaped_update_is_stored_as_real_text(hub: Client) -> None:
    assert await post(hub, "text_unicode_escaped") == 200
    (message,) = await only_conversation_messages(hub, 700100202)
    assert message["text"] == "¿Dónde está mi pedido? 📦 你好"


async def test_redelivered_update_is_stored_once(hub: Client) -> None:
    assert await post(hub, "text") == 200
    assert await post(hub, "text") == 200
    # Same chat + message id under another update id (e.g. after a restart): still once.
    data = fixture_json("text")
    data["update_id"] += 1000
    assert await post(hub, json.dumps(data).encode()) == 200
    assert len(await only_conversation_messages(hub)) == 1


async def test_next_message_continues_the_chat_conversation(hub: Client) -> None:
    assert await post(hub, "text") == 200
    assert await post(hub, "location") == 200
    texts = [m["text"] for m in await only_conversation_messages(hub)]
    assert texts == ["Hi, my order #48213 hasn't arrived yet.", "📍 51.500729, -0.124625"]


async def test_photo_stores_the_largest_size_fetched_through_getfile(
    hub: Client, fake: FakeTelegram
) -> None:
    fake.add_file("AgACAgQAAxkBAAIBNGdRp3-S_xlarge", b"\xff\xd8\xff big jpeg", file_path="p/1.jpg")
    assert await post(hub, "photo") == 200
    (message,) = await only_conversation_messages(hub)
    assert message["text"] == "This is what arrived"
    (att,) = message["attachments"]
    assert att["content_type"] == "image/jpeg"
    assert fake.calls_of("getFile") == [{"file_id": "AgACAgQAAxkBAAIBNGdRp3-S_xlarge"}]
    async with hub.get(f"/api/v1/attachments/{att['id']}", headers=AUTH) as resp:
        assert await resp.read() == b"\xff\xd8\xff big jpeg"


async def test_unknown_file_is_kept_as_a_failed_attachment_at_once(hub: Client) -> None:
    # The fake does not know this file_id: a 400 that no retry can mend.
    assert await post(hub, "document") == 200
    (message,) = await only_conversation_messages(hub)
    assert message["text"] == "Here's the invoice"
    (att,) = message["attachments"]
    assert (att["state"], att["filename"], att["content_type"], att["url"]) == (
        "failed",
        "invoice-48213.pdf",
        "application/pdf",
        None,
    )
    assert "Invalid file_id" in att["error"]


async def test_photo_whose_getfile_fails_first_is_fetched_on_the_retry(
    hub_client: Callable[..., Awaitable[Client]], fake_telegram: tuple[FakeTelegram, str]
) -> None:
    fake, api_base = fake_telegram
    file_id = "AgACAgQAAxkBAAIBNGdRp3-S_xlarge"
    fake.add_file(file_id, b"\xff\xd8\xff big jpeg", file_path="p/1.jpg")
    fake.fail_file(file_id, times=1, status=500)
    hub = await hub_client(
        telegram_bot_token=TOKEN,
        telegram_secret_token=SECRET,
        telegram_api_base=api_base,
        media_retry_delays_s=[0.1, 0.1],
    )
    assert await post(hub, "photo") == 200
    (message,) = await only_conversation_messages(hub)
    (att,) = message["attachments"]
    assert (att["state"], att["content_type"], att["url"]) == ("pending", "image/jpeg", None)

    async def fetched() -> bool:
        (message,) = await only_conversation_messages(hub)
        return bool(message["attachments"][0]["state"] == "fetched")

    await eventually(fetched)
    (message,) = await only_conversation_messages(hub)
    (att,) = message["attachments"]
    async with hub.get(att["url"], headers=AUTH) as resp:
        assert await resp.read() == b"\xff\xd8\xff big jpeg"
    assert fake.calls_of("getFile") == [{"file_id": file_id}, {"file_id": file_id}]


async def test_voice_note_is_an_audio_attachment(hub: Client, fake: FakeTelegram) -> None:
    fake.add_file("AwACAgQAAxkBAAIBNmdRp_voice", b"OggS voice", file_path="voice/file_3.oga")
    assert await post(hub, "voice") == 200
    (message,) = await only_conversation_messages(hub)
    (att,) = message["attachments"]
    assert att["content_type"] == "audio/ogg"
    assert message["metadata"]["transcript"] is None


async def test_start_deep_link_is_stored_as_command(hub: Client) -> None:
    assert await post(hub, "start_deeplink") == 200
    (message,) = await only_conversation_messages(hub)
    assert message["kind"] == "command"
    assert message["metadata"]["command"] == "start"
    assert message["metadata"]["payload"] == "order-48213"


async def test_edited_message_updates_the_stored_text(hub: Client) -> None:
    assert await post(hub, "text") == 200
    assert await post(hub, "edited_message") == 200
    (message,) = await only_conversation_messages(hub)
    assert message["text"] == "Hi, my order #48213 hasn't arrived yet. It was due on Monday."
    assert message["edited_at"] is not None


# ---------------------------------------------------------------------------- identity
async def test_own_contact_share_links_to_the_customer_with_that_phone(hub: Client) -> None:
    async with hub.post(
        "/api/v1/inbound",
        json={"from": "+447700900123", "text": "Hello by SMS-ish API", "external_id": "ext-1"},
        headers=AUTH,
    ) as resp:
        assert resp.status == 201
        phone_customer = (await resp.json())["customer_id"]
    assert await post(hub, "contact_own") == 200
    customer = await the_customer(hub)
    assert customer["id"] == phone_customer
    (by_phone,) = await customers(hub, phone="%2B447700900123")
    assert by_phone["id"] == phone_customer
    kinds = {(e["kind"], e["address"]) for e in customer["endpoints"]}
    assert kinds == {("phone", "+447700900123"), ("telegram", str(OLIVIA))}


async def test_sms_then_telegram_text_then_own_contact_share_is_one_customer(
    hub: Client,
) -> None:
    # The order people really use: SMS first, later the bot, and only then (its own update)
    # the shared contact. Telegram never sends the phone with the first message.
    sms = await hub.app[keys.HUB].ingest(
        InboundMessage(
            channel="sms",
            sender_kind="phone",
            sender="+447700900123",
            provider_id="SM" + "1" * 32,
            text="Where is my order?",
        )
    )
    assert await post(hub, "text") == 200
    before = await customers(hub, telegram_user_id=str(OLIVIA))
    assert [c["id"] for c in before] != [sms.customer_id]  # two people, as far as we know
    assert await post(hub, "contact_own") == 200
    (customer,) = await customers(hub, telegram_user_id=str(OLIVIA))
    assert customer["id"] == sms.customer_id
    assert customer["flags"] == []
    kinds = {(e["kind"], e["address"]) for e in customer["endpoints"]}
    assert kinds == {("phone", "+447700900123"), ("telegram", str(OLIVIA))}
    page = await get(hub, f"/api/v1/customers/{sms.customer_id}/history")
    assert sorted(m["channel"] for m in page["items"]) == ["sms", "telegram", "telegram"]
    # A third party's card shared afterwards still links nobody.
    assert await post(hub, "contact_third_party") == 200
    (customer,) = await customers(hub, telegram_user_id=str(OLIVIA))
    assert customer["id"] == sms.customer_id
    assert {e["kind"] for e in customer["endpoints"]} == {"phone", "telegram"}


async def test_third_party_contact_does_not_link(hub: Client) -> None:
    async with hub.post(
        "/api/v1/inbound",
        json={"from": "+15555550123", "text": "I'm Sam", "external_id": "ext-2"},
        headers=AUTH,
    ) as resp:
        sam = (await resp.json())["customer_id"]
    assert await post(hub, "contact_third_party") == 200
    customer = await the_customer(hub)
    assert customer["id"] != sam
    assert [e["kind"] for e in customer["endpoints"]] == ["telegram"]
    (message,) = await only_conversation_messages(hub)
    assert message["metadata"]["contact"]["phone_number"] == "+15555550123"


# ---------------------------------------------------------------------------- callbacks
async def test_csat_button_is_recorded_and_answered(hub: Client, fake: FakeTelegram) -> None:
    assert await post(hub, "text") == 200
    assert await post(hub, "callback_query_csat") == 200
    stored = await only_conversation_messages(hub)
    csat = [m for m in stored if m["kind"] == "csat"]
    assert len(csat) == 1
    assert csat[0]["metadata"]["score"] == 5
    assert "How did we do" not in " ".join(m["text"] for m in stored)
    (answer,) = fake.calls_of("answerCallbackQuery")
    assert answer["callback_query_id"] == "3007004521239874601"


async def test_csat_without_a_conversation_stores_nothing_but_is_answered(
    hub: Client, fake: FakeTelegram
) -> None:
    assert await post(hub, "callback_query_csat") == 200
    assert await customers(hub, telegram_user_id=str(OLIVIA)) == []
    assert len(fake.calls_of("answerCallbackQuery")) == 1


async def test_menu_button_is_an_event_and_answered(hub: Client, fake: FakeTelegram) -> None:
    assert await post(hub, "text") == 200
    assert await post(hub, "callback_query_menu") == 200
    event = [m for m in await only_conversation_messages(hub) if m["kind"] == "event"]
    assert event[0]["metadata"]["callback_data"] == "menu:billing"
    assert len(fake.calls_of("answerCallbackQuery")) == 1


# ---------------------------------------------------------------------------- end to end
async def reply(client: Client, conversation_id: int, text: str, **extra: Any) -> dict[str, Any]:
    async with client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"text": text, **extra},
        headers=AUTH,
    ) as resp:
        assert resp.status == 201, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body


async def test_message_reaches_hub_and_agent_reply_reaches_the_chat(
    hub: Client, fake: FakeTelegram
) -> None:
    # Through the simulator, as the demo traffic generator sends it.
    user = {"id": OLIVIA, "first_name": "Olivia", "last_name": "Brown", "language_code": "en"}
    status = await post_update(
        hub.session, str(hub.make_url("")), SECRET, text_update(5001, user, "Where is my parcel?")
    )
    assert status == 200
    events = (await get(hub, "/api/v1/events?after=0"))["items"]
    assert any(e["type"] == "message.received" and e["channel"] == "telegram" for e in events)
    customer = await the_customer(hub)
    (conversation,) = await conversations(hub, customer["id"])
    sent = await reply(hub, conversation["id"], "It's on its way, Olivia!")

    async def delivered() -> bool:
        return bool(fake.calls_of("sendMessage"))

    await eventually(delivered)
    (call,) = fake.calls_of("sendMessage")
    assert call["chat_id"] == OLIVIA
    assert call["text"] == "It's on its way, Olivia!"

    async def receipt_stored() -> bool:
        out = [m for m in await messages(hub, conversation["id"]) if m["id"] == sent["id"]]
        return bool(out[0]["status"] == "sent")

    await eventually(receipt_stored)
    await settle(hub)
    out = [m for m in await messages(hub, conversation["id"]) if m["id"] == sent["id"]]
    assert out[0]["provider_id"] == f"{OLIVIA}:1001"


async def test_group_conversation_reply_goes_to_the_group(hub: Client, fake: FakeTelegram) -> None:
    assert await post(hub, "group_text") == 200
    customer = await the_customer(hub)
    (conversation,) = await conversations(hub, customer["id"])
    assert conversation["subject"] == "Acme Customers"
    await reply(hub, conversation["id"], "Yes, 10:00-16:00 on Sundays.")

    async def delivered() -> bool:
        return bool(fake.calls_of("sendMessage"))

    await eventually(delivered)
    await settle(hub)
    assert fake.calls_of("sendMessage")[0]["chat_id"] == GROUP


async def test_private_chat_and_group_are_separate_conversations(hub: Client) -> None:
    assert await post(hub, "group_text") == 200
    assert await post(hub, "text") == 200
    customer = await the_customer(hub)
    assert len(await conversations(hub, customer["id"])) == 2


async def test_reply_to_a_user_who_blocked_the_bot_fails_visibly(
    hub: Client, fake: FakeTelegram
) -> None:
    assert await post(hub, "text") == 200
    customer = await the_customer(hub)
    (conversation,) = await conversations(hub, customer["id"])
    fake.block(OLIVIA)
    sent = await reply(hub, conversation["id"], "Are you still there?")

    async def failed() -> bool:
        out = [m for m in await messages(hub, conversation["id"]) if m["id"] == sent["id"]]
        return bool(out[0]["status"] == "failed")

    await eventually(failed)
    await settle(hub)
    out = [m for m in await messages(hub, conversation["id"]) if m["id"] == sent["id"]]
    assert out[0]["error_code"] == "blocked"
    assert len(fake.calls_of("sendMessage")) == 1  # not retried


async def test_flood_wait_is_retried_after_retry_after(hub: Client, fake: FakeTelegram) -> None:
    assert await post(hub, "text") == 200
    customer = await the_customer(hub)
    (conversation,) = await conversations(hub, customer["id"])
    fake.flood(OLIVIA, 1)
    await reply(hub, conversation["id"], "One moment please")

    async def sent_twice() -> bool:
        return len(fake.calls_of("sendMessage")) == 2

    await eventually(sent_twice)
    await settle(hub)
    assert [c["text"] for c in fake.calls_of("sendMessage")] == ["One moment please"] * 2


async def test_csat_survey_reply_carries_the_score_keyboard(
    hub: Client, fake: FakeTelegram
) -> None:
    assert await post(hub, "text") == 200
    customer = await the_customer(hub)
    (conversation,) = await conversations(hub, customer["id"])
    await reply(hub, conversation["id"], "How did we do?", options={"csat": True})

    async def delivered() -> bool:
        return bool(fake.calls_of("sendMessage"))

    await eventually(delivered)
    await settle(hub)
    (row,) = fake.calls_of("sendMessage")[0]["reply_markup"]["inline_keyboard"]
    assert [b["callback_data"] for b in row] == [f"csat:{n}" for n in range(1, 6)]
