"""Our Message-ID is the same on every attempt at one message (receiving systems drop the
repeat of a mail we sent before dying), and still unguessable from outside."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import ClientSession

from channels.email.adapter import EmailAdapter, create
from channels.email.outbound import new_message_id
from channels.email.testing.sink import MailSink, start_sink
from config.settings import Settings
from contract.channel import ChannelContext, OutboundMessage

DOMAIN = "support.example.com"
OURS = re.compile(r"^hub\.(\d+)\.([0-9a-f]{16})@support\.example\.com$")


@pytest.fixture
async def sink() -> AsyncIterator[MailSink]:
    running = await start_sink()
    yield running
    await running.stop()


class _NoHub:
    """Outbound never calls the hub; any call here is a bug in the adapter."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"outbound must not call hub.{name}")


def _http() -> ClientSession:
    raise AssertionError("email needs no HTTP client")


def _adapter(port: int) -> EmailAdapter:
    settings = Settings(demo=True, relay_host="127.0.0.1", relay_port=port, smtp_enabled=False)
    created = create(ChannelContext(settings=settings, hub=_NoHub(), http=_http))
    assert created is not None
    return created


def _reply(**overrides: Any) -> OutboundMessage:
    """A reply as the outbox builds it on each attempt."""
    values: dict[str, Any] = {
        "message_id": 812,
        "conversation_id": 64,
        "channel": "email",
        "to": "alice@example.org",
        "sender": "support@support.example.com",
        "text": "Hello Alice,\nthe new lid is on its way.",
        "subject": "Order 4471 arrived damaged",
        "options": {"reply_token": "9c4e1f0a7b2d5e8c3a61", "auto": False},
        "idempotency_key": "hub-msg-812",
    }
    values.update(overrides)
    return OutboundMessage(**values)


async def test_a_second_attempt_sends_the_same_message_id(sink: MailSink) -> None:
    adapter = _adapter(sink.port)
    # The relay took the first attempt, but its answer never got recorded: sent again.
    first = await adapter.send(_reply())
    second = await adapter.send(_reply())
    one, two = sink.received
    assert one.message["Message-ID"] == two.message["Message-ID"] == f"<{first.provider_id}>"
    assert first.provider_id == second.provider_id
    match = OURS.match(first.provider_id)
    assert match is not None
    assert match.group(1) == "812"


def test_the_id_is_derived_from_the_key_and_the_conversations_secret_token() -> None:
    base = _reply()
    ours = new_message_id(base, DOMAIN)
    # What may differ between attempts (the subject follows the conversation's) does not count.
    assert new_message_id(replace(base, subject="Re: x", thread_refs=("a@b",)), DOMAIN) == ours
    others = {
        "another message": replace(base, message_id=813, idempotency_key="hub-msg-813"),
        # A database restored from a backup hands out message ids again: another mail then
        # differs in its token, recipient or text.
        "another token": replace(base, options={"reply_token": "0d3b6a2e9f417c58e1b4"}),
        "another text": replace(base, text="Hello Alice, your refund is on its way."),
        "another conversation": replace(base, conversation_id=65),
        "another recipient": replace(base, to="bob@example.org"),
    }
    ids = {case: new_message_id(message, DOMAIN) for case, message in others.items()}
    assert all(OURS.match(i) for i in ids.values())
    assert ours not in ids.values()
    assert len(set(ids.values())) == len(ids)


def test_without_an_idempotency_key_each_attempt_is_its_own_mail() -> None:
    bare = _reply(idempotency_key="")
    first, second = new_message_id(bare, DOMAIN), new_message_id(bare, DOMAIN)
    assert first != second
    assert OURS.match(first)
    assert OURS.match(second)
