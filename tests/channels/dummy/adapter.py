"""The dummy channel's adapter: a JSON webhook in, a JSON API out, a status callback.

Its provider (``testing/fake.py``) signs nothing but sends a shared secret in a header;
the adapter answers bad input with 4xx and stores nothing from it, like every channel.
Settings (``[channels.dummy]`` or ``HUB_CHANNELS__DUMMY__*``): ``api_base``, ``secret``.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from contract.channel import (
    ChannelContext,
    InboundMessage,
    OutboundMessage,
    SendReceipt,
    StatusUpdate,
)
from contract.errors import ChannelError, ConfigError

CHANNEL = "dummy"
SECRET_HEADER = "X-Dummy-Secret"
STATUSES = {"sent", "delivered", "failed", "read"}


class DummySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    api_base: str
    secret: SecretStr


class Inbound(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    sender: str
    text: str


class Status(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    status: str


def _problem(status: int, detail: str) -> web.Response:
    return web.json_response({"error": detail}, status=status)


class DummyAdapter:
    channels = frozenset({CHANNEL})
    reply_options: Mapping[str, frozenset[str]] = {CHANNEL: frozenset()}

    def __init__(self, ctx: ChannelContext, settings: DummySettings) -> None:
        self.ctx = ctx
        self.settings = settings

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return [
            web.post("/webhooks/dummy", self._inbound),
            web.post("/webhooks/dummy/status", self._status),
        ]

    async def _body(self, request: web.Request) -> Any:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given, self.settings.secret.get_secret_value()):
            raise web.HTTPUnauthorized(text="wrong secret")
        try:
            return await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="body is not JSON") from None

    async def _inbound(self, request: web.Request) -> web.Response:
        try:
            body = Inbound.model_validate(await self._body(request))
        except ValidationError as err:
            return _problem(400, f"bad message: {err.error_count()} error(s)")
        result = await self.ctx.hub.ingest(
            InboundMessage(
                channel=CHANNEL,
                sender_kind="dummy",
                sender=body.sender,
                provider_id=body.id,
                text=body.text,
            )
        )
        return web.json_response({"stored": result.message_id, "duplicate": result.duplicate})

    async def _status(self, request: web.Request) -> web.Response:
        try:
            body = Status.model_validate(await self._body(request))
        except ValidationError as err:
            return _problem(400, f"bad status: {err.error_count()} error(s)")
        if body.status not in STATUSES:
            return _problem(400, f"unknown status {body.status[:20]!r}")
        await self.ctx.hub.update_status(
            StatusUpdate(channel=CHANNEL, provider_id=body.id, status=body.status)  # type: ignore[arg-type]
        )
        return web.json_response({"ok": True})

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, message: OutboundMessage) -> SendReceipt:
        try:
            async with self.ctx.http().post(
                f"{self.settings.api_base}/messages",
                json={"to": message.to, "text": message.text, "ref": message.message_id},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp:
                if resp.status >= 400:
                    raise ChannelError(
                        f"provider answered {resp.status}", retryable=resp.status >= 500
                    )
                data = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ChannelError(f"provider unreachable: {err}", retryable=True) from err
        return SendReceipt(provider_id=str(data["id"]), status="sent")

    async def typing(self, *, channel: str, to: str) -> None:
        return None


def create(ctx: ChannelContext) -> DummyAdapter | None:
    """Off without a ``[channels.dummy]`` section; a section without its secret stops start."""
    section = ctx.settings.channels.get(CHANNEL)
    if section is None:
        return None
    try:
        settings = DummySettings.model_validate(section)
    except ValidationError as err:
        raise ConfigError(f"invalid [channels.dummy] settings: {err.errors()[0]['msg']}") from None
    if not settings.secret.get_secret_value():
        raise ConfigError("[channels.dummy] is enabled without its secret")
    return DummyAdapter(ctx, settings)
