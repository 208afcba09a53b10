"""Inbound SMTP: an aiosmtpd server in the hub's own event loop that persists before 250."""

from __future__ import annotations

import asyncio
import logging
from email.utils import parseaddr
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.email.const import (
    CHANNEL,
    MAX_RECIPIENTS,
    PARSE_TIMEOUT_S,
    PARSE_WORKERS,
    REPLY_TOKEN_RE,
    SMTP_BUSY,
    SMTP_NO_SENDER,
    SMTP_OK,
    SMTP_RCPT_OK,
    SMTP_REJECTED,
    SMTP_TEMPFAIL,
    SMTP_TOO_COMPLEX,
    SMTP_TOO_MANY_RCPT,
    SMTP_UNKNOWN_RCPT,
    THREAD_KEY_MAX,
)
from channels.email.payloads import ParsedEmail
from channels.email.worker import ParsePool, ParseTimeout
from contract.channel import Attachment, ChannelContext, InboundMessage, StatusUpdate
from contract.errors import InvalidInput

logger = logging.getLogger(__name__)

ACK_TEXT = (
    "Thank you for your message. We have received it and will answer as soon as we can.\n"
    "Your reference: #{conversation_id}. Replying to this mail keeps everything in one place."
)


class Mailboxes:
    """Which addresses are ours: configured mailboxes and ``reply+<token>@<email_domain>``."""

    def __init__(self, settings: Any) -> None:
        self.domain = str(settings.email_domain).lower()
        self.queues = {str(k).strip().lower(): str(v) for k, v in settings.email_mailboxes.items()}
        default = parseaddr(str(settings.email_from))[1].lower()
        self.default = default if default in self.queues else next(iter(self.queues), None)

    def token(self, address: str) -> str | None:
        """The conversation token of a reply address of ours, else None."""
        match = REPLY_TOKEN_RE.match(address.strip().strip("<>"))
        if match and match.group(2).lower() == self.domain:
            return match.group(1)
        return None

    def accepts(self, address: str) -> bool:
        """RCPT check: a configured mailbox or one of our reply addresses."""
        bare = address.strip().strip("<>").lower()
        return bare in self.queues or self.token(bare) is not None

    def ours(self, address: str) -> bool:
        """Any address of the hub's own domain (never a customer, never a participant)."""
        bare = address.strip().strip("<>").lower()
        return bare in self.queues or bare.rpartition("@")[2] == self.domain


