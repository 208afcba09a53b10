"""The email channel adapter: SMTP listener in, relay out."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from aiohttp import web

from channels.email.const import CHANNEL
from channels.email.outbound import send_message
from channels.email.smtp import SmtpServer, start_smtp_server
from contract.channel import ChannelContext, OutboundMessage, SendReceipt

logger = logging.getLogger(__name__)


class EmailAdapter:
    """Receives mail on the hub's SMTP port and sends replies through the relay."""

    channels = frozenset({CHANNEL})
    reply_options: Mapping[str, frozenset[str]] = {CHANNEL: frozenset({"subject"})}

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self._server: SmtpServer | None = None

    @property
    def smtp_port(self) -> int | None:
        """The port the SMTP listener is bound to (None when it is not running)."""
        return self._server.port if self._server is not None else None

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return ()

    def inbound_addresses(self) -> list[str]:
        """Where mail comes in: the SMTP listener, for the admin's channel page (point the
        domain's MX, or the mail provider's forwarding, at it)."""
        if self._server is None:
            return []
        return [f"smtp://{self.settings.smtp_host}:{self._server.port}"]

    async def start(self) -> None:
        if not self.settings.smtp_enabled or self._server is not None:
            return
        host, port = self.settings.smtp_host, self.settings.smtp_port
        self._server = await start_smtp_server(self.ctx, host, port)
        logger.info("email: SMTP listening on %s:%s", host, self._server.port)

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop()

    async def send(self, message: OutboundMessage) -> SendReceipt:
        return await send_message(message, self.settings)

    async def typing(self, *, channel: str, to: str) -> None:
        return None


def create(ctx: ChannelContext) -> EmailAdapter | None:
    """The adapter, or None when neither the listener nor a relay is configured."""
    settings = ctx.settings
    if not settings.smtp_enabled and not settings.relay_host:
        return None
    return EmailAdapter(ctx)
