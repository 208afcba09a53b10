"""Demo traffic: real-shaped customer mail delivered to the hub over SMTP."""

from __future__ import annotations

import base64
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from email.utils import format_datetime, parseaddr

import aiosmtplib

from channels.email.headers import message_ids

VARIANTS = ("plain", "html", "gbk", "cp1252", "attachment", "qp")

# (display name, address, preferred variant)
CUSTOMERS: tuple[tuple[str, str, str], ...] = (
    ("Alice Martin", "alice@example.org", "plain"),
    ("Marco Rossi", "m.rossi@example.it", "html"),
    ("王堃", "wangkun@example.cn", "gbk"),
    ("René Dubois", "rene.dubois@example.fr", "cp1252"),
    ("Jana Weber", "j.weber@example.de", "attachment"),
    ("Tom Baker", "tom.baker@example.com", "qp"),
)
_SUBJECTS = (
    "Order {n} arrived damaged",
    "Where is my parcel {n}?",
    "Refund for order {n}",
    "Question about invoice {n}",
    "Cannot log in to my account",
)
_LINES = (
    "Could you please check what happened?",
    "I have attached everything I have.",
    "Thanks in advance for your help.",
    "This is the second time this happens.",
    "Please call me back if that is easier.",
)


def _message_id(rng: random.Random, domain: str) -> str:
    return f"<{rng.getrandbits(64):016x}.{rng.getrandbits(32):08x}@{domain}>"


def _headers(
    *,
    name: str,
    address: str,
    to: str,
    subject: str,
    msg_id: str,
    when: datetime,
    in_reply_to: str | None,
    references: Sequence[str],
) -> list[str]:
    domain = address.rpartition("@")[2]
    encoded_name = "=?utf-8?B?" + base64.b64encode(name.encode()).decode() + "?="
    display = name if name.isascii() else encoded_name
    subject_value = (
        subject if subject.isascii() else "=?utf-8?B?" + base64.b64encode(subject.encode()).decode()
    )
    if not subject.isascii():
        subject_value += "?="
    lines = [
        f"Return-Path: <{address}>",
        f"Received: from mail.{domain} (mail.{domain} [198.51.100.7])",
        "\tby mx.support.example.com with ESMTPS id sim; " + format_datetime(when),
        f"From: {display} <{address}>",
        f"To: {to}",
        f"Subject: {subject_value}",
        f"Date: {format_datetime(when)}",
        f"Message-ID: {msg_id}",
        "MIME-Version: 1.0",
        "X-Mailer: hub-simulator",
    ]
    if in_reply_to:
        lines.append(f"In-Reply-To: <{in_reply_to}>")
    if references:
        lines.append("References: " + "\r\n ".join(f"<{r}>" for r in references))
    return lines


def _body(rng: random.Random, variant: str, subject: str) -> tuple[list[str], bytes]:
    """Content headers and body bytes for one variant."""
    text = f"Hello,\r\n\r\n{subject}. {rng.choice(_LINES)}\r\n{rng.choice(_LINES)}\r\n"
    if variant == "gbk":
        body = "您好：\r\n我的订单还没有收到，请帮忙查询。朱镕基路的地址没有变。\r\n\r\n王堃\r\n"
        encoded = base64.encodebytes(body.encode("gb18030")).replace(b"\n", b"\r\n")
        return [
            'Content-Type: text/plain; charset="gb2312"',
            "Content-Transfer-Encoding: base64",
        ], encoded
    if variant == "cp1252":
        body = (
            "Hi,\r\nI was charged \u20ac49.99 twice \u2013 the \u201cpremium\u201d plan.\r\n"
            "Ren\u00e9\r\n"
        )
        return [
            'Content-Type: text/plain; charset="iso-8859-1"',
            "Content-Transfer-Encoding: 8bit",
        ], body.encode("cp1252")
    if variant == "html":
        html = (
            f"<html><head><style>p{{color:#333}}</style></head><body><p>Hello,</p>"
            f"<p>{subject}. <b>{rng.choice(_LINES)}</b></p>"
            '<img src="https://tracker.example.net/p.gif" width="1" height="1"></body></html>\r\n'
        )
        return ['Content-Type: text/html; charset="utf-8"'], html.encode()
    if variant == "qp":
        body = f"Grüße! {subject} – bitte prüfen.=\r\n Danke.\r\n"
        qp = body.replace("ü", "=C3=BC").replace("ß", "=C3=9F").replace("–", "=E2=80=93")
        return [
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
        ], qp.encode("ascii")
    if variant == "attachment":
        boundary = f"sim-{rng.getrandbits(48):012x}"
        pdf = base64.encodebytes(b"%PDF-1.4\n% simulated receipt\n%%EOF\n").decode()
        parts = (
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
            f"--{boundary}\r\nContent-Type: application/pdf\r\n"
            "Content-Disposition: attachment;\r\n"
            " filename*=UTF-8''Quittung%20M%C3%A4rz.pdf\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--{boundary}--\r\n"
        )
        return [f'Content-Type: multipart/mixed; boundary="{boundary}"'], parts.encode()
    return ['Content-Type: text/plain; charset="utf-8"'], text.encode()


