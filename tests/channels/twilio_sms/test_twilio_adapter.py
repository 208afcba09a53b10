"""Sending through the Twilio REST API (the local fake), media fetch, and the fake's callbacks."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from twilio.request_validator import RequestValidator

from channels.twilio_sms.adapter import TwilioMessagingAdapter, create
from channels.twilio_sms.const import PATH_STATUS
from channels.twilio_sms.media import MediaFetcher
from channels.twilio_sms.payloads import Media
from channels.twilio_sms.testing.fake_api import FakeTwilio
from contract.channel import ChannelContext, OutboundMessage
from contract.errors import ChannelError
from tests.channels.twilio_sms.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_URL,
    RecordingHub,
    twilio_settings,
)

SID = re.compile(r"^SM[0-9a-f]{32}$")


def _adapter(
    base: str, http: aiohttp.ClientSession, hub: RecordingHub | None = None, **settings: Any
) -> TwilioMessagingAdapter:
    ctx = ChannelContext(
        settings=twilio_settings(twilio_api_base=base, **settings),
        hub=hub or RecordingHub(),
        http=lambda: http,
    )
    adapter = create(ctx)
    assert adapter is not None
    return adapter


def _out(**kw: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "message_id": 1,
        "conversation_id": 1,
        "channel": "sms",
        "to": "+447700900123",
        "sender": "+14155550100",
        "text": "Your refund was issued today.",
    }
    values.update(kw)
    return OutboundMessage(**values)


def test_no_adapter_without_an_account_sid() -> None:
    settings = twilio_settings(twilio_account_sid="")
    ctx = ChannelContext(settings=settings, hub=RecordingHub(), http=aiohttp.ClientSession)
    assert create(ctx) is None


async def test_sms_send_returns_the_sid_and_queued_status(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    receipt = await _adapter(base, http).send(_out())
    assert SID.match(receipt.provider_id)
    assert receipt.status == "queued"
    [sent] = fake.sent
    assert sent["sid"] == receipt.provider_id
    assert sent["To"] == "+447700900123"
    assert sent["From"] == "+14155550100"
    assert sent["Body"] == "Your refund was issued today."
    assert sent["StatusCallback"] == f"{PUBLIC_URL}{PATH_STATUS}"


async def test_whatsapp_send_uses_whatsapp_addresses_on_both_sides(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    recent = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    await _adapter(base, http).send(
        _out(
            channel="whatsapp",
            sender="whatsapp:+14155238886",
            options={"last_inbound_at": recent},
        )
    )
    assert fake.sent[0]["To"] == "whatsapp:+447700900123"
    assert fake.sent[0]["From"] == "whatsapp:+14155238886"


async def test_template_is_sent_with_content_sid_and_variables(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    old = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    fake.whatsapp_window_closed.add("+447700900123")
    await _adapter(base, http).send(
        _out(
            channel="whatsapp",
            sender="whatsapp:+14155238886",
            options={
                "last_inbound_at": old,
                "template_sid": "HX" + "a" * 32,
                "template_variables": {"1": "Amelia", "2": "48213"},
            },
        )
    )
    sent = fake.sent[0]
    assert sent["ContentSid"] == "HX" + "a" * 32
    assert sent["ContentVariables"] == '{"1": "Amelia", "2": "48213"}'
    assert "Body" not in sent


async def test_messaging_service_sender_is_sent_as_service_sid(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    service = "MG0123456789abcdef0123456789abcdef"
    receipt = await _adapter(base, http).send(_out(sender=service))
    assert fake.sent[0]["MessagingServiceSid"] == service
    assert "From" not in fake.sent[0]
    assert receipt.status == "queued"  # Twilio says "accepted"; same rank for the hub


async def test_server_error_is_retryable(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    fake.fail_next = 1
    adapter = _adapter(base, http)
    with pytest.raises(ChannelError) as info:
        await adapter.send(_out())
    assert info.value.retryable
    assert fake.sent == []
    receipt = await adapter.send(_out())  # the next attempt goes through
    assert SID.match(receipt.provider_id)


async def test_rate_limit_is_retryable_after_the_given_delay(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    fake.fail_next, fake.fail_status, fake.retry_after = 1, 429, "7"
    with pytest.raises(ChannelError) as info:
        await _adapter(base, http).send(_out())
    assert info.value.retryable
    assert info.value.retry_after == 7.0


async def test_unsubscribed_recipient_is_final_and_recorded_as_opt_out(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    fake.unsubscribed.add("+447700900123")
    hub = RecordingHub()
    with pytest.raises(ChannelError) as info:
        await _adapter(base, http, hub).send(_out())
    assert not info.value.retryable
    assert info.value.code == "21610"
    assert "STOP" in str(info.value)
    assert hub.opt_outs == [
        {"kind": "phone", "address": "+447700900123", "channel": "sms", "opted_out": True}
    ]


async def test_whatsapp_outside_window_from_twilio_is_final_and_asks_for_a_template(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    fake.whatsapp_window_closed.add("+447700900123")
    with pytest.raises(ChannelError) as info:
        await _adapter(base, http).send(_out(channel="whatsapp", sender="whatsapp:+14155238886"))
    assert not info.value.retryable
    assert info.value.code == "63016"
    assert "template" in str(info.value)


async def test_whatsapp_free_text_after_24_hours_is_refused_without_calling_twilio(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    old = (datetime.now(UTC) - timedelta(hours=25)).isoformat()
    with pytest.raises(ChannelError) as info:
        await _adapter(base, http).send(
            _out(
                channel="whatsapp",
                sender="whatsapp:+14155238886",
                options={"last_inbound_at": old},
            )
        )
    assert info.value.code == "63016"
    assert not info.value.retryable
    assert fake.sent == []


async def test_wrong_credentials_are_final(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    _, base = fake_twilio
    with pytest.raises(ChannelError) as info:
        await _adapter(base, http, twilio_auth_token="wrong").send(_out())
    assert not info.value.retryable
    assert info.value.code == "20003"


async def test_unreachable_api_is_retryable(http: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ChannelError) as info:
        await _adapter(f"http://127.0.0.1:{port}", http).send(_out())
    assert info.value.retryable


async def test_reply_without_a_sender_is_refused(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    _, base = fake_twilio
    with pytest.raises(ChannelError) as info:
        await _adapter(base, http).send(_out(sender=None))
    assert not info.value.retryable
    assert info.value.code == "no_sender"


async def test_fake_posts_signed_sent_then_delivered_callbacks(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    received: list[tuple[dict[str, str], bool]] = []
    validator = RequestValidator(AUTH_TOKEN)

    async def status(request: web.Request) -> web.Response:
        form = await request.post()
        # Twilio signs the public URL it was given, whatever host actually answers.
        url = PUBLIC_URL + request.path_qs
        ok = validator.validate(url, form, request.headers.get("X-Twilio-Signature", ""))
        received.append(({k: str(v) for k, v in form.items()}, ok))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post(PATH_STATUS, status)
    async with TestServer(app) as server:
        fake.callbacks_enabled = True
        fake.callback_base = str(server.make_url("/"))
        receipt = await _adapter(base, http).send(_out())
        await fake.settle()
    assert [p["MessageStatus"] for p, _ in received] == ["sent", "delivered"]
    assert all(ok for _, ok in received)
    assert {p["MessageSid"] for p, _ in received} == {receipt.provider_id}
    assert received[0][0]["AccountSid"] == ACCOUNT_SID
    assert "RawDlrDoneDate" in received[1][0]
    assert [c.status for c in fake.callbacks] == [204, 204]


async def test_media_fetch_uses_basic_auth_and_follows_the_redirect(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    url = fake.add_media(b"\xff\xd8jpeg-bytes", "image/jpeg", base_url=base)
    fetcher = MediaFetcher(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_base=base, max_bytes=1000, timeout_s=5
    )
    [item] = await fetcher.fetch_all(http, (Media(index=0, url=url, content_type="image/jpeg"),))
    assert item.attachment.data == b"\xff\xd8jpeg-bytes"
    assert item.attachment.filename is not None
    assert item.attachment.filename.endswith(".jpg")
    assert item.note["status"] == "stored"
    assert [ok for _, ok in fake.media_requests] == [True, True]
    assert fake.media_requests[1][0].startswith("/media/")


async def test_media_over_the_limit_keeps_a_note_and_no_bytes(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    url = fake.add_media(b"x" * 5000, "video/mp4", base_url=base)
    fetcher = MediaFetcher(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_base=base, max_bytes=1000, timeout_s=5
    )
    [item] = await fetcher.fetch_all(http, (Media(index=0, url=url, content_type="video/mp4"),))
    assert (item.attachment.state, item.attachment.source) == ("failed", None)
    assert item.note["status"] == "too_large"
    assert "5000 bytes" in item.attachment.error


async def test_media_credentials_go_only_to_twilio(
    fake_twilio: tuple[FakeTwilio, str], http: aiohttp.ClientSession
) -> None:
    fake, base = fake_twilio
    url = fake.add_media(b"data", "image/png", base_url=base)
    # Same server, but named as another origin: no credentials, so the fake refuses.
    other = url.replace("127.0.0.1", "localhost")
    fetcher = MediaFetcher(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_base=base, max_bytes=1000, timeout_s=5
    )
    [item] = await fetcher.fetch_all(http, (Media(index=0, url=other, content_type="image/png"),))
    assert (item.attachment.state, item.attachment.source) == ("failed", None)
    assert item.note["status"] == "refused"  # not Twilio's host: never even asked
    assert fake.media_requests == []
