"""Every fixture delivered over real SMTP to the hub's listener, checked through the REST API."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiosmtplib
import pytest
from aiohttp.test_utils import TestClient

from channels.email.adapter import EmailAdapter
from channels.email.testing.simulator import customer_reply
from channels.email.testing.sink import MailSink, start_sink
from hub.web import keys
from server import lifecycle
from tests.channels.email.hostile import hostile_mail
from tests.conftest import AUTH

FIXTURES = Path(__file__).parent / "fixtures"
SUPPORT = "support@support.example.com"
BILLING = "billing@support.example.com"
Client = TestClient[Any, Any]


# ---------------------------------------------------------------------- plumbing
def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


async def smtp(
    port: int,
    raw: bytes,
    *,
    mail_from: str = "customer@example.org",
    rcpts: tuple[str, ...] = (SUPPORT,),
    utf8: bool = False,
) -> aiosmtplib.SMTPResponse:
    """One SMTP transaction; the server's answer to DATA (errors raise aiosmtplib errors)."""
    options = ["SMTPUTF8"] if utf8 else []
    if not raw.isascii():
        options.append("BODY=8BITMIME")
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10)
    async with client:
        await client.mail(mail_from, options=options)
        for rcpt in rcpts:
            await client.rcpt(rcpt)
        return await client.data(raw)


async def deliver(port: int, name: str, **kwargs: Any) -> None:
    response = await smtp(port, fixture(name), **kwargs)
    assert response.code == 250, (name, response)


async def get(client: Client, path: str) -> Any:
    resp = await client.get(path, headers=AUTH)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def customer(client: Client, email: str) -> dict[str, Any] | None:
    items = (await get(client, f"/api/v1/customers?email={quote(email)}"))["items"]
    assert len(items) <= 1
    return items[0] if items else None


async def all_customers(client: Client) -> list[dict[str, Any]]:
    return list((await get(client, "/api/v1/customers?limit=200"))["items"])


async def conversations(client: Client, customer_id: int) -> list[dict[str, Any]]:
    return list((await get(client, f"/api/v1/customers/{customer_id}/conversations"))["items"])


async def messages(client: Client, conversation_id: int) -> list[dict[str, Any]]:
    """Oldest first."""
    page = await get(client, f"/api/v1/conversations/{conversation_id}/messages?limit=200")
    return list(reversed(page["items"]))


async def only_conversation(client: Client, email: str) -> dict[str, Any]:
    found = await customer(client, email)
    assert found is not None, email
    (conv,) = await conversations(client, found["id"])
    return conv


async def agent_reply(client: Client, conversation_id: int, text: str) -> dict[str, Any]:
    resp = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages", json={"text": text}, headers=AUTH
    )
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def sent(client: Client, sink: MailSink) -> Any:
    """The next mail the hub handed to the relay, after the outbox stored its receipt."""
    mail = await sink.next()
    await client.app[lifecycle.OUTBOX].drain()
    return mail


@pytest.fixture
async def sink() -> AsyncIterator[MailSink]:
    running = await start_sink()
    yield running
    await running.stop()


async def email_hub(hub_client: Any, sink: MailSink, **overrides: Any) -> tuple[Client, int]:
    client: Client = await hub_client(
        smtp_enabled=True, smtp_port=0, relay_port=sink.port, **overrides
    )
    adapter = client.app[keys.ADAPTERS]["email"]
    assert isinstance(adapter, EmailAdapter)
    assert adapter.smtp_port is not None
    return client, adapter.smtp_port


