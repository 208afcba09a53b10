"""Every Update fixture parses into the expected channel-neutral message (no network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from channels.telegram.const import HANDLED_UPDATES
from channels.telegram.payloads import (
    PARSERS,
    FileRef,
    MalformedUpdate,
    ParsedUpdate,
    parse_update,
)
from contract.channel import Identifier

FIXTURES = Path(__file__).parent / "fixtures"
OLIVIA = "700100201"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"update__{name}.json").read_bytes())
    return data


def parse(name: str) -> ParsedUpdate:
    return parse_update(load(name), queue="support")


def test_private_text_keys_customer_by_user_and_conversation_by_chat() -> None:
    parsed = parse("text")
    msg = parsed.message
    assert msg is not None
    assert (msg.channel, msg.sender_kind, msg.sender) == ("telegram", "telegram", OLIVIA)
    assert msg.provider_id == "700100201:51"
    assert msg.thread_key == "700100201"
    assert msg.threading == "explicit"
    assert msg.kind == "message"
    assert msg.text == "Hi, my order #48213 hasn't arrived yet."
    assert msg.display_name == "Olivia Brown"
    assert msg.language == "en"
    assert msg.queue == "support"
    assert msg.occurred_at == datetime.fromtimestamp(1763900051, UTC)
    assert msg.metadata["update_id"] == 811300001
    assert msg.metadata["chat_type"] == "private"
    assert msg.metadata["username"] == "olivia_b"
    assert parsed.files == ()
    assert parsed.callback_query_id is None


def test_unicode_escaped_json_decodes_to_the_real_text() -> None:
    raw = (FIXTURES / "update__text_unicode_escaped.json").read_text()
    assert "\\ud83d\\udce6" in raw  # the fixture really is \u-escaped, emoji as surrogates
    msg = parse("text_unicode_escaped").message
    assert msg is not None
    assert msg.text == "¿Dónde está mi pedido? 📦 你好"
    assert msg.display_name == "Mateo García"
    assert msg.language == "es"


def test_photo_keeps_only_the_largest_size() -> None:
    parsed = parse("photo")
    assert parsed.message is not None
    assert parsed.message.text == "This is what arrived"
    assert parsed.files == (
        FileRef(
            file_id="AgACAgQAAxkBAAIBNGdRp3-S_xlarge",
            file_unique_id="AQADsbgxG8-K0FF4",
            filename="photo_AQADsbgxG8-K0FF4.jpg",
            content_type="image/jpeg",
            size=160211,
        ),
    )
    assert parsed.message.metadata["photo"]["width"] == 1280


def test_document_is_one_file_with_its_name_and_type() -> None:
    parsed = parse("document")
    assert parsed.message is not None
    assert parsed.message.text == "Here's the invoice"
    (ref,) = parsed.files
    assert (ref.filename, ref.content_type, ref.size) == (
        "invoice-48213.pdf",
        "application/pdf",
        48213,
    )
    assert ref.file_id == "BQACAgQAAxkBAAIBNWdRp_invoice"


def test_voice_note_is_an_audio_attachment_without_transcript() -> None:
    parsed = parse("voice")
    assert parsed.message is not None
    assert parsed.message.text == ""
    (ref,) = parsed.files
    assert ref.content_type == "audio/ogg"
    assert ref.filename.endswith(".ogg")
    assert parsed.message.metadata["voice"]["duration"] == 4
    assert parsed.message.metadata["transcript"] is None


def test_location_becomes_pin_text_and_metadata() -> None:
    msg = parse("location").message
    assert msg is not None
    assert msg.text == "📍 51.500729, -0.124625"
    assert msg.metadata["location"] == {"latitude": 51.500729, "longitude": -0.124625}


def test_own_contact_gives_verified_phone_with_plus() -> None:
    msg = parse("contact_own").message
    assert msg is not None
    assert msg.identifiers == (Identifier(kind="phone", address="+447700900123", verified=True),)
    assert msg.metadata["contact"]["own"] is True
    assert "+447700900123" in msg.text


def test_third_party_contact_gives_no_identifier() -> None:
    msg = parse("contact_third_party").message
    assert msg is not None
    assert msg.identifiers == ()
    assert msg.metadata["contact"]["own"] is False
    assert msg.metadata["contact"]["phone_number"] == "+15555550123"
    assert msg.sender == OLIVIA


def test_edited_message_names_the_original_provider_id() -> None:
    parsed = parse("edited_message")
    msg = parsed.message
    assert msg is not None
    assert msg.kind == "edit"
    assert msg.provider_id == parse("text").message.provider_id  # type: ignore[union-attr]
    assert msg.text == "Hi, my order #48213 hasn't arrived yet. It was due on Monday."
    assert msg.occurred_at == datetime.fromtimestamp(1763900120, UTC)
    assert parsed.files == ()


def test_csat_callback_is_a_score_and_never_the_bots_text() -> None:
    parsed = parse("callback_query_csat")
    msg = parsed.message
    assert msg is not None
    assert msg.kind == "csat"
    assert msg.metadata["score"] == 5
    assert msg.provider_id == "cb:3007004521239874601"
    assert msg.thread_key == "700100201"
    assert msg.sender == OLIVIA
    assert "How did we do" not in msg.text
    assert parsed.callback_query_id == "3007004521239874601"
    assert parsed.callback_answer


def test_other_callback_data_is_an_event() -> None:
    parsed = parse("callback_query_menu")
    msg = parsed.message
    assert msg is not None
    assert msg.kind == "event"
    assert msg.text == "menu:billing"
    assert msg.metadata["callback_data"] == "menu:billing"
    assert "What can we help" not in msg.text
    assert parsed.callback_query_id == "3007004521239874602"
    assert parsed.callback_answer is None


def test_out_of_range_csat_is_an_event_not_a_score() -> None:
    data = load("callback_query_csat")
    data["callback_query"]["data"] = "csat:9"
    msg = parse_update(data).message
    assert msg is not None
    assert msg.kind == "event"
    assert "score" not in msg.metadata


def test_start_deep_link_is_a_command_with_payload() -> None:
    msg = parse("start_deeplink").message
    assert msg is not None
    assert msg.kind == "command"
    assert msg.metadata["command"] == "start"
    assert msg.metadata["payload"] == "order-48213"
    assert msg.text == "/start order-48213"


def test_start_without_payload_and_addressed_command() -> None:
    data = load("start_deeplink")
    data["message"]["text"] = "/help@hub_support_bot"
    data["message"]["entities"][0]["length"] = len("/help@hub_support_bot")
    msg = parse_update(data).message
    assert msg is not None
    assert msg.kind == "command"
    assert msg.metadata == {**msg.metadata, "command": "help", "payload": None}


def test_group_message_is_its_own_conversation_keyed_by_group_chat() -> None:
    msg = parse("group_text").message
    assert msg is not None
    assert msg.sender == OLIVIA
    assert msg.thread_key == "-1001234567890"
    assert msg.provider_id == "-1001234567890:377"
    assert msg.subject == "Acme Customers"
    assert msg.metadata["chat_type"] == "supergroup"


@pytest.mark.parametrize("name", ["message_reaction", "unknown_type"])
def test_reactions_and_unknown_types_store_nothing(name: str) -> None:
    parsed = parse(name)
    assert parsed.message is None
    assert parsed.reason
    assert parsed.update_type in ("message_reaction", "future_feature_update")


def test_malformed_update_raises_malformed() -> None:
    with pytest.raises(MalformedUpdate):
        parse("malformed")


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"message": {}},
        {"update_id": "7", "message": {}},
        {
            "update_id": 7,
            "message": {
                "message_id": "x",
                "chat": {"id": 1, "type": "private"},
                "date": 1,
                "from": {"id": 1, "is_bot": False, "first_name": "A"},
            },
        },
        {"update_id": 7, "callback_query": {"from": {"id": 1, "is_bot": False, "first_name": "A"}}},
    ],
)
def test_structurally_wrong_updates_are_malformed(data: Any) -> None:
    with pytest.raises(MalformedUpdate):
        parse_update(data)


def test_service_messages_channel_posts_and_bots_are_skipped() -> None:
    data = load("text")
    del data["message"]["text"]
    data["message"]["new_chat_title"] = "renamed"
    assert parse_update(data).message is None
    data = load("text")
    data["message"]["from"]["is_bot"] = True
    assert parse_update(data).message is None
    data = load("text")
    data["message"]["chat"] = {"id": -1009, "title": "News", "type": "channel"}
    assert parse_update(data).message is None


def test_dispatch_table_covers_exactly_the_handled_types() -> None:
    assert set(PARSERS) == set(HANDLED_UPDATES)
