"""A real SMTP relay sink (aiosmtpd) that keeps what it receives: for tests and the demo."""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.smtp import SMTP, Envelope, Session

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivedMail:
    """One mail transaction the sink accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage = field(repr=False)


class MailSink:
    """Accepts every mail (unless told to refuse) and queues it for ``next()``.

    ``rcpt_replies`` maps a recipient address to the SMTP answer its RCPT gets (e.g.
    ``"550 5.1.1 User unknown"``); ``data_reply`` replaces the answer to DATA (e.g. a 451).
    """

    def __init__(self) -> None:
        self.received: list[ReceivedMail] = []
        self.rcpt_replies: dict[str, str] = {}
        self.data_reply: str | None = None
        self._queue: asyncio.Queue[ReceivedMail] = asyncio.Queue()
        self._server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self.host = "127.0.0.1"
        self.port = 0

    # ------------------------------------------------------------------ aiosmtpd hooks
    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self.rcpt_replies.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply is not None:
            return self.data_reply
        raw = envelope.original_content or b""
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=raw,
            message=parsed,
        )
        self.received.append(mail)
        self._queue.put_nowait(mail)
        logger.info("sink: mail from %s to %s", mail.mail_from, ", ".join(mail.rcpt_tos))
        return "250 2.0.0 Queued"

    # ------------------------------------------------------------------ control
    async def next(self, wait_s: float = 5.0) -> ReceivedMail:
        """The next received mail (waits up to ``wait_s`` seconds, then TimeoutError)."""
        async with asyncio.timeout(wait_s):
            return await self._queue.get()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen in the running loop."""
        loop = asyncio.get_running_loop()

        def factory() -> SMTP:
            smtp = SMTP(self, enable_SMTPUTF8=True, hostname="relay.sink.invalid", loop=loop)
            self._sessions.add(smtp)
            return smtp

        self._server = await loop.create_server(factory, host=host, port=port)
        self.host = host
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close the listener and any open session."""
        if self._server is None:
            return
        self._server.close()
        for smtp in list(self._sessions):
            if smtp.transport is not None:
                smtp.transport.close()
        await self._server.wait_closed()
        self._server = None


async def start_sink(host: str = "127.0.0.1", port: int = 0) -> MailSink:
    """Start a sink on ``host:port`` (port 0 picks a free one; see ``sink.port``)."""
    sink = MailSink()
    await sink.start(host, port)
    return sink