def build_inbound(
    parsed: ParsedEmail,
    *,
    raw: bytes,
    mail_from: str | None,
    rcpt_tos: list[str],
    boxes: Mailboxes,
) -> InboundMessage | None:
    """Map a parsed mail to the hub's InboundMessage; None when it has no usable sender."""
    customer = parsed.customer
    if customer is None or boxes.ours(customer.address):
        customer = parsed.from_address
    if customer is None or boxes.ours(customer.address):
        return None
    headers = [a.address for a in (*parsed.to, *parsed.cc)]
    envelope = [r.strip().strip("<>").lower() for r in rcpt_tos]
    mailbox = next((a for a in (*envelope, *headers) if a in boxes.queues), boxes.default)
    token = next((t for a in (*envelope, *headers) if (t := boxes.token(a))), None)
    participants: dict[str, None] = {}
    for address in (*(a.address for a in parsed.to), *(a.address for a in parsed.cc)):
        if not boxes.ours(address) and address != customer.address:
            participants.setdefault(address, None)
    omitted = [
        {"filename": a.filename, "content_type": a.content_type, "size": a.size}
        for a in parsed.attachments
        if a.data is None
    ]
    root = parsed.thread_root
    metadata: dict[str, Any] = {
        "from": str(parsed.from_address.address) if parsed.from_address else None,
        "from_name": parsed.from_address.display_name if parsed.from_address else None,
        "reply_to": [a.address for a in parsed.reply_to],
        "to": [a.address for a in parsed.to],
        "cc": [a.address for a in parsed.cc],
        "mail_from": mail_from,
        "rcpt_tos": envelope,
        "auto_submitted": parsed.auto_submitted,
        "precedence": parsed.precedence,
        "list_id": parsed.list_id,
        "message_id_synthetic": parsed.message_id_synthetic,
        "suppress_auto_reply": parsed.suppress_auto_reply,
        "html": parsed.html,
        "blocked_remote_content": parsed.blocked_remote_content,
    }
    if parsed.html_truncated:
        metadata["html_truncated"] = True
    if omitted:
        metadata["attachments_omitted"] = omitted
    return InboundMessage(
        channel=CHANNEL,
        sender_kind="email",
        sender=customer.address,
        display_name=customer.display_name,
        provider_id=parsed.message_id,
        text=parsed.text,
        subject=parsed.subject or None,
        kind="message" if parsed.kind == "bounce" else parsed.kind,
        recipient=mailbox,
        queue=boxes.queues.get(mailbox) if mailbox else None,
        reply_token=token,
        thread_refs=parsed.thread_refs,
        thread_key=root if len(root) <= THREAD_KEY_MAX else None,
        threading="explicit",
        participants=tuple(participants),
        # In the mail's order; one over the size limit stays as a failed attachment (the
        # agent sees a file was sent) without its bytes: a refetch cannot make it smaller.
        attachments=tuple(
            Attachment(filename=a.filename, content_type=a.content_type, data=a.data)
            if a.data is not None
            else Attachment(
                filename=a.filename,
                content_type=a.content_type,
                state="failed",
                error=f"too large ({a.size} bytes)",
            )
            for a in parsed.attachments
        ),
        occurred_at=parsed.date,
        metadata=metadata,
        raw=raw,
    )


class EmailHandler:
    """aiosmtpd hooks: RCPT filtering, DATA persisted through the hub before the 250."""

    def __init__(self, ctx: ChannelContext, parser: ParsePool) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.boxes = Mailboxes(ctx.settings)
        self.parser = parser

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return SMTP_TOO_MANY_RCPT
        if not self.boxes.accepts(address):
            logger.info("email: refused recipient %s", address)
            return SMTP_UNKNOWN_RCPT
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return SMTP_RCPT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):  # only with decode_data=True, which we never set
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            return await self.deliver(raw, mail_from=envelope.mail_from, rcpt_tos=envelope.rcpt_tos)
        except InvalidInput as err:
            logger.warning("email from %s rejected: %s", envelope.mail_from, err)
            reason = " ".join(str(err).split())[:200]
            return SMTP_REJECTED.format(reason=reason)
        except Exception:
            # Temporary: the sending MTA keeps the mail and retries; nothing is lost.
            logger.exception("email from %s: delivery to the hub failed", envelope.mail_from)
            return SMTP_TEMPFAIL

    async def handle_exception(self, error: Exception) -> str:
        logger.error("email: SMTP session error", exc_info=error)
        return SMTP_TEMPFAIL

    async def deliver(self, raw: bytes, *, mail_from: str | None, rcpt_tos: list[str]) -> str:
        """Parse one received mail and hand it to the hub; the SMTP answer to give."""
        try:
            parsed = await self.parser.parse(
                raw, attachment_max_bytes=self.settings.attachment_max_bytes, mail_from=mail_from
            )
        except ParseTimeout:
            return SMTP_TOO_COMPLEX
        if parsed.kind == "bounce":
            await self._bounce(parsed)
            return SMTP_OK
        inbound = build_inbound(
            parsed, raw=raw, mail_from=mail_from, rcpt_tos=rcpt_tos, boxes=self.boxes
        )
        if inbound is None:
            if parsed.kind == "message":
                return SMTP_NO_SENDER
            logger.info("email: dropped %s without a usable sender", parsed.kind)
            return SMTP_OK
        result = await self.ctx.hub.ingest(inbound)
        wants_ack = self.settings.email_ack_enabled and inbound.kind == "message"
        if wants_ack and result.opened and not result.duplicate and not parsed.suppress_auto_reply:
            await self._acknowledge(result.conversation_id)
        return SMTP_OK

    async def _acknowledge(self, conversation_id: int | None) -> None:
        if conversation_id is None:
            return
        try:
            # The hub stores at most one acknowledgement per conversation and queues it.
            await self.ctx.hub.record_auto_reply(
                conversation_id=conversation_id,
                text=ACK_TEXT.format(conversation_id=conversation_id),
                send=True,
            )
        except Exception:
            # The mail itself is stored; a missing acknowledgement is not worth a redelivery.
            logger.exception("email: acknowledgement for conversation %s failed", conversation_id)

    async def _bounce(self, parsed: ParsedEmail) -> None:
        bounce = parsed.bounce
        if bounce is None or not bounce.recipients:
            logger.info("email: delivery report %s without recipients ignored", parsed.message_id)
            return
        original = bounce.original_message_id
        # Only a report about a mail we actually sent may mark a customer's address dead:
        # anybody can send us something shaped like a DSN, naming an id of our domain.
        ours = original is not None and await self.ctx.hub.sent_message_exists(
            channel=CHANNEL, provider_id=original
        )
        for failure in bounce.recipients:
            if failure.action != "failed":
                logger.info("email: %s for %s (%s)", failure.action, failure.recipient, original)
                continue
            if original is not None:
                await self.ctx.hub.update_status(
                    StatusUpdate(
                        channel=CHANNEL,
                        provider_id=original,
                        status="failed",
                        error_code=failure.status or "5.0.0",
                        error_message=failure.diagnostic or f"delivery failed ({failure.action})",
                        occurred_at=parsed.date,
                        metadata={"recipient": failure.recipient, "mta": bounce.reporting_mta},
                    )
                )
            if failure.permanent and ours:
                try:
                    await self.ctx.hub.mark_undeliverable(
                        kind="email",
                        address=failure.recipient,
                        reason=f"{failure.status} {failure.diagnostic}".strip(),
                    )
                except InvalidInput:
                    logger.info("email: bounce for unusable address %r", failure.recipient)