def random_customer_mail(
    rng: random.Random,
    to_mailbox: str,
    *,
    variant: str | None = None,
    customer: tuple[str, str] | None = None,
    subject: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    now: datetime | None = None,
) -> bytes:
    """One real-shaped customer mail (CRLF line endings) to ``to_mailbox``."""
    name, address, preferred = rng.choice(CUSTOMERS)
    if customer is not None:
        name, address = customer
    chosen = variant or (preferred if rng.random() < 0.7 else rng.choice(VARIANTS))
    topic = subject or rng.choice(_SUBJECTS).format(n=rng.randint(1000, 99999))
    if in_reply_to and not topic.lower().startswith("re:"):
        topic = f"Re: {topic}"
    when = now or datetime.now(UTC)
    headers = _headers(
        name=name,
        address=address,
        to=to_mailbox,
        subject=topic,
        msg_id=_message_id(rng, address.rpartition("@")[2]),
        when=when,
        in_reply_to=in_reply_to,
        references=references,
    )
    content_headers, body = _body(rng, chosen, topic)
    head = "\r\n".join([*headers, *content_headers]).encode("utf-8")
    return head + b"\r\n\r\n" + body


def customer_reply(
    rng: random.Random, hub_mail: bytes, text: str | None = None
) -> tuple[bytes, str]:
    """The customer's answer to a mail the hub sent; returns the raw mail and where it goes."""
    original = BytesParser(policy=policy.default).parsebytes(hub_mail)
    own_id = message_ids(original.get("Message-ID"))
    refs = [*message_ids(original.get("References")), *own_id]
    rcpt = parseaddr(str(original.get("Reply-To") or original.get("From") or ""))[1]
    name, address = parseaddr(str(original.get("To") or ""))
    raw = random_customer_mail(
        rng,
        rcpt,
        variant="plain",
        customer=(name or address.partition("@")[0], address),
        subject=str(original.get("Subject") or ""),
        in_reply_to=own_id[-1] if own_id else None,
        references=refs,
    )
    if text is not None:
        head, _, _ = raw.partition(b"\r\n\r\n")
        raw = head + b"\r\n\r\n" + text.replace("\n", "\r\n").encode("utf-8") + b"\r\n"
    return raw, rcpt


async def send_mail(
    host: str, port: int, raw: bytes, mail_from: str, rcpt_to: str | Sequence[str]
) -> str:
    """Deliver ``raw`` over SMTP (``mail_from=""`` is the null sender); the server's answer."""
    recipients = [rcpt_to] if isinstance(rcpt_to, str) else list(rcpt_to)
    options = [] if raw.isascii() else ["BODY=8BITMIME"]
    client = aiosmtplib.SMTP(hostname=host, port=port, start_tls=False, timeout=30)
    async with client:
        _, reply = await client.sendmail(mail_from, recipients, raw, mail_options=options)
    return reply
