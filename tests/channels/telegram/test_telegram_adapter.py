"""The adapter against the fake Bot API: sends, keyboards, errors, typing, callbacks, files."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import pytest

from channels.telegram.adapter import TelegramAdapter, create, split_text
from channels.telegram.payloads import FileRef
from channels.telegram.testing.fake_api import FakeTelegram
from config.settings import load_settings
from contract.channel import Attachment, ChannelContext, HubPort, OutboundMessage
from contract.errors import ChannelError
from tests.channels.telegram.conftest import OLIVIA, SECRET, TOKEN

GROUP = -1001234567890


def make_ctx(base_url: str, session: aiohttp.ClientSession, **overrides: Any) -> ChannelContext:
    values: dict[str, Any] = {
        "api_token": "test-token",
        "telegram_bot_token": TOKEN,
        "telegram_secret_token": SECRET,
        "telegram_api_base": base_url,
    }
    values.update(overrides)
    # The hub is not involved in sending; these tests exercise the provider boundary only.
    return ChannelContext(
        settings=load_settings(**values), hub=cast(HubPort, None), http=lambda: session
    )


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def adapter(
    fake_telegram: tuple[FakeTelegram, str], session: aiohttp.ClientSession
) -> AsyncIterator[TelegramAdapter]:
    adapter = create(make_ctx(fake_telegram[1], session))
    assert adapter is not None
    await adapter.start()
    yield adapter
    await adapter.stop()


def outbound(text: str = "Hello from support", **kw: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "message_id": 1,
        "conversation_id": 1,
        "channel": "telegram",
        "to": str(OLIVIA),
        "sender": None,
        "text": text,
    }
    values.update(kw)
    return OutboundMessage(**values)


def test_create_returns_none_without_a_bot_token(session: aiohttp.ClientSession) -> None:
    assert create(make_ctx("http://127.0.0.1:9", session, telegram_bot_token="")) is None


async def test_text_reaches_the_right_chat_and_receipt_names_chat_and_message(
    adapter: TelegramAdapter, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    fake = fake_telegram[0]
    receipt = await adapter.send(outbound(options={"thread_key": str(OLIVIA)}))
    (call,) = fake.calls_of("sendMessage")
    assert call["chat_id"] == OLIVIA
    assert call["text"] == "Hello from support"
    assert receipt.status == "sent"
    assert receipt.provider_id == f"{OLIVIA}:1001"
    assert fake.calls_of("getMe") == []  # start() needs no network


async def test_group_conversation_replies_to_the_group_chat(
    adapter: TelegramAdapter, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    await adapter.send(outbound(options={"thread_key": str(GROUP)}))
    assert fake_telegram[0].calls_of("sendMessage")[0]["chat_id"] == GROUP


async def test_numeric_thread_key_of_another_channel_does_not_redirect(
    adapter: TelegramAdapter, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    await adapter.send(outbound(options={"thread_key": "4711"}))
    assert fake_telegram[0].calls_of("sendMessage")[0]["chat_id"] == OLIVIA


async def test_inline_keyboard_is_serialized(
    adapter: TelegramAdapter, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    rows = [
        [{"text": "Billing", "callback_data": "menu:billing"}],
        [{"text": "Help centre", "url": "https://example.com/help"}],
    ]
    await adapter.send(outbound("Pick one", options={"reply_markup": rows}))
    markup = fake_telegram[0].calls_of("sendMessage")[0]["reply_markup"]
    assert markup == {
        "inline_keyboard": [
            [{"text": "Billing", "callback_data": "menu:billing"}],
            [{"text": "Help centre", "url": "https://example.com/help"}],
        ]
    }


async def test_csat_option_sends_five_score_buttons(
    adapter: TelegramAdapter, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    await adapter.send(outbound("How did we do?", options={"csat": True}))
    (row,) = fake_telegram[0].calls_of("sendMessage")[0]["reply_markup"]["inline_keyboard"]
    assert [b["callback_data"] for b in row] == [f"csat:{n}" for n in range(1, 6)]


async def test_bad_keyboard_spec_is_a_permanent_failure(adapter: TelegramAdapter) -> None:
    with pytest.raises(ChannelError) as info:
        await adapter.send(outbound(options={"reply_markup": [[{"text": "no action"}]]}))
    assert info.value.retryable is False


async def test_long_text_is_split_under_the_limit(
    adapter: TelegramAdapter, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    text = ("line of text 📦\n" * 600).strip()
    receipt = await adapter.send(outbound(text))
    calls = fake_telegram[0].calls_of("sendMessage")
    assert len(calls) == 3
    assert "".join(c["text"] for c in calls) == text
    assert all(len(c["text"].encode("utf-16-le")) // 2 <= 4096 for c in calls)
    assert receipt.metadata["message_ids"] == [1001, 1002, 1003]


def test_split_text_counts_utf16_units() -> None:
    chunks = split_text("😀" * 3000)
    assert [len(c) for c in chunks] == [2048, 952]


async def test_photo_with_short_text_goes_as_one_captioned_photo(
    adapter: TelegramAdapter, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    fake = fake_telegram[0]
    att = Attachment(filename="label.png", content_type="image/png", data=b"\x89PNG fake")
    await adapter.send(outbound("Your return label", attachments=(att,)))
    (call,) = fake.calls_of("sendPhoto")
    assert call["chat_id"] == OLIVIA
    assert call["caption"] == "Your return label"
    assert fake.uploads == [("photo", "label.png", b"\x89PNG fake")]
    assert fake.calls_of("sendMessage") == []


async def test_documents_follow_a_long_text(
    adapter: TelegramAdapter, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    fake = fake_telegram[0]
    att = Attachment(filename="invoice.pdf", content_type="application/pdf", data=b"%PDF-1.7")
    text = "x" * 2000  # longer than a caption may be
    await adapter.send(outbound(text, attachments=(att,)))
    assert [m for m, _ in fake.calls] == ["sendMessage", "sendDocument"]
    assert fake.uploads == [("document", "invoice.pdf", b"%PDF-1.7")]


async def test_blocked_by_user_is_not_retryable(
    adapter: TelegramAdapter, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    fake_telegram[0].block(OLIVIA)
    with pytest.raises(ChannelError) as info:
        await adapter.send(outbound())
    assert info.value.retryable is False
    assert info.value.code == "blocked"


async def test_flood_wait_is_retryable_with_retry_after(
    adapter: TelegramAdapter, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    fake_telegram[0].flood(OLIVIA, 7)
    with pytest.raises(ChannelError) as info:
        await adapter.send(outbound())
    assert info.value.retryable is True
    assert info.value.retry_after == 7
    await adapter.send(outbound())  # the next attempt goes through


@pytest.mark.parametrize(
    ("status", "description", "retryable", "code"),
    [
        (400, "Bad Request: chat not found", False, "bad_request"),
        (502, "Bad Gateway", True, "network"),
    ],
)
async def test_provider_errors_map_to_retry_or_failure(
    adapter: TelegramAdapter,
    fake_telegram: tuple[FakeTelegram, str],
    status: int,
    description: str,
    retryable: bool,
    code: str,
) -> None:
    fake_telegram[0].refuse(OLIVIA, status, description)
    with pytest.raises(ChannelError) as info:
        await adapter.send(outbound())
    assert (info.value.retryable, info.value.code) == (retryable, code)


async def test_unreachable_api_is_retryable(session: aiohttp.ClientSession) -> None:
    adapter = TelegramAdapter(make_ctx("http://127.0.0.1:9", session))
    await adapter.start()
    try:
        with pytest.raises(ChannelError) as info:
            await adapter.send(outbound())
    finally:
        await adapter.stop()
    assert info.value.retryable is True


async def test_non_numeric_address_fails_permanently(adapter: TelegramAdapter) -> None:
    with pytest.raises(ChannelError) as info:
        await adapter.send(outbound(to="olivia_b"))
    assert info.value.retryable is False


async def test_typing_sends_chat_action_and_never_raises(
    adapter: TelegramAdapter, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    fake = fake_telegram[0]
    await adapter.typing(channel="telegram", to=str(OLIVIA))
    assert fake.calls_of("sendChatAction") == [{"chat_id": OLIVIA, "action": "typing"}]
    fake.block(OLIVIA)
    await adapter.typing(channel="telegram", to=str(OLIVIA))


async def test_answer_callback_reaches_the_api(
    adapter: TelegramAdapter, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    await adapter.answer_callback("3007004521239874601", text="Thanks!")
    (call,) = fake_telegram[0].calls_of("answerCallbackQuery")
    assert call["callback_query_id"] == "3007004521239874601"
    assert call["text"] == "Thanks!"


async def test_photo_is_fetched_through_getfile(
    adapter: TelegramAdapter, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    fake = fake_telegram[0]
    fake.add_file("AgACAgQ-big", b"\xff\xd8jpeg-bytes", file_path="photos/file_7.jpg")
    ref = FileRef(
        file_id="AgACAgQ-big",
        file_unique_id="AQADx",
        filename="photo_AQADx.jpg",
        content_type="image/jpeg",
        size=12,
    )
    att = await adapter.fetch_file(ref)
    assert att.data == b"\xff\xd8jpeg-bytes"
    assert (att.filename, att.content_type) == ("photo_AQADx.jpg", "image/jpeg")
    assert fake.calls_of("getFile") == [{"file_id": "AgACAgQ-big"}]


async def test_file_over_the_limit_is_refused(
    fake_telegram: tuple[FakeTelegram, str], session: aiohttp.ClientSession
) -> None:
    fake, base = fake_telegram
    fake.add_file("big", b"x" * 100, file_path="documents/big.bin")
    adapter = TelegramAdapter(make_ctx(base, session, attachment_max_bytes=50))
    await adapter.start()
    try:
        # The announced size is wrong (unknown): the download itself is capped.
        ref = FileRef(
            file_id="big", file_unique_id="u", filename="b", content_type="x/y", size=None
        )
        with pytest.raises(ChannelError) as info:
            await adapter.fetch_file(ref)
    finally:
        await adapter.stop()
    assert info.value.code == "too_large"
    assert fake.calls_of("getFile")


async def test_unknown_file_is_a_permanent_failure(adapter: TelegramAdapter) -> None:
    ref = FileRef(file_id="nope", file_unique_id="u", filename="f", content_type="x/y")
    with pytest.raises(ChannelError) as info:
        await adapter.fetch_file(ref)
    assert info.value.retryable is False


async def test_bot_token_never_reaches_the_logs(
    adapter: TelegramAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await adapter.send(outbound())
    assert caplog.records
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
