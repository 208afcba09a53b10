"""Outbound mail: compose a correctly threaded reply and hand it to the relay (aiosmtplib)."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

import aiosmtplib

from channels.email.const import REPLY_LOCAL, SYNTHETIC_DOMAIN
from contract.channel import OutboundMessage, SendReceipt
from contract.errors import ChannelError

# Reply prefixes of the common mail clients, stripped before our single "Re: " is added.
_REPLY_PREFIX = re.compile(
    r"^\s*(?:re|aw|sv|vs|antw|antwort|odp|rif|回复|回覆|答复)\s*(?:\[\d+\])?\s*[:：]\s*",
    re.IGNORECASE,
)
SEND_TIMEOUT_S = 30.0


def reply_subject(subject: str | None, *, is_reply: bool, conversation_id: int) -> str:
    """``Re: <original>`` exactly once for replies; a neutral subject when there is none."""
    text = " ".join((subject or "").split())
    while True:
        stripped = _REPLY_PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    if not text:
        text = f"Your request #{conversation_id}"
    return f"Re: {text}" if is_reply else text


def new_message_id(message: OutboundMessage, domain: str) -> str:
    """Our Message-ID (without brackets): ``hub.<message id>.<16 hex>@<domain>``.

    The same on every attempt at one message, so a receiving system that already has the
    mail (we died before recording the relay's answer) drops the repeat. The hex part is a
    digest of the idempotency key, the conversation's secret reply token, the recipient and
    the text: it cannot be guessed by someone who never saw the mail (a DSN naming it is
    what may mark an address undeliverable), and a database restored from a backup, which
    hands out the same message ids again, gives other mails other ids. Without an
    idempotency key it is random, as each attempt is then its own mail.
    """
    key = message.idempotency_key
    token = str(message.options.get("reply_token") or "")
    if not key:
        return f"hub.{message.message_id}.{secrets.token_hex(8)}@{domain}"
    parts = (key, token, str(message.conversation_id), message.to.lower(), message.text)
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]
    return f"hub.{message.message_id}.{digest}@{domain}"


def _from_header(settings: Any, sender: str | None) -> str:
    name, address = parseaddr(str(settings.email_from))
    mailboxes = {str(k).lower() for k in settings.email_mailboxes}
    # Answer from the mailbox the customer wrote to (billing@ stays billing@).
    if sender and sender.lower() in mailboxes:
        address = sender.lower()
    if not name:
        return address
    return str(Address(display_name=name, addr_spec=address))


def compose(message: OutboundMessage, settings: Any) -> tuple[EmailMessage, str]:
    """Build the mail for ``message``; returns it with its Message-ID (no brackets)."""
    domain = str(settings.email_domain)
    refs = [r for r in message.thread_refs if r and not r.endswith("@" + SYNTHETIC_DOMAIN)]
    msg_id = new_message_id(message, domain)
    msg = EmailMessage()
    msg["From"] = _from_header(settings, message.sender)
    msg["To"] = message.to
    msg["Subject"] = reply_subject(
        message.options.get("subject") or message.subject,
        is_reply=bool(refs),
        conversation_id=message.conversation_id,
    )
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = f"<{msg_id}>"
    if refs:
        msg["In-Reply-To"] = f"<{refs[-1]}>"
        msg["References"] = " ".join(f"<{r}>" for r in refs)
    token = message.options.get("reply_token")
    if token:
        msg["Reply-To"] = f"{REPLY_LOCAL}+{token}@{domain}"
    if message.options.get("auto"):
        # RFC 3834: mark our acknowledgement, and ask Exchange not to answer it automatically.
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(message.text or "")
    for att in message.attachments:
        maintype, _, subtype = att.content_type.partition("/")
        if maintype == "text":
            # add_attachment wants str for text/*; bytes go out as application/octet-stream.
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(
            att.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=att.filename or "attachment",
        )
    return msg, msg_id


def channel_error(err: Exception) -> ChannelError:
    """The one place where relay failures become retryable or permanent ChannelErrors."""
    if isinstance(err, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in err.recipients]
        permanent = bool(codes) and all(c >= 500 for c in codes)
        first = err.recipients[0] if err.recipients else None
        detail = f"{first.code} {first.message}" if first else "recipients refused"
        return ChannelError(
            f"relay refused the recipient: {detail}",
            retryable=not permanent,
            code=str(first.code) if first else None,
        )
    if isinstance(err, aiosmtplib.SMTPAuthenticationError):
        # Our credentials, not the message: retry after the operator fixes the settings.
        return ChannelError(f"relay authentication failed: {err}", retryable=True, code="auth")
    if isinstance(err, aiosmtplib.SMTPResponseException):
        return ChannelError(
            f"relay answered {err.code} {err.message}",
            retryable=err.code < 500,
            code=str(err.code),
        )
    if isinstance(err, aiosmtplib.SMTPNotSupported):
        return ChannelError(
            f"relay cannot take this mail: {err}", retryable=False, code="unsupported"
        )
    if isinstance(err, ValueError):
        return ChannelError(f"unusable address: {err}", retryable=False, code="address")
    # Connection refused, timeouts, disconnects: the relay is down or slow; try again later.
    return ChannelError(f"relay unreachable: {type(err).__name__}: {err}", retryable=True)


async def send_message(message: OutboundMessage, settings: Any) -> SendReceipt:
    """Compose and deliver one message through the configured relay."""
    if "@" not in message.to:
        raise ChannelError(f"not an email address: {message.to!r}", retryable=False, code="address")
    msg, msg_id = compose(message, settings)
    password = settings.relay_password.get_secret_value() if settings.relay_password else ""
    try:
        refused, reply = await aiosmtplib.send(
            msg,
            hostname=settings.relay_host,
            port=settings.relay_port,
            username=settings.relay_username or None,
            password=password or None,
            start_tls=bool(settings.relay_starttls),
            timeout=SEND_TIMEOUT_S,
        )
    except (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError) as err:
        raise channel_error(err) from err
    if refused:
        errors = [
            aiosmtplib.SMTPRecipientRefused(r.code, r.message, rcpt) for rcpt, r in refused.items()
        ]
        raise channel_error(aiosmtplib.SMTPRecipientsRefused(errors))
    return SendReceipt(provider_id=msg_id, status="sent", metadata={"relay": reply[:200]})