# ---------------------------------------------------------------------- threading
async def test_thread_of_three_reply_all_and_auto_reply_stay_in_one_conversation(
    hub_client: Any, sink: MailSink
) -> None:
    client, port = await email_hub(hub_client, sink)
    await deliver(port, "thread_1_first.eml", mail_from="alice@example.org")
    conv = await only_conversation(client, "alice@example.org")
    assert conv["channel"] == "email"
    assert conv["subject"] == "Order 4471 arrived damaged"
    assert conv["queue"] == "support"
    assert conv["our_address"] == SUPPORT
    for name in ("thread_2_reply.eml", "thread_3_reply.eml", "reply_references_only.eml"):
        await deliver(
            port,
            name,
            mail_from="alice@example.org",
            rcpts=("reply+3f9a0c1d2e4b5a6c7d8e@support.example.com",),
        )
    await deliver(
        port,
        "reply_all_other_participant.eml",
        mail_from="bob.chen@example.org",
        rcpts=("reply+3f9a0c1d2e4b5a6c7d8e@support.example.com",),
    )
    await deliver(port, "auto_reply_ooo.eml", mail_from="alice@example.org")
    # Still exactly one conversation, holding all six mails in order.
    conv = await only_conversation(client, "alice@example.org")
    stored = await messages(client, conv["id"])
    assert [m["provider_id"] for m in stored] == [
        "CAF7kQx3p0aT1wM+q7nU2e=Yb0dH8k@mail.example.org",
        "CAF7kQx0Zt9hR4sLm2w=Qp8jX5cV1n@mail.example.org",
        "CAF7kQx2Lm4nB6vC8xZ0=Aa1sD3fG5@mail.example.org",
        "20250304110537.GA81231@laptop.example.org",
        "DB9PR07MB8123A1B2C3D4E5F6A7B8C9D0E1F2A@DB9PR07MB8123.eurprd07.prod.example.net",
        "auto.20250304150001.5521@laptop.example.org",
    ]
    assert [m["kind"] for m in stored] == ["message"] * 5 + ["auto_reply"]
    assert all(m["direction"] == "in" for m in stored)
    assert stored[0]["text"].startswith("Hello,\n\nmy order 4471")
    # The reply-all came from Bob: his own customer record, Alice's conversation, Cc recorded.
    bob = await customer(client, "bob.chen@example.org")
    assert bob is not None
    assert bob["display_name"] == "Bob Chen"
    assert stored[4]["customer_id"] == bob["id"]
    assert all(c["id"] == conv["id"] for c in await conversations(client, bob["id"]))
    full = await get(client, f"/api/v1/conversations/{conv['id']}")
    assert "warehouse@example.org" in full["participants"]
    assert stored[4]["metadata"]["cc"] == ["alice@example.org", "warehouse@example.org"]


async def test_uppercase_address_joins_the_existing_customer(
    hub_client: Any, sink: MailSink
) -> None:
    client, port = await email_hub(hub_client, sink)
    await deliver(port, "thread_1_first.eml", mail_from="alice@example.org")
    await deliver(port, "uppercase_address.eml", mail_from="ALICE@EXAMPLE.ORG")
    (alice,) = await all_customers(client)
    assert alice["display_name"] == "Alice Martin"
    assert [e["address"] for e in alice["endpoints"]] == ["alice@example.org"]
    # A new mail without references is a new request (email threads explicitly).
    convs = await conversations(client, alice["id"])
    assert sorted(c["subject"] for c in convs) == [
        "New question about gift wrapping",
        "Order 4471 arrived damaged",
    ]


async def test_auto_reply_that_threads_nowhere_creates_nothing(
    hub_client: Any, sink: MailSink
) -> None:
    client, port = await email_hub(hub_client, sink)
    await deliver(port, "auto_reply_unthreaded.eml", mail_from="carol@example.net")
    await deliver(port, "null_sender_notification.eml", mail_from="")
    assert await all_customers(client) == []


async def test_newsletter_is_filed_as_low_priority_bulk(hub_client: Any, sink: MailSink) -> None:
    client, port = await email_hub(hub_client, sink)
    await deliver(port, "newsletter_list_id.eml", mail_from="bounce-mc.us21@mcsv.example")
    conv = await only_conversation(client, "news@kitchenweekly.example")
    assert conv["priority"] < 0
    (stored,) = await messages(client, conv["id"])
    assert stored["kind"] == "bulk"
    assert (
        stored["metadata"]["list_id"] == "Kitchen Weekly <kitchenweekly.news.list-id.mcsv.example>"
    )


