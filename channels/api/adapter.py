"""The API channel adapter: outbound POSTed to a callback or left for the client to poll.

Inbound is the hub's own REST route ``POST /api/v1/inbound`` (``hub.web.api.inbound``):
integrations authenticate with the hub's tokens, so there is no provider webhook here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aiohttp
from aiohttp import web

from contract.channel import ChannelContext, OutboundMessage, SendReceipt
from contract.errors import ChannelError

CHANNEL = "api"
# Sent with every POST of one message, the same on each attempt (the IETF httpapi draft's
# header, as Stripe and others take it): the receiving system stores a message once.
IDEMPOTENCY_HEADER = "Idempotency-Key"


class ApiChannelAdapter:
    """Always enabled: the channel every integration and test can use."""

    channels = frozenset({CHANNEL})
    reply_options: Mapping[str, frozenset[str]] = {CHANNEL: frozenset()}

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx
        self.callback_url: str = ctx.settings.api_callback_url

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, message: OutboundMessage) -> SendReceipt:
        provider_id = f"api-out-{message.message_id}"
        if not self.callback_url:
            # No push target: the reply waits in the conversation for the client to poll.
            return SendReceipt(provider_id=provider_id, status="sent")
        payload = {
            "id": provider_id,
            "conversation_id": message.conversation_id,
            "to": message.to,
            "text": message.text,
        }
        # An attempt whose answer was lost (timeout, a crash) is POSTed again with the same key.
        headers = {IDEMPOTENCY_HEADER: message.idempotency_key or provider_id}
        try:
            async with self.ctx.http().post(
                self.callback_url,
                json=payload,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp:
                if resp.status >= 500 or resp.status == 429:
                    raise ChannelError(f"callback answered {resp.status}", retryable=True)
                if resp.status >= 400:
                    raise ChannelError(f"callback refused: {resp.status}", retryable=False)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ChannelError(f"callback unreachable: {err}", retryable=True) from err
        return SendReceipt(provider_id=provider_id, status="delivered")

    async def typing(self, *, channel: str, to: str) -> None:
        return None


def create(ctx: ChannelContext) -> ApiChannelAdapter:
    """The API channel is always on."""
    return ApiChannelAdapter(ctx)
