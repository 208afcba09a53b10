"""The web chat adapter: the widget's files, the visitors' websocket, and agents' replies,
typing and joins pushed to the visitor's open tabs.

Routes: ``GET /chat/widget.js`` (any site may load it), ``GET /chat/demo`` and
``/chat/demo.css`` (the demo shop page), ``GET /ws/chat?site=…`` (Origin checked against
the site's allow-list), ``GET /chat/files/{id}`` (a signed, expiring link a visitor got in
a message frame).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

from aiohttp import web

from channels.webchat.const import (
    CHANNEL,
    ENDPOINT_KIND,
    FILE_URL_TTL_S,
    PATH_DEMO,
    PATH_DEMO_CSS,
    PATH_FILES,
    PATH_SOCKET,
    PATH_WIDGET,
    SETTINGS_SECTION,
    STATUS_EVERY_S,
)
from channels.webchat.settings import WebchatSettings
from channels.webchat.visitors import ChatHub, Visitors
from contract.channel import ChannelContext, OutboundMessage, SendReceipt
from contract.chat import ConversationUpdate
from contract.errors import ChannelError, ConfigError
from contract.sections import channel_section
from contract.visitor import message_frame

logger = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
# The widget is loaded by other sites' pages; everything else here is ours alone.
WIDGET_HEADERS = {
    "Cache-Control": "public, max-age=300",
    "Access-Control-Allow-Origin": "*",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "X-Content-Type-Options": "nosniff",
}
DEMO_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PUSHED_REMEMBERED = 10_000
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


class WebchatAdapter:
    """Live chat from the company's own web pages."""

    channels = frozenset({CHANNEL})
    reply_options: Mapping[str, frozenset[str]] = {CHANNEL: frozenset()}

    def __init__(self, ctx: ChannelContext, settings: WebchatSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.hub = cast(ChatHub, ctx.hub)
        # Signs file links; one key for every process of the hub (derived from its token).
        token = ctx.settings.api_token_value() or "demo"
        self._file_key = hashlib.sha256(f"webchat-files:{token}".encode()).digest()
        public = urlsplit(str(ctx.settings.public_url))
        self.visitors = Visitors(
            settings, self.hub, self.file_url, own_origin=f"{public.scheme}://{public.netloc}"
        )
        self._ticker: asyncio.Task[None] | None = None
        # Replies pushed by this process (by the outbox's send or by their event), so the
        # one that comes second does not push them again.
        self._pushed: OrderedDict[tuple[str, int], None] = OrderedDict()

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return [
            web.get(PATH_WIDGET, self.widget),
            web.get(PATH_DEMO, self.demo),
            web.get(PATH_DEMO_CSS, self.demo_css),
            web.get(PATH_SOCKET, self.visitors.handle),
            web.get(PATH_FILES, self.file),
        ]

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick(), name="webchat-status")

    async def draining(self) -> None:
        """The hub is stopping: visitors reconnect (to another process) before it waits
        for in-flight requests."""
        await self.visitors.close_all()

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.visitors.close_all()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY_S)
            try:
                await self.visitors.refresh_waiting()
            except Exception:
                logger.exception("web chat status refresh failed")

    # ------------------------------------------------------------------ static
    async def widget(self, request: web.Request) -> web.StreamResponse:
        return _static("widget.js", "text/javascript", WIDGET_HEADERS)

    async def demo(self, request: web.Request) -> web.StreamResponse:
        return _static("demo.html", "text/html", {"Content-Security-Policy": DEMO_CSP})

    async def demo_css(self, request: web.Request) -> web.StreamResponse:
        return _static("demo.css", "text/css", {})

    # ------------------------------------------------------------------ files
    def _sign(self, address: str, file_id: int, expires: int) -> str:
        message = f"{address}:{file_id}:{expires}".encode()
        return hmac.new(self._file_key, message, hashlib.sha256).hexdigest()[:32]

    def file_url(self, address: str, file_id: int) -> str:
        """A link to one file of a visitor's conversation, valid for a day."""
        expires = int(time.time()) + FILE_URL_TTL_S
        sig = self._sign(address, file_id, expires)
        base = str(self.ctx.settings.public_url).rstrip("/")
        path = PATH_FILES.format(file_id=file_id)
        return f"{base}{path}?a={address}&e={expires}&s={sig}"

    async def file(self, request: web.Request) -> web.StreamResponse:
        try:
            file_id = int(request.match_info["file_id"])
            expires = int(request.query.get("e", ""))
        except ValueError:
            raise web.HTTPNotFound() from None
        address = request.query.get("a", "")
        given = request.query.get("s", "")
        good = self._sign(address, file_id, expires)
        if not hmac.compare_digest(given, good) or expires < time.time():
            raise web.HTTPNotFound()
        found = await self.hub.chat_file(
            channel=CHANNEL, endpoint_kind=ENDPOINT_KIND, address=address, file_id=file_id
        )
        if found is None:
            raise web.HTTPNotFound()
        inline = found.content_type in INLINE_TYPES
        disposition = "inline" if inline else "attachment"
        name = (found.filename or "file").replace('"', "")
        return web.Response(
            body=found.data,
            content_type=found.content_type,
            headers={
                "Content-Disposition": f'{disposition}; filename="{name}"',
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "Cache-Control": "private, max-age=3600",
                "Cross-Origin-Resource-Policy": "cross-origin",
            },
        )

    # ------------------------------------------------------------------ agent side
    async def send(self, message: OutboundMessage) -> SendReceipt:
        """An agent's reply: stored already; pushed to the visitor's open tabs if this
        process holds them. With several processes the one that does pushes it when the
        reply's event reaches it (``conversation_update`` kind "message"); a visitor who is
        away gets it with the history when they come back."""
        delivered = await self._push_reply(message.to, message.message_id)
        if delivered is None:
            raise ChannelError("the reply is not in this visitor's chat", retryable=False)
        return SendReceipt(
            provider_id=f"webchat-{message.message_id}",
            status="delivered" if delivered else "sent",
        )

    async def _push_reply(self, address: str, message_id: int) -> bool | None:
        """Push a stored reply to the visitor's tabs here, once; True if a tab got it (or
        got it before), None if it is not this visitor's."""
        if (address, message_id) in self._pushed:
            return True
        if not self.visitors.connected(address):
            return False
        stored = await self.hub.chat_history(
            channel=CHANNEL,
            endpoint_kind=ENDPOINT_KIND,
            address=address,
            after_id=message_id - 1,
            limit=1,
        )
        if not stored or stored[0].id != message_id:
            return None
        if (address, message_id) in self._pushed:
            return True  # the other path pushed it while this one read it
        self._pushed[(address, message_id)] = None
        while len(self._pushed) > PUSHED_REMEMBERED:
            self._pushed.popitem(last=False)
        frame = message_frame(stored[0], lambda file_id: self.file_url(address, file_id))
        return bool(await self.visitors.push(address, frame))

    async def typing(self, *, channel: str, to: str) -> None:
        await self.visitors.push(to, {"type": "typing", "on": True, "name": ""})

    async def conversation_update(self, update: ConversationUpdate) -> None:
        if update.endpoint_kind != ENDPOINT_KIND or not self.visitors.connected(update.address):
            return
        if update.kind == "message":
            message_id = update.extra.get("message_id")
            if isinstance(message_id, int):
                await self._push_reply(update.address, message_id)
            return
        if update.kind == "read":
            # A read receipt: the agent has seen the visitor's messages up to this id.
            await self.visitors.push(
                update.address, {"type": "read", "id": update.extra.get("message_id")}
            )
            return
        await self.visitors.refresh_status(update.address)


def _static(name: str, content_type: str, headers: Mapping[str, str]) -> web.StreamResponse:
    path = STATIC / name
    if not path.is_file():
        raise web.HTTPNotFound(text=f"{name} is not built")
    return web.Response(
        body=path.read_bytes(), content_type=content_type, charset="utf-8", headers=headers
    )


def create(ctx: ChannelContext) -> WebchatAdapter | None:
    """Off without a ``[channels.webchat]`` section; a bad one stops the hub at start."""
    settings = channel_section(ctx.settings, SETTINGS_SECTION, WebchatSettings)
    if settings is None:
        return None
    needed = ("chat_history", "chat_status", "chat_waiting", "chat_file", "customer_typing")
    for required in (*needed, "can_take", "bot_reply", "hand_off"):
        if not callable(getattr(ctx.hub, required, None)):
            raise ConfigError("this hub cannot serve a live chat (no ChatPort)")
    return WebchatAdapter(ctx, settings)
