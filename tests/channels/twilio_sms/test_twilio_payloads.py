"""Parsing Twilio's real-shaped form bodies into typed payloads and channel-neutral messages."""

from __future__ import annotations

import pytest

from channels.twilio_sms.const import STATUS_PRECEDENCE, TWILIO_STATUS
from channels.twilio_sms.payloads import MalformedPayload, parse_inbound, parse_status
from channels.twilio_sms.webhook import inbound_message
from contract.errors import InvalidInput
from tests.channels.twilio_sms.conftest import ACCOUNT_SID, OUTBOUND_SID, fixture_form


def test_plain_sms_is_parsed_with_sender_recipient_and_text() -> None:
    p = parse_inbound(fixture_form("inbound__sms_plain"))
    assert p.channel == "sms"
    assert p.message_sid == "SM1f2e3d4c5b6a79880716253443526170"
    assert p.account_sid == ACCOUNT_SID
    assert p.sender == "+447700900123"
    assert p.to == "+14155550100"
    assert p.body == "Hi, my order #48213 hasn't arrived yet. Can someone check?"
    assert p.media == ()
    assert p.keyword is None
    assert p.num_segments == 1


def test_unicode_and_emoji_survive_form_decoding() -> None:
    p = parse_inbound(fixture_form("inbound__sms_unicode_emoji"))
    assert p.body == "Grüße aus München 👋 — ça va? 你好 🇬🇧 +1 & 50% off?"
    assert p.sender == "+12025550143"


def test_mms_media_come_in_index_order_with_content_types() -> None:
    p = parse_inbound(fixture_form("inbound__mms_two_media"))
    assert p.message_sid.startswith("MM")
    assert [m.index for m in p.media] == [0, 1]
    assert [m.content_type for m in p.media] == ["image/jpeg", "image/png"]
    assert p.media[0].url.endswith("/Media/ME4c5d6e7f8091a2b3c4d5e6f708192a3b")
    assert p.media[1].url.endswith("/Media/ME5d6e7f8091a2b3c4d5e6f708192a3b4c")


def test_whatsapp_is_told_by_the_prefix_and_carries_the_profile_name() -> None:
    p = parse_inbound(fixture_form("inbound__whatsapp_text"))
    assert p.channel == "whatsapp"
    assert p.from_ == "whatsapp:+447700900123"
    assert p.sender == "+447700900123"
    assert p.to == "whatsapp:+14155238886"
    assert p.profile_name == "Amelia Jones"
    assert p.wa_id == "447700900123"


def test_button_reply_asking_for_an_agent_is_a_handoff() -> None:
    p = parse_inbound(fixture_form("inbound__whatsapp_button_reply"))
    assert p.button is not None
    assert p.button.payload == "agent"
    assert p.button.text == "Talk to an agent"
    assert p.button.handoff
    assert p.replied_to_sid == "SM0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def test_shared_location_is_typed() -> None:
    p = parse_inbound(fixture_form("inbound__whatsapp_location"))
    assert p.location is not None
    assert p.location.latitude == pytest.approx(51.5033635)
    assert p.location.longitude == pytest.approx(-0.1276248)
    assert p.location.label == "Office"
    assert p.location.address == "10 Downing St, London SW1A 2AA"


def test_stop_with_opt_out_type_is_a_stop() -> None:
    p = parse_inbound(fixture_form("inbound__stop"))
    assert p.opt_out_type == "STOP"
    assert p.keyword == "stop"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STOP", "stop"),
        ("  stop \n", "stop"),
        ("Unsubscribe", "stop"),
        ("stopall", "stop"),
        ("Cancel", "stop"),
        ("end", "stop"),
        ("quit", "stop"),
        ("Start ", "start"),
        ("yes", "start"),
        ("UNSTOP", "start"),
        ("help", "help"),
        ("please stop sending the wrong size", None),
        ("", None),
    ],
)
def test_opt_out_keywords_are_whole_trimmed_case_insensitive_bodies(
    body: str, expected: str | None
) -> None:
    form = fixture_form("inbound__sms_plain") | {"Body": body}
    assert parse_inbound(form).keyword == expected


def test_opt_out_type_wins_over_the_body() -> None:
    form = fixture_form("inbound__sms_plain") | {"Body": "arret", "OptOutType": "STOP"}
    assert parse_inbound(form).keyword == "stop"