async def test_redelivered_mail_without_message_id_is_stored_once(
    hub_client: Any, sink: MailSink
) -> None:
    client, port = await email_hub(hub_client, sink)
    await deliver(port, "missing_message_id.eml", mail_from="tom.baker@example.com")
    await deliver(port, "missing_message_id.eml", mail_from="tom.baker@example.com")
    conv = await only_conversation(client, "tom.baker@example.com")
    (stored,) = await messages(client, conv["id"])
    assert stored["provider_id"].endswith("@hub.invalid")
    assert stored["metadata"]["message_id_synthetic"] is True


# ---------------------------------------------------------------------- content
async def test_charsets_html_attachments_dates_and_raw_utf8_arrive_decoded(
    hub_client: Any, sink: MailSink
) -> None:
    client, port = await email_hub(hub_client, sink)
    await deliver(port, "gb2312_labelled_gbk.eml", mail_from="wangkun@example.cn")
    await deliver(port, "cp1252_labelled_latin1.eml", mail_from="r@example.fr", rcpts=(BILLING,))
    await deliver(port, "quoted_printable.eml", mail_from="j.weber@example.de", rcpts=(BILLING,))
    await deliver(port, "html_only.eml", mail_from="m.rossi@example.it")
    await deliver(port, "rfc2231_attachment_name.eml", mail_from="j.weber@example.de")
    await deliver(port, "bad_date.eml", mail_from="sam.lee@example.com")
    await deliver(port, "raw_utf8_headers.eml", mail_from="jurgen@example.de", utf8=True)
    await deliver(port, "encoded_word_subject.eml", mail_from="juergen.mueller@example.at")

    wang = await customer(client, "wangkun@example.cn")
    assert wang is not None
    assert wang["display_name"] == "王堃"
    conv = await only_conversation(client, "wangkun@example.cn")
    assert conv["subject"] == "订单88231未收到（王堃）"
    (msg,) = await messages(client, conv["id"])
    assert "朱镕基先生推荐的这家店" in msg["text"]
    assert msg["text"].endswith("王堃")

    conv = await only_conversation(client, "rene.dubois@example.fr")
    assert conv["queue"] == "billing"
    assert conv["our_address"] == BILLING
    (msg,) = await messages(client, conv["id"])
    assert "charged €49.99 twice for order 5512 – the “premium” plan." in msg["text"]

    html_conv = await only_conversation(client, "m.rossi@example.it")
    (msg,) = await messages(client, html_conv["id"])
    assert "cannot log in" in msg["text"]
    assert "document.cookie" not in msg["text"]
    assert "<script" not in msg["metadata"]["html"]
    assert "src=" not in msg["metadata"]["html"]

    weber = await customer(client, "j.weber@example.de")
    assert weber is not None
    by_subject = {c["subject"]: c for c in await conversations(client, weber["id"])}
    (qp,) = await messages(client, by_subject["Rechnung Nr. 2025-0193 – falscher Betrag"]["id"])
    assert "bestellt und bestätigt waren aber 129,00 €." in qp["text"]
    (with_files,) = await messages(client, by_subject["Rechnung als Anhang"]["id"])
    names = [a["filename"] for a in with_files["attachments"]]
    assert names == [
        "Rechnung März 2025 – Kunde Nr. 47112 überarbeitet.pdf",
        "Quittung Straße ä.jpg",
    ]
    assert [(a["content_type"], a["size"]) for a in with_files["attachments"]] == [
        ("application/pdf", 138),
        ("image/jpeg", 159),
    ]

    (scan,) = await messages(client, (await only_conversation(client, "sam.lee@example.com"))["id"])
    assert scan["text"].startswith("My scanner's e-mail")

    jurgen = await customer(client, "jurgen@example.de")
    assert jurgen is not None
    assert jurgen["display_name"] == "Jürgen Müller-Lüdenscheidt"
    conv = await only_conversation(client, "jurgen@example.de")
    assert conv["subject"] == "Lieferung für Bestellung 7781 – Grüße aus Köln 你好"

    conv = await only_conversation(client, "juergen.mueller@example.at")
    assert conv["subject"] == "Rückfrage zur Bestellung „Teekanne Inga“ 🍵 dringend"
    assert conv["participants"] == ["andre@example.at"]