class _Busy(asyncio.Protocol):
    """Answers a connection over the session cap with 421 and hangs up (RFC 5321 §3.8)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(SMTP_BUSY.encode() + b"\r\n")
        transport.close()


class _Session(SMTP):
    """An aiosmtpd session that leaves the server's live set when its connection ends."""

    def __init__(self, handler: EmailHandler, live: set[SMTP], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._live = live
        live.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            self._live.discard(self)


class SmtpServer:
    """The listening socket, the sessions it opened and the parsing workers; ``stop`` closes all."""

    def __init__(self, server: asyncio.Server, sessions: set[SMTP], parser: ParsePool) -> None:
        self.server = server
        self._sessions = sessions
        self._parser = parser

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting, close open sessions, wait for the socket and the workers to close."""
        self.server.close()
        for session in list(self._sessions):
            transport = session.transport
            if transport is not None:
                transport.close()
        await self.server.wait_closed()
        await self._parser.close()


async def start_smtp_server(ctx: ChannelContext, host: str, port: int) -> SmtpServer:
    """Listen for SMTP in the running loop (aiosmtpd's Controller would start its own)."""
    loop = asyncio.get_running_loop()
    parser = ParsePool(workers=PARSE_WORKERS, timeout=PARSE_TIMEOUT_S)
    handler = EmailHandler(ctx, parser)
    sessions: set[SMTP] = set()
    limit = int(ctx.settings.email_max_sessions)

    def factory() -> asyncio.BaseProtocol:
        if len(sessions) >= limit:
            logger.warning("email: %d SMTP sessions open; refusing another", len(sessions))
            return _Busy()
        return _Session(
            handler,
            sessions,
            data_size_limit=ctx.settings.email_max_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=ctx.settings.email_domain,
            loop=loop,
        )

    server = await loop.create_server(factory, host=host, port=port)
    return SmtpServer(server, sessions, parser)
