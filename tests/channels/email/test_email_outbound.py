"""Outbound replies composed by the adapter and delivered to a real aiosmtpd relay sink."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiohttp import ClientSession

from channels.email.adapter import EmailAdapter, create
from channels.email.outbound import reply_subject
from channels.email.testing.sink import MailSink, start_sink
from config.settings import Settings
from contract.channel import Attachment, ChannelContext, OutboundMessage
from contract.errors import ChannelError

FIRST = "CAF7kQx3p0aT1wM+q7nU2e=Yb0dH8k@mail.example.org"
HUB_17 = "hub.17.3f9a0c1d@support.example.com"
SECOND = "CAF7kQx0Zt9hR4sLm2w=Qp8jX5cV1n@mail.example.org"


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


def adapter_for(port: int, **overrides: Any) -> EmailAdapter:
    settings = Settings(
        demo=True,
        relay_host="127.0.0.1",
        relay_port=port,
        smtp_enabled=False,
        **overrides,
    )
    created = create(ChannelContext(settings=settings, hub=_NoHub(), http=_http))
    assert created is not None
    return created


def reply(**overrides: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "message_id": 77,
        "conversation_id": 5,
        "channel": "email",
        "to": "alice@example.org",
        "sender": "support@support.example.com",
        "text": "Hello Alice,\nwe are sending a new lid today.\n\nKind regards, Support",
        "subject": "Order 4471 arrived damaged",
        "thread_refs": (FIRST, HUB_17, SECOND),
        "options": {"reply_token": "tok3f9a0c1d2e4b"},
    }
    values.update(overrides)
    return OutboundMessage(**values)


async def test_reply_is_threaded_with_message_id_in_reply_to_and_references(
    sink: MailSink,
) -> None:
    adapter = adapter_for(sink.port)
    receipt = await adapter.send(reply())
    mail = await sink.next()
    msg = mail.message
    assert receipt.status == "sent"
    assert receipt.provider_id.startswith("hub.77.")
    assert receipt.provider_id.endswith("@support.example.com")
    assert msg["Message-ID"] == f"<{receipt.provider_id}>"
    assert msg["In-Reply-To"] == f"<{SECOND}>"
    assert msg["References"].split() == [f"<{FIRST}>", f"<{HUB_17}>", f"<{SECOND}>"]
    assert msg["Reply-To"] == "reply+tok3f9a0c1d2e4b@support.example.com"
    assert msg["Subject"] == "Re: Order 4471 arrived damaged"
    assert msg["From"] == "Support <support@support.example.com>"
    assert msg["To"] == "alice@example.org"
    assert msg["Auto-Submitted"] is None
    assert msg["Date"] is not None
    assert mail.rcpt_tos == ("alice@example.org",)
    assert mail.mail_from == "support@support.example.com"
    body = msg.get_body(("plain",))
    assert isinstance(body, EmailMessage)
    assert body.get_content().replace("\r\n", "\n") == (
        "Hello Alice,\nwe are sending a new lid today.\n\nKind regards, Support\n"
    )


async def test_many_references_are_folded_and_every_line_is_short(sink: MailSink) -> None:
    refs = tuple(f"id{n:03d}.{'x' * 30}@mail.example.org" for n in range(20))
    adapter = adapter_for(sink.port)
    await adapter.send(reply(thread_refs=refs))
    mail = await sink.next()
    assert max(len(line) for line in mail.raw.split(b"\r\n")) <= 998
    assert b"\r\n <id001." in mail.raw or b"\r\n\t<id001." in mail.raw
    assert mail.message["References"].split() == [f"<{r}>" for r in refs]
    assert mail.message["In-Reply-To"] == f"<{refs[-1]}>"


async def test_synthetic_ids_never_go_out_in_references(sink: MailSink) -> None:
    synthetic = "0f" * 32 + "@hub.invalid"
    await adapter_for(sink.port).send(reply(thread_refs=(synthetic,)))
    msg = (await sink.next()).message
    assert msg["References"] is None
    assert msg["In-Reply-To"] is None
    assert msg["Subject"] == "Order 4471 arrived damaged"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Order 4471 arrived damaged", "Re: Order 4471 arrived damaged"),
        ("Re: Order 4471", "Re: Order 4471"),
        ("RE: Re: AW: Order 4471", "Re: Order 4471"),
        ("回复: 订单", "Re: 订单"),
        ("Re[2]: Order", "Re: Order"),
        ("Fwd: Order", "Re: Fwd: Order"),
        ("Regarding order", "Re: Regarding order"),
        ("", "Re: Your request #5"),
        (None, "Re: Your request #5"),
    ],
)
def test_re_prefix_is_added_exactly_once(subject: str | None, expected: str) -> None:
    assert reply_subject(subject, is_reply=True, conversation_id=5) == expected


async def test_non_ascii_subject_is_encoded_and_decodes_back(sink: MailSink) -> None:
    await adapter_for(sink.port).send(
        reply(subject="订单88231未收到（王堃）", to="wangkun@example.cn")
    )
    mail = await sink.next()
    head = mail.raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert b"=?utf-8?" in head
    assert mail.message["Subject"] == "Re: 订单88231未收到（王堃）"


async def test_acknowledgement_is_marked_auto_submitted(sink: MailSink) -> None:
    await adapter_for(sink.port).send(reply(options={"reply_token": "t1", "auto": True}))
    msg = (await sink.next()).message
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"


async def test_reply_answers_from_the_mailbox_the_customer_wrote_to(sink: MailSink) -> None:
    adapter = adapter_for(sink.port)
    await adapter.send(reply(sender="billing@support.example.com"))
    assert (await sink.next()).message["From"] == "Support <billing@support.example.com>"
    await adapter.send(reply(sender="unknown@elsewhere.example"))
    assert (await sink.next()).message["From"] == "Support <support@support.example.com>"


async def test_attachments_go_out_with_names_types_and_bytes(sink: MailSink) -> None:
    pdf = b"%PDF-1.4\n% label\n%%EOF\n"
    await adapter_for(sink.port).send(
        reply(
            attachments=(
                Attachment(
                    filename="Rücksendeetikett.pdf", content_type="application/pdf", data=pdf
                ),
                Attachment(filename="notes.txt", content_type="text/plain", data=b"a\nb\n"),
            )
        )
    )
    msg = (await sink.next()).message
    parts = list(msg.iter_attachments())
    assert [p.get_filename() for p in parts] == ["Rücksendeetikett.pdf", "notes.txt"]
    assert parts[0].get_content_type() == "application/pdf"
    assert parts[0].get_payload(decode=True) == pdf
    assert parts[1].get_payload(decode=True) == b"a\nb\n"


async def test_refused_recipient_is_a_permanent_error(sink: MailSink) -> None:
    sink.rcpt_replies["gone@example.net"] = "550 5.1.1 <gone@example.net>: User unknown"
    with pytest.raises(ChannelError) as info:
        await adapter_for(sink.port).send(reply(to="gone@example.net"))
    assert info.value.retryable is False
    assert info.value.code == "550"
    assert "User unknown" in str(info.value)
    assert sink.received == []


async def test_temporary_relay_failure_is_retryable(sink: MailSink) -> None:
    sink.rcpt_replies["busy@example.net"] = "451 4.7.1 Greylisted, try again later"
    with pytest.raises(ChannelError) as info:
        await adapter_for(sink.port).send(reply(to="busy@example.net"))
    assert info.value.retryable is True
    assert info.value.code == "451"
    sink.data_reply = "452 4.3.1 Insufficient system storage"
    with pytest.raises(ChannelError) as data_info:
        await adapter_for(sink.port).send(reply())
    assert data_info.value.retryable is True
    assert data_info.value.code == "452"


async def test_data_rejected_permanently_is_not_retried(sink: MailSink) -> None:
    sink.data_reply = "554 5.7.1 Message rejected as spam"
    with pytest.raises(ChannelError) as info:
        await adapter_for(sink.port).send(reply())
    assert (info.value.retryable, info.value.code) == (False, "554")


async def test_nothing_listening_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The port is closed again: connecting is refused.
    with pytest.raises(ChannelError) as info:
        await adapter_for(port).send(reply())
    assert info.value.retryable is True


async def test_non_email_address_is_refused_without_connecting() -> None:
    with pytest.raises(ChannelError) as info:
        await adapter_for(9).send(reply(to="+447700900123"))
    assert info.value.retryable is False


def test_adapter_contract_and_factory() -> None:
    adapter = adapter_for(2526)
    assert adapter.channels == frozenset({"email"})
    assert list(adapter.routes()) == []
    assert adapter.smtp_port is None
    none = create(
        ChannelContext(
            settings=Settings(demo=True, smtp_enabled=False, relay_host=""),
            hub=_NoHub(),
            http=_http,
        )
    )
    assert none is None