async def test_attachment_over_the_limit_is_kept_in_order_as_failed_without_its_bytes(
    hub_client: Any, sink: MailSink
) -> None:
    client, port = await email_hub(hub_client, sink, attachment_max_bytes=150)
    await deliver(port, "rfc2231_attachment_name.eml", mail_from="j.weber@example.de")
    (msg,) = await messages(client, (await only_conversation(client, "j.weber@example.de"))["id"])
    assert [(a["filename"], a["state"], a["url"] is None) for a in msg["attachments"]] == [
        ("Rechnung März 2025 – Kunde Nr. 47112 überarbeitet.pdf", "fetched", False),
        ("Quittung Straße ä.jpg", "failed", True),
    ]
    assert msg["metadata"]["attachments_omitted"] == [
        {"filename": "Quittung Straße ä.jpg", "content_type": "image/jpeg", "size": 159}
    ]


# ---------------------------------------------------------------------- SMTP answers
async def test_unknown_recipient_gets_550_and_reply_addresses_are_accepted(
    hub_client: Any, sink: MailSink
) -> None:
    client, port = await email_hub(hub_client, sink)
    with pytest.raises(aiosmtplib.SMTPRecipientRefused) as info:
        await smtp(port, fixture("thread_1_first.eml"), rcpts=("sales@support.example.com",))
    assert info.value.code == 550
    with pytest.raises(aiosmtplib.SMTPRecipientRefused):
        await smtp(port, fixture("thread_1_first.eml"), rcpts=("reply+tok@elsewhere.example",))
    response = await smtp(
        port, fixture("thread_1_first.eml"), rcpts=("REPLY+UnknownToken@Support.Example.com",)
    )
    assert response.code == 250
    assert await customer(client, "alice@example.org") is not None


async def test_oversized_mail_gets_552_and_nothing_is_stored(
    hub_client: Any, sink: MailSink
) -> None:
    client, port = await email_hub(hub_client, sink, email_max_bytes=4096)
    big = fixture("thread_1_first.eml") + b"\n" + (b"x" * 70 + b"\n") * 100
    # A client that announces SIZE is refused at MAIL FROM ...
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as announced:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) as c:
            await c.sendmail("alice@example.org", [SUPPORT], big)
    assert announced.value.code == 552
    # ... and one that does not is refused after DATA.
    with pytest.raises(aiosmtplib.SMTPDataError) as after_data:
        await smtp(port, big, mail_from="alice@example.org")
    assert after_data.value.code == 552
    assert await all_customers(client) == []


async def test_internal_failure_answers_451_and_the_retry_is_stored_once(
    hub_client: Any, sink: MailSink, sqlite_url: str
) -> None:
    client, port = await email_hub(hub_client, sink)
    path = sqlite_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TRIGGER disk_full BEFORE INSERT ON messages "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await smtp(port, fixture("thread_1_first.eml"), mail_from="alice@example.org")
    assert (info.value.code, info.value.message) == (451, "4.3.0 temporary failure, try again")
    assert await all_customers(client) == []
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER disk_full")
    for _ in range(2):  # the sending MTA retries; a duplicate retry changes nothing
        await deliver(port, "thread_1_first.eml", mail_from="alice@example.org")
    conv = await only_conversation(client, "alice@example.org")
    assert len(await messages(client, conv["id"])) == 1


