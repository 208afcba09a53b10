"""PostgreSQL unreachable (every connection reset, new ones refused): every way a contact
comes in is refused with an answer that makes the sender try again (5xx; SMTP 451, since a
5xx reply would make the sending server give up), never acknowledged; once the database is
back, the sender's retry is stored exactly once."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlencode

import aiosmtplib
import pytest
from twilio.request_validator import RequestValidator

from channels.email.adapter import EmailAdapter
from channels.email.testing.sink import MailSink
from channels.telegram.testing.fake_api import FakeTelegram
from channels.telegram.testing.simulator import post_update, text_update
from channels.twilio_sms.testing.fake_api import FakeTwilio
from channels.twilio_voice.const import PATH_INCOMING
from channels.webchat.testing.visitor import ChatVisitor
from hub.web import keys
from tests.resilience.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    OUR_NUMBER,
    REQUEST_TIMEOUT_S,
    SUPPORT,
    TELEGRAM_SECRET,
    TELEGRAM_TOKEN,
    Served,
    ServeHub,
    db_value,
    stored_messages,
    through,
    twilio_settings,
    until,
)
from tests.resilience.proxy import TcpProxy

pytestmark = pytest.mark.postgres

CALLER = "+447700900123"
TELEGRAM_USER = {"id": 700100299, "first_name": "Ines", "language_code": "en"}
# A refused web chat message gets an error frame or a closed socket within this; no ack.
NO_ACK_FOR_S = 3.0


def voice_section() -> dict[str, Any]:
    return {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "number": OUR_NUMBER,
        "api_base": "http://127.0.0.1:9",  # no call is placed here
        "hold_music_url": "http://127.0.0.1:9/hold.mp3",
    }


@dataclass
class Contacts:
    """One contact per entry point, sent the same way every time (a sender's retry)."""

    served: Served
    smtp_port: int
    sms_sid: str = field(default_factory=lambda: "SM" + secrets.token_hex(16))
    call_sid: str = field(default_factory=lambda: "CA" + secrets.token_hex(16))
    update_id: int = 881_000_001
    telegram_message_id: int = 4_242
    external_id: str = "api-during-outage"
    mail_id: str = "outage-1@mail.example.org"
    chat_msg_id: str = "chat-during-outage"

    async def sms(self) -> int:
        return (await self.served.sms(sid=self.sms_sid, sender=CALLER, text="sms in outage"))[0]

    async def voice(self) -> int:
        params = {
            "CallSid": self.call_sid,
            "AccountSid": ACCOUNT_SID,
            "From": CALLER,
            "To": OUR_NUMBER,
            "Caller": CALLER,
            "Called": OUR_NUMBER,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
        url = self.served.base + PATH_INCOMING
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
        async with (
            asyncio.timeout(REQUEST_TIMEOUT_S),
            self.served.session.post(
                url,
                data=urlencode(params).encode(),
                headers={
                    "X-Twilio-Signature": signature,
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            ) as resp,
        ):
            await resp.read()
            return resp.status

    async def telegram(self) -> int:
        update = text_update(
            self.update_id,
            TELEGRAM_USER,
            "telegram in outage",
            message_id=self.telegram_message_id,
        )
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            return await post_update(self.served.session, self.served.base, TELEGRAM_SECRET, update)

    async def api(self) -> int:
        answer = await self.served.api_inbound(
            external_id=self.external_id, sender="+12025550181", text="api in outage"
        )
        return answer[0]

    async def smtp(self) -> int:
        mail = EmailMessage()
        mail["From"] = "Paula Ortiz <paula@example.org>"
        mail["To"] = SUPPORT
        mail["Subject"] = "Sent while the database was away"
        mail["Message-ID"] = f"<{self.mail_id}>"
        mail["Date"] = "Tue, 04 Mar 2025 10:00:00 +0000"
        mail.set_content("Hello, this mail must not get lost.\n")
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=self.smtp_port, start_tls=False, timeout=REQUEST_TIMEOUT_S
        )
        async with client:
            await client.mail("paula@example.org")
            await client.rcpt(SUPPORT)
            try:
                return (await client.data(bytes(mail))).code
            except aiosmtplib.SMTPResponseException as err:
                return err.code

    # ------------------------------------------------------------------ what was stored
    async def stored(self, url: str) -> dict[str, int]:
        chat = await db_value(
            url,
            "SELECT count(*) FROM messages WHERE channel = 'webchat' AND provider_id LIKE $1",
            f"%:{self.chat_msg_id}",
        )
        calls = await db_value(url, "SELECT count(*) FROM calls WHERE call_sid = $1", self.call_sid)
        return {
            "sms": await stored_messages(url, self.sms_sid),
            "voice": int(calls),
            "telegram": await stored_messages(
                url, f"{TELEGRAM_USER['id']}:{self.telegram_message_id}"
            ),
            "api": await stored_messages(url, self.external_id),
            "smtp": await stored_messages(url, self.mail_id),
            "webchat": int(chat),
        }


async def chat_refused(visitor: ChatVisitor, client_msg_id: str) -> str:
    """Send a web chat message that cannot be stored: what came instead of an ack (an
    error frame's code, or ``closed``); fails the test if the ack comes."""
    await visitor.send(
        {"type": "message", "client_msg_id": client_msg_id, "text": "chat in outage"}
    )
    assert visitor.ws is not None
    try:
        async with asyncio.timeout(NO_ACK_FOR_S):
            while True:
                frame = await visitor.frames.get()
                if frame.get("type") == "ack":
                    pytest.fail(f"web chat acknowledged a message it could not store: {frame}")
                if frame.get("type") == "error":
                    return str(frame.get("code"))
    except TimeoutError:
        if visitor.ws.closed:
            return "closed"
        pytest.fail("web chat gave the visitor neither an error nor a closed socket")


async def test_every_entry_point_refuses_while_the_database_is_away_and_stores_the_retry_once(
    pg_proxy: TcpProxy,  # first: torn down after the hub has stopped
    pg_url: str,
    fake_twilio: tuple[FakeTwilio, str],
    fake_telegram: tuple[FakeTelegram, str],
    mail_sink: MailSink,
    serve_hub: ServeHub,
) -> None:
    served = await serve_hub(
        through(pg_url, pg_proxy),
        webchat=True,
        channels={"twilio_voice": voice_section()},
        telegram_bot_token=TELEGRAM_TOKEN,
        telegram_secret_token=TELEGRAM_SECRET,
        telegram_api_base=fake_telegram[1],
        smtp_enabled=True,
        smtp_port=0,
        relay_port=mail_sink.port,
        **twilio_settings(fake_twilio[1]),
    )
    email = served.client.app[keys.ADAPTERS]["email"]
    assert isinstance(email, EmailAdapter)
    assert email.smtp_port is not None
    contacts = Contacts(served, email.smtp_port)
    status, body = await served.ready()
    assert status == 200, body
    visitor = served.visitor()
    await visitor.connect()  # the visitor's page was open before the outage

    await pg_proxy.cut()
    status, body = await served.ready()
    assert status == 503, body
    assert body["checks"]["database"].startswith("error"), body

    answers = {
        "sms": await contacts.sms(),
        "voice": await contacts.voice(),
        "telegram": await contacts.telegram(),
        "api": await contacts.api(),
        "smtp": await contacts.smtp(),
    }
    chat = await chat_refused(visitor, contacts.chat_msg_id)
    print(f"database away: {answers}, web chat: {chat}")
    http = {k: v for k, v in answers.items() if k != "smtp"}
    assert all(500 <= s < 600 for s in http.values()), answers
    assert answers["smtp"] == 451, answers
    assert chat in ("unavailable", "closed"), chat

    await pg_proxy.restore()

    async def ready() -> bool:
        return (await served.ready())[0] == 200

    await until(ready, limit_s=30, what="/readyz 200 after the database came back")
    assert set((await contacts.stored(pg_url)).values()) == {0}, "stored despite the refusal"

    # The senders try again: accepted, and stored once.
    again = {
        "sms": await contacts.sms(),
        "voice": await contacts.voice(),
        "telegram": await contacts.telegram(),
        "api": await contacts.api(),
        "smtp": await contacts.smtp(),
    }
    assert again == {"sms": 200, "voice": 200, "telegram": 200, "api": 201, "smtp": 250}
    if not visitor.ws or visitor.ws.closed:
        visitor = served.visitor(token=visitor.token)  # the widget reconnects as the same visitor
        await visitor.connect()
    ack = await visitor.say("chat in outage", client_msg_id=contacts.chat_msg_id)
    assert ack["type"] == "ack", ack
    assert await contacts.stored(pg_url) == dict.fromkeys([*again, "webchat"], 1)
