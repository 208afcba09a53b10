"""Each kind of push WeChat sends, parsed into what the hub stores (no hub, no network)."""

from __future__ import annotations

import pytest

from channels.wechat.crypto import CryptoError, MessageCrypto, signature, signature_ok
from channels.wechat.payloads import MalformedPush, parse_push, parse_xml
from tests.channels.wechat.conftest import AES_KEY, APP_ID, OPENID, fixture


def parsed(name: str):  # type: ignore[no-untyped-def]
    return parse_push(parse_xml(fixture(name)), queue="wechat-q")


def test_the_documented_signature_vector_holds() -> None:
    expected = "f464b24fc39322e44b38aa78f5edd27bd1441696"
    assert signature("AAAAA", "1714036504", "1514711492") == expected
    assert signature_ok(expected.upper(), "1514711492", "AAAAA", "1714036504")
    assert not signature_ok(expected[:-1] + "0", "AAAAA", "1714036504", "1514711492")


def test_text_keeps_the_words_the_openid_and_the_msgid() -> None:
    push = parsed("text")
    message = push.message
    assert message is not None
    assert (message.sender_kind, message.sender) == ("wechat", OPENID)
    assert message.provider_id == "24530001234567890"
    assert message.text.startswith("你好，我的订单 #8812")
    assert message.recipient == "gh_0123456789ab"
    assert message.queue == "wechat-q"
    assert message.occurred_at is not None
    assert message.occurred_at.year == 2025


def test_unionid_is_a_verified_identifier() -> None:
    message = parsed("text_unionid").message
    assert message is not None
    (ident,) = message.identifiers
    assert (ident.kind, ident.address, ident.verified) == (
        "wechat_union",
        "uNiOnAbCdEfGhIjKlMnOpQrSt",
        True,
    )


@pytest.mark.parametrize(
    ("name", "content_type", "source"),
    [
        ("image", "image/jpeg", "media-image-1"),
        ("voice", "audio/amr", "media-voice-1"),
        ("video", "video/mp4", "media-video-1"),
        ("shortvideo", "video/mp4", "media-video-2"),
    ],
)
def test_media_is_announced_for_the_media_worker(name: str, content_type: str, source: str) -> None:
    message = parsed(name).message
    assert message is not None
    (att,) = message.attachments
    assert (att.state, att.content_type, att.source) == ("pending", content_type, source)
    assert message.text == ""


def test_voice_recognition_becomes_the_text_and_keeps_the_audio() -> None:
    message = parsed("voice_recognition").message
    assert message is not None
    assert message.text == "我想退货。"
    assert message.metadata["recognition"] is True
    assert message.attachments[0].source == "media-voice-2"


def test_location_and_link_are_readable_text_with_their_data_kept() -> None:
    location = parsed("location").message
    assert location is not None
    assert location.text == "📍 上海市黄浦区人民广场 (31.230416, 121.473701)"
    assert location.metadata["location"]["lat"] == "31.230416"
    link = parsed("link").message
    assert link is not None
    assert link.text == "订单详情\n我的订单页面\nhttps://shop.example/orders/8812"


def test_follow_and_unfollow_are_consent_not_conversations() -> None:
    for name, consent in [
        ("event_subscribe", True),
        ("event_subscribe_qrscene", True),
        ("event_unsubscribe", False),
    ]:
        push = parsed(name)
        assert (push.message, push.consent) == (None, consent), name


def test_menu_click_and_scan_are_events_keyed_by_sender_time_and_key() -> None:
    click = parsed("event_click").message
    assert click is not None
    assert click.kind == "event"
    assert click.text == "menu: CONTACT_SUPPORT"
    assert click.provider_id == f"ev:{OPENID}:1764900010:click:CONTACT_SUPPORT"
    scan = parsed("event_scan").message
    assert scan is not None
    assert scan.metadata["scene"] == "store42"


@pytest.mark.parametrize("name", ["event_location", "event_view", "unknown_type"])
def test_noise_and_unknown_types_are_not_stored(name: str) -> None:
    push = parsed(name)
    assert push.message is None
    assert push.reason


@pytest.mark.parametrize(
    "body",
    [
        b"not xml at all",
        b"<root><MsgType>text</MsgType></root>",
        b"<xml><MsgType>text</MsgType></xml>",
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaa">]>'
        b"<xml><Content>&a;</Content></xml>",
        b"<xml><ToUserName>gh_1</ToUserName><FromUserName>o12345678</FromUserName>"
        b"<MsgType>text</MsgType><Content>x</Content></xml>",  # no MsgId
    ],
)
def test_what_is_not_a_push_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPush):
        parse_push(parse_xml(body))


def test_safe_mode_round_trip_and_tampering() -> None:
    crypto = MessageCrypto(AES_KEY, APP_ID)
    xml = fixture("text")
    cipher = crypto.encrypt(xml)
    assert crypto.decrypt(cipher) == xml
    flipped = bytearray(cipher.encode())
    flipped[-10] = ord("A") if flipped[-10] != ord("A") else ord("B")
    with pytest.raises(CryptoError):
        crypto.decrypt(bytes(flipped).decode())
    with pytest.raises(CryptoError, match="another AppID"):
        MessageCrypto(AES_KEY, "wx0000000000000000").decrypt(cipher)
    with pytest.raises(CryptoError):
        crypto.decrypt("not base64!!")
