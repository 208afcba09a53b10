"""The demo traffic generator produces mail our own parser reads right, over real SMTP."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from channels.email.outbound import compose
from channels.email.payloads import parse_email
from channels.email.testing.simulator import (
    VARIANTS,
    customer_reply,
    random_customer_mail,
    send_mail,
)
from channels.email.testing.sink import MailSink, start_sink
from config.settings import Settings
from contract.channel import OutboundMessage


@pytest.fixture
async def sink() -> AsyncIterator[MailSink]:
    running = await start_sink()
    yield running
    await running.stop()


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_parses_into_a_customer_message(variant: str) -> None:
    raw = random_customer_mail(random.Random(7), "support@support.example.com", variant=variant)
    parsed = parse_email(raw, mail_from="someone@example.org")
    assert parsed.kind == "message"
    assert parsed.customer is not None
    assert parsed.text.strip()
    assert "\ufffd" not in parsed.text
    expected = {
        "gbk": "朱镕基路",
        "cp1252": "€49.99 twice – the “premium” plan",
        "qp": "Grüße!",
        "html": "Hello,",
    }
    if variant in expected:
        assert expected[variant] in parsed.text
    if variant == "attachment":
        assert [a.filename for a in parsed.attachments] == ["Quittung März.pdf"]


def test_same_seed_gives_the_same_mail() -> None:
    one = random_customer_mail(random.Random(3), "support@support.example.com")
    two = random_customer_mail(random.Random(3), "support@support.example.com")
    assert parse_email(one).message_id == parse_email(two).message_id


async def test_send_mail_delivers_raw_bytes_including_null_sender(sink: MailSink) -> None:
    raw = random_customer_mail(random.Random(1), "support@support.example.com", variant="cp1252")
    await send_mail(
        sink.host, sink.port, raw, "rene.dubois@example.fr", "support@support.example.com"
    )
    got = await sink.next()
    assert got.raw.rstrip(b"\r\n") == raw.rstrip(b"\r\n")
    await send_mail(sink.host, sink.port, raw, "", ["support@support.example.com"])
    assert (await sink.next()).mail_from == "<>"


def test_customer_reply_to_a_hub_mail_threads_and_goes_to_the_reply_address() -> None:
    settings = Settings(demo=True)
    hub_mail, hub_id = compose(
        OutboundMessage(
            message_id=3,
            conversation_id=2,
            channel="email",
            to="alice@example.org",
            sender="support@support.example.com",
            text="Which colour was it?",
            subject="Order 4471 arrived damaged",
            thread_refs=("first@mail.example.org",),
            options={"reply_token": "abc123"},
        ),
        settings,
    )
    raw, rcpt = customer_reply(random.Random(2), hub_mail.as_bytes(), text="Blue.")
    assert rcpt == "reply+abc123@support.example.com"
    parsed = parse_email(raw)
    assert parsed.in_reply_to == (hub_id,)
    assert parsed.references == ("first@mail.example.org", hub_id)
    assert parsed.subject == "Re: Order 4471 arrived damaged"
    assert parsed.customer is not None
    assert parsed.customer.address == "alice@example.org"
    assert parsed.text == "Blue."