def test_long_multisegment_sms_keeps_its_newline() -> None:
    p = parse_inbound(fixture_form("inbound__long_multisegment_newline"))
    assert "twice.\nCould you" in p.body
    assert len(p.body) > 306
    assert p.num_segments == 3


def test_unknown_parameters_are_kept_and_blank_ones_dropped() -> None:
    form = fixture_form("inbound__sms_plain") | {"BrandNewParam": "x", "AnotherBlank": ""}
    p = parse_inbound(form)
    assert p.extra["BrandNewParam"] == "x"
    assert p.extra["ToCity"] == "SAN FRANCISCO"
    assert "AnotherBlank" not in p.extra
    assert "FromCity" not in p.extra
    assert "Body" not in p.extra
    assert "MessageSid" not in p.extra


def test_provider_media_urls_are_not_kept_as_metadata() -> None:
    p = parse_inbound(fixture_form("inbound__mms_two_media"))
    assert not any(k.startswith("MediaUrl") for k in p.extra)
    assert p.extra["MediaContentType1"] == "image/png"


@pytest.mark.parametrize("name", ["inbound__malformed_no_sid", "inbound__malformed_bad_sid"])
def test_malformed_bodies_raise_a_400_error(name: str) -> None:
    with pytest.raises(MalformedPayload):
        parse_inbound(fixture_form(name))
    assert issubclass(MalformedPayload, InvalidInput)


def test_body_without_from_is_malformed() -> None:
    form = fixture_form("inbound__sms_plain")
    del form["From"]
    with pytest.raises(MalformedPayload, match="From"):
        parse_inbound(form)


def test_inbound_message_keeps_whatsapp_sender_for_replies_and_flags_handoff() -> None:
    msg = inbound_message(
        parse_inbound(fixture_form("inbound__whatsapp_button_reply")), (), queue="support"
    )
    assert msg.channel == "whatsapp"
    assert msg.sender_kind == "phone"
    assert msg.sender == "+447700900124"
    assert msg.recipient == "whatsapp:+14155238886"
    assert msg.display_name == "Ravi Patel"
    assert msg.thread_refs == ("SM0a1b2c3d4e5f60718293a4b5c6d7e8f9",)
    assert msg.metadata["handoff"] is True
    assert msg.metadata["button"]["payload"] == "agent"
    assert msg.metadata["WaId"] == "447700900124"
    assert msg.queue == "support"


def test_location_without_body_gets_a_readable_text() -> None:
    msg = inbound_message(parse_inbound(fixture_form("inbound__whatsapp_location")), (), queue=None)
    assert msg.text.startswith("Location: Office, 10 Downing St")
    assert msg.metadata["location"]["latitude"] == pytest.approx(51.5033635)


@pytest.mark.parametrize(
    ("name", "status", "error", "channel"),
    [
        ("status__sent", "sent", None, "sms"),
        ("status__delivered", "delivered", None, "sms"),
        ("status__failed_error", "failed", "30008", "sms"),
        ("status__undelivered_30003", "undelivered", "30003", "sms"),
        ("status__whatsapp_failed_63016", "failed", "63016", "whatsapp"),
        ("status__whatsapp_read", "read", None, "whatsapp"),
    ],
)
def test_status_callbacks_are_parsed(
    name: str, status: str, error: str | None, channel: str
) -> None:
    p = parse_status(fixture_form(name))
    assert p.message_sid == OUTBOUND_SID
    assert p.status == status
    assert p.error_code == error
    assert p.channel == channel


def test_whatsapp_failure_keeps_the_channel_status_message() -> None:
    p = parse_status(fixture_form("status__whatsapp_failed_63016"))
    assert p.error_message is not None
    assert "outside the allowed window" in p.error_message


def test_status_precedence_only_moves_forward() -> None:
    order = ["queued", "sending", "sent", "delivered", "read"]
    ranks = [STATUS_PRECEDENCE[s] for s in order]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)
    assert STATUS_PRECEDENCE["accepted"] == STATUS_PRECEDENCE["queued"]
    assert STATUS_PRECEDENCE["failed"] == STATUS_PRECEDENCE["undelivered"]
    assert STATUS_PRECEDENCE["failed"] == STATUS_PRECEDENCE["delivered"]
    assert set(STATUS_PRECEDENCE) <= set(TWILIO_STATUS)
    assert TWILIO_STATUS["received"] is None