async def test_hostile_mib_of_tag_soup_is_answered_while_the_loop_keeps_ticking(
    hub_client: Any, sink: MailSink
) -> None:
    client, port = await email_hub(hub_client, sink)
    await deliver(port, "thread_1_first.eml", mail_from="alice@example.org")  # workers warm
    raw = hostile_mail(1 << 20, sender="mallory@attacker.example", to=SUPPORT)
    assert len(raw) >= 1 << 20
    assert max(len(line) for line in raw.split(b"\r\n")) <= 76
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - start - 0.01)

    ticking = asyncio.create_task(ticker())
    start = time.perf_counter()
    try:
        response = await smtp(port, raw, mail_from="mallory@attacker.example")
    finally:
        answered = time.perf_counter() - start
        done.set()
        await ticking
    assert response.code == 250
    assert answered < 10, answered
    assert max(lags) < 0.1, f"loop lag {max(lags) * 1000:.0f} ms, answer in {answered:.2f} s"
    conv = await only_conversation(client, "mallory@attacker.example")
    (stored,) = await messages(client, conv["id"])
    assert "<script" not in stored["metadata"]["html"]


async def test_connections_over_the_session_cap_get_421(hub_client: Any, sink: MailSink) -> None:
    _, port = await email_hub(hub_client, sink, email_max_sessions=2)
    first = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10)
    second = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10)
    await first.connect()
    await second.connect()
    with pytest.raises(aiosmtplib.SMTPConnectResponseError) as info:
        await smtp(port, fixture("thread_1_first.eml"), mail_from="alice@example.org")
    assert info.value.code == 421
    await first.quit()
    for _ in range(50):  # the server sees the hang-up a moment later
        try:
            await deliver(port, "thread_1_first.eml", mail_from="alice@example.org")
            break
        except aiosmtplib.SMTPConnectResponseError:
            await asyncio.sleep(0.02)
    else:
        pytest.fail("a freed session slot was never reused")
    await second.quit()


# ---------------------------------------------------------------------- bounces, end to end
async def test_bounce_marks_the_outbound_failed_and_the_address_undeliverable(
    hub_client: Any, sink: MailSink
) -> None:
    client, port = await email_hub(hub_client, sink)
    await deliver(port, "quoted_printable.eml", mail_from="j.weber@example.de", rcpts=(BILLING,))
    conv = await only_conversation(client, "j.weber@example.de")
    await agent_reply(client, conv["id"], "We corrected the invoice.")
    mail = await sent(client, sink)
    our_id = mail.message["Message-ID"].strip("<>")
    bounce = (
        fixture("bounce_dsn.eml")
        .replace(b"hub.42.7c1e9f0a5b3d@support.example.com", our_id.encode())
        .replace(b"nobody@example.net", b"j.weber@example.de")
    )
    response = await smtp(port, bounce, mail_from="", rcpts=(BILLING,))
    assert response.code == 250
    outbound = [m for m in await messages(client, conv["id"]) if m["direction"] == "out"]
    assert [(m["provider_id"], m["status"], m["error_code"]) for m in outbound] == [
        (our_id, "failed", "5.1.1")
    ]
    assert "User unknown" in outbound[0]["error_message"]
    weber = await customer(client, "j.weber@example.de")
    assert weber is not None
    assert weber["endpoints"][0]["undeliverable"].startswith("5.1.1")
    assert [c["id"] for c in await all_customers(client)] == [weber["id"]]  # no daemon customer


async def test_forged_bounce_for_a_mail_we_never_sent_leaves_the_address_deliverable(
    hub_client: Any, sink: MailSink
) -> None:
    client, port = await email_hub(hub_client, sink)
    await deliver(port, "quoted_printable.eml", mail_from="j.weber@example.de", rcpts=(BILLING,))
    # The fixture's Message-ID ends with our domain, but no mail of ours ever carried it.
    forged = fixture("bounce_dsn.eml").replace(b"nobody@example.net", b"j.weber@example.de")
    assert b"hub.42.7c1e9f0a5b3d@support.example.com" in forged
    response = await smtp(port, forged, mail_from="", rcpts=(BILLING,))
    assert response.code == 250
    weber = await customer(client, "j.weber@example.de")
    assert weber is not None
    assert not weber["endpoints"][0]["undeliverable"]


