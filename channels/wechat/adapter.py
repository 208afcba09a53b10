"""The WeChat adapter: customer-service sends with a shared access token, media fetches.

Tokens come from ``cgi-bin/stable_token`` (Tencent's recommendation): every process asking
gets the same token until shortly before it expires, so several hub processes never evict
each other's token, which the older ``cgi-bin/token`` does. A send refused for a stale token
asks again without forcing (another process may have refreshed it already) and forces a new
token only when WeChat hands back the very token it just refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp import web

from channels.wechat.const import (
    CHANNEL,
    IMAGE_MAX_BYTES,
    IMAGE_TYPES,
    MEDIA_GET_PATH,
    MEDIA_UPLOAD_PATH,
    QUOTA_EXCEEDED,
    RETRYABLE_ERRORS,
    SEND_PATH,
    SETTINGS_SECTION,
    STABLE_TOKEN_PATH,
    TOKEN_ERRORS,
    TOKEN_MARGIN_S,
    TYPING_PATH,
    WINDOW_CLOSED,
)
from channels.wechat.settings import WeChatSettings
from channels.wechat.webhook import WeChatWebhook
from contract.channel import Attachment, ChannelContext, OutboundMessage, SendReceipt
from contract.errors import ChannelError, ConfigError
from contract.http import read_capped
from contract.sections import channel_section

logger = logging.getLogger(__name__)

TIMEOUT = aiohttp.ClientTimeout(total=15)


def api_error(errcode: int, errmsg: str, action: str) -> ChannelError:
    """The one place WeChat's errcodes become the hub's ChannelError."""
    text = f"{action}: WeChat error {errcode} {errmsg[:200]}".strip()
    if errcode == WINDOW_CLOSED:
        return ChannelError(
            f"{action}: outside the 48-hour window, or the user unfollowed the account "
            "(WeChat 45015); the customer must write first",
            retryable=False,
            code="window_closed",
        )
    if errcode == QUOTA_EXCEEDED:
        return ChannelError(
            f"{action}: the user's reply quota for this window is used up (WeChat 45047)",
            retryable=False,
            code="quota",
        )
    if errcode in TOKEN_ERRORS:
        return ChannelError(text, retryable=True, code="token")
    return ChannelError(text, retryable=errcode in RETRYABLE_ERRORS, code=str(errcode))


class AccessTokens:
    """One account's access token, fetched once and shared by every call of this process."""

    def __init__(self, adapter: WeChatAdapter) -> None:
        self.adapter = adapter
        self._token = ""
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        if self._token and time.monotonic() < self._expires:
            return self._token
        async with self._lock:
            if not self._token or time.monotonic() >= self._expires:
                await self._fetch(force=False)
            return self._token

    async def refused(self, token: str) -> str:
        """A fresh token after WeChat refused ``token`` (expired or replaced)."""
        async with self._lock:
            if self._token != token:
                return self._token  # another call already refreshed it
            await self._fetch(force=False)
            if self._token == token:
                await self._fetch(force=True)
            return self._token

    async def _fetch(self, *, force: bool) -> None:
        s = self.adapter.settings
        body = {
            "grant_type": "client_credential",
            "appid": s.app_id,
            "secret": s.app_secret.get_secret_value(),
            "force_refresh": force,
        }
        data = await self.adapter.request("POST", STABLE_TOKEN_PATH, "stable_token", json=body)
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise ChannelError(
                "stable_token returned no access_token", retryable=True, code="token"
            )
        expires_in = data.get("expires_in")
        life = float(expires_in) if isinstance(expires_in, int | float) else 7200.0
        self._token = token
        self._expires = time.monotonic() + max(life - TOKEN_MARGIN_S, life / 2)


class WeChatAdapter:
    """WeChat Official Account customer-service channel."""

    channels = frozenset({CHANNEL})
    reply_options: Mapping[str, frozenset[str]] = {CHANNEL: frozenset()}

    def __init__(self, ctx: ChannelContext, settings: WeChatSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.api_base = settings.api_base.rstrip("/")
        self.max_file_bytes = int(ctx.settings.attachment_max_bytes)
        self.tokens = AccessTokens(self)
        self.webhook = WeChatWebhook(
            settings=settings, hub=ctx.hub, max_body=ctx.settings.max_body_bytes
        )

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return self.webhook.routes()

    async def start(self) -> None:
        """Nothing to open: the first send fetches the token, so the hub starts offline too."""

    async def stop(self) -> None:
        """Nothing to close (the HTTP client is the hub's)."""

    # ------------------------------------------------------------------ the API, one call
    async def request(self, method: str, path: str, action: str, **kwargs: Any) -> dict[str, Any]:
        """One JSON call; ChannelError for transport failures and errcodes."""
        try:
            async with self.ctx.http().request(
                method, self.api_base + path, timeout=TIMEOUT, **kwargs
            ) as resp:
                if resp.status >= 500 or resp.status == 429:
                    raise ChannelError(
                        f"{action}: WeChat answered HTTP {resp.status}",
                        retryable=True,
                        code=str(resp.status),
                        outcome_unknown=action == "send" and resp.status >= 500,
                    )
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ChannelError(
                f"{action}: WeChat unreachable ({type(err).__name__})",
                retryable=True,
                code="network",
                outcome_unknown=action == "send",
            ) from None
        except ValueError:
            raise ChannelError(f"{action}: WeChat answered non-JSON", retryable=True) from None
        if not isinstance(data, dict):
            raise ChannelError(f"{action}: unexpected answer", retryable=True)
        errcode = data.get("errcode", 0)
        if isinstance(errcode, int) and errcode != 0:
            raise api_error(errcode, str(data.get("errmsg", "")), action)
        return data

    async def call(self, method: str, path: str, action: str, **kwargs: Any) -> dict[str, Any]:
        """A call with the access token; one retry with a fresh token if WeChat refused it."""
        token = await self.tokens.get()
        params = dict(kwargs.pop("params", {}))
        for attempt in (1, 2):
            try:
                return await self.request(
                    method, path, action, params={**params, "access_token": token}, **kwargs
                )
            except ChannelError as err:
                if err.code != "token" or attempt == 2:
                    raise
                logger.info("wechat access token refused (%s); fetching a fresh one", err)
                token = await self.tokens.refused(token)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ sending
    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Text and images as customer-service messages to the follower's OpenID."""
        openid = message.to.strip()
        if not openid:
            raise ChannelError("no OpenID to send to", retryable=False, code="address")
        bodies: list[dict[str, Any]] = []
        if message.text.strip():
            bodies.append({"touser": openid, "msgtype": "text", "text": {"content": message.text}})
        for att in message.attachments:
            media_id = await self._upload(att)
            bodies.append({"touser": openid, "msgtype": "image", "image": {"media_id": media_id}})
        if not bodies:
            raise ChannelError("nothing to send", retryable=False, code="empty")
        ids: list[str] = []
        for body in bodies:
            data = await self.call("POST", SEND_PATH, "send", json=body)
            if data.get("msgid") is not None:
                ids.append(str(data["msgid"]))
        # WeChat's answer may carry no id: ours names the message (one per hub message).
        provider_id = ids[0] if ids else f"hub:{message.idempotency_key or message.message_id}"
        return SendReceipt(provider_id=provider_id, status="sent", metadata={"msgids": ids})

    async def _upload(self, att: Attachment) -> str:
        if att.content_type not in IMAGE_TYPES:
            raise ChannelError(
                f"WeChat replies take images only, not {att.content_type}",
                retryable=False,
                code="unsupported_media",
            )
        if len(att.data) > IMAGE_MAX_BYTES:
            raise ChannelError(
                f"image of {len(att.data)} bytes exceeds WeChat's {IMAGE_MAX_BYTES}",
                retryable=False,
                code="too_large",
            )
        form = aiohttp.FormData()
        form.add_field(
            "media", att.data, filename=att.filename or "image.jpg", content_type=att.content_type
        )
        data = await self.call(
            "POST", MEDIA_UPLOAD_PATH, "upload", params={"type": "image"}, data=form
        )
        media_id = data.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise ChannelError("media/upload returned no media_id", retryable=True, code="upload")
        return media_id

    async def typing(self, *, channel: str, to: str) -> None:
        """A typing indicator (best effort: WeChat shows it only right after a message)."""
        try:
            await self.call("POST", TYPING_PATH, "typing", json={"touser": to, "command": "Typing"})
        except ChannelError as err:
            logger.info("wechat typing indicator not shown: %s", err)

    # ------------------------------------------------------------------ media
    async def fetch_attachment(
        self, *, channel: str, source: str, content_type: str, filename: str | None
    ) -> Attachment:
        """A follower's image, voice or video by MediaId (temporary media last three days)."""
        token = await self.tokens.get()
        data, got_type = await self._download(
            self.api_base + MEDIA_GET_PATH, {"access_token": token, "media_id": source}
        )
        if got_type.startswith(("application/json", "text/plain")):
            answer = _json(data)
            errcode = answer.get("errcode", 0)
            if isinstance(errcode, int) and errcode != 0:
                raise api_error(errcode, str(answer.get("errmsg", "")), "media/get")
            url = answer.get("video_url")
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise ChannelError("media/get gave neither bytes nor a video URL", retryable=False)
            data, got_type = await self._download(url, None)
        kind = got_type.split(";")[0].strip() or content_type
        return Attachment(filename=filename, content_type=kind, data=data, source=source)

    async def _download(self, url: str, params: dict[str, str] | None) -> tuple[bytes, str]:
        limit = self.max_file_bytes
        try:
            async with self.ctx.http().get(url, params=params, timeout=TIMEOUT) as resp:
                if resp.status != 200:
                    raise ChannelError(
                        f"media download answered {resp.status}",
                        retryable=resp.status >= 500 or resp.status == 429,
                        code="download",
                    )
                data = await read_capped(resp, limit, what="media")
                return data, resp.headers.get("Content-Type", "")
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ChannelError(
                f"media download failed ({type(err).__name__})", retryable=True, code="network"
            ) from None


def _json(data: bytes) -> dict[str, Any]:
    import json

    try:
        value = json.loads(data)
    except ValueError:
        raise ChannelError("media/get answered non-JSON text", retryable=True) from None
    return value if isinstance(value, dict) else {}


def create(ctx: ChannelContext) -> WeChatAdapter | None:
    """Off without a ``[channels.wechat]`` section; a bad one stops the hub at start."""
    settings = channel_section(ctx.settings, SETTINGS_SECTION, WeChatSettings, switch="app_id")
    if settings is None:
        return None
    for name in ("token", "app_secret"):
        if not getattr(settings, name).get_secret_value():
            # Fail closed: an empty Token lets anyone compute a valid signature.
            raise ConfigError(
                f"[channels.{SETTINGS_SECTION}] has an app_id but no {name} "
                f"(HUB_CHANNELS__WECHAT__{name.upper()})"
            )
    return WeChatAdapter(ctx, settings)