async def test_agent_reply_is_threaded_and_the_customers_answer_threads_back(
    hub_client: Any, sink: MailSink
) -> None:
    client, port = await email_hub(hub_client, sink)
    await deliver(port, "thread_1_first.eml", mail_from="alice@example.org")
    conv = await only_conversation(client, "alice@example.org")
    await agent_reply(client, conv["id"], "Sorry! A new lid is on its way.")
    mail = await sent(client, sink)
    msg = mail.message
    first = "CAF7kQx3p0aT1wM+q7nU2e=Yb0dH8k@mail.example.org"
    assert mail.rcpt_tos == ("alice@example.org",)
    assert msg["To"] == "alice@example.org"
    assert msg["Subject"] == "Re: Order 4471 arrived damaged"
    assert msg["In-Reply-To"] == f"<{first}>"
    assert msg["References"] == f"<{first}>"
    assert msg["Reply-To"].startswith("reply+")
    assert msg["Reply-To"].endswith("@support.example.com")
    out = [m for m in await messages(client, conv["id"]) if m["direction"] == "out"]
    assert [m["provider_id"] for m in out] == [msg["Message-ID"].strip("<>")]
    assert out[0]["status"] == "sent"

    # Alice answers; her client writes to the Reply-To address and references our reply.
    raw, rcpt = customer_reply(random.Random(5), mail.raw, text="Thank you, received!")
    response = await smtp(port, raw, mail_from="alice@example.org", rcpts=(rcpt,))
    assert response.code == 250
    stored = await messages(client, conv["id"])
    assert [(m["direction"], m["text"]) for m in stored][-1] == ("in", "Thank you, received!")
    assert len(await conversations(client, conv["customer_id"])) == 1

    # A client that drops every reference still threads through the reply address alone.
    await deliver(port, "uppercase_address.eml", mail_from="alice@example.org", rcpts=(rcpt,))
    assert len(await conversations(client, conv["customer_id"])) == 1
    stored = await messages(client, conv["id"])
    assert stored[-1]["text"] == "Do you offer gift wrapping for orders shipped abroad?"

    # The second agent reply carries the whole chain, oldest first.
    await agent_reply(client, conv["id"], "Great, have a nice day.")
    second = (await sent(client, sink)).message
    ids = [m["provider_id"] for m in stored]
    assert second["References"].split() == [f"<{i}>" for i in ids]
    assert second["In-Reply-To"] == f"<{ids[-1]}>"
    assert second["Subject"] == "Re: Order 4471 arrived damaged"


async def test_acknowledgement_goes_out_once_and_never_to_automatic_mail(
    hub_client: Any, sink: MailSink
) -> None:
    client, port = await email_hub(hub_client, sink, email_ack_enabled=True)
    await deliver(port, "thread_1_first.eml", mail_from="alice@example.org")
    ack = (await sent(client, sink)).message
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["In-Reply-To"] == "<CAF7kQx3p0aT1wM+q7nU2e=Yb0dH8k@mail.example.org>"
    conv = await only_conversation(client, "alice@example.org")
    assert f"#{conv['id']}" in ack.get_body(("plain",)).get_content()
    await deliver(port, "thread_2_reply.eml", mail_from="alice@example.org")
    await deliver(port, "newsletter_list_id.eml", mail_from="bounce-mc.us21@mcsv.example")
    await deliver(port, "auto_reply_unthreaded.eml", mail_from="carol@example.net")
    await client.app[lifecycle.OUTBOX].drain()
    acks = [
        m
        for m in await messages(client, conv["id"])
        if m["direction"] == "out" and m["kind"] == "auto_reply"
    ]
    assert len(acks) == 1
    news = await only_conversation(client, "news@kitchenweekly.example")
    assert [m["direction"] for m in await messages(client, news["id"])] == ["in"]
    assert len(sink.received) == 1
