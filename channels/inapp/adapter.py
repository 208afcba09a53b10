"""The in-app adapter: the app's websocket and REST calls, agents' replies pushed to open
sockets, and a signed push hook for replies that found none.

Routes: ``GET /app/v1/ws`` (websocket), ``POST /app/v1/messages`` and ``GET
/app/v1/messages`` (for an app in the background, or a client without websockets). Every
request carries ``Authorization: HubApp <token>`` (``auth.py``); a request without a valid
token gets 401/403 before anything is read or stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import aiohttp
from aiohttp import WSMsgType, web

from channels.inapp.auth import AppUser, TokenRefused, verify
from channels.inapp.const import (
    CHANNEL,
    DELIVERY_HEADER,
    ENDPOINT_KIND,
    FRAMES_PER_MIN,
    HEARTBEAT_S,
    HELLO_TIMEOUT_S,
    HISTORY_LIMIT,
    MAX_BODY,
    MAX_FRAME_BYTES,
    MAX_TEXT,
    MESSAGES_PER_MIN,
    PATH_MESSAGES,
    PATH_SOCKET,
    PROTOCOL_VERSION,
    PUSH_TIMEOUT_S,
    SEND_TIMEOUT_S,
    SETTINGS_SECTION,
    SIGNATURE_HEADER,
    TYPING_EVERY_S,
)
from channels.inapp.settings import InappSettings
from contract.channel import ChannelContext, HubPort, InboundMessage, OutboundMessage, SendReceipt
from contract.chat import ChatPort, ConversationUpdate
from contract.errors import ChannelError, ConfigError, HubError, InvalidInput
from contract.sections import channel_section
from contract.visitor import CLIENT_MSG_ID, Window, error_frame, message_frame, status_frame

logger = logging.getLogger(__name__)
PUSHED_REMEMBERED = 10_000


class AppHub(HubPort, ChatPort, Protocol):
    """The hub as the in-app adapter sees it."""


class FrameError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(eq=False)
class Socket:
    """One open connection of one app user (a user may have several devices)."""

    user: AppUser
    ws: web.WebSocketResponse
    frames: Window = field(default_factory=lambda: Window(FRAMES_PER_MIN))
    transport: asyncio.Transport | None = None
    last_typing: float = 0.0
    last_status: dict[str, Any] = field(default_factory=dict)


def _no_files(file_id: int) -> str:
    return ""  # files are not offered to apps yet (PROTOCOL.md)


class InappAdapter:
    """Messaging inside the company's own mobile app."""

    channels = frozenset({CHANNEL})
    reply_options: Mapping[str, frozenset[str]] = {CHANNEL: frozenset()}

    def __init__(self, ctx: ChannelContext, settings: InappSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.hub = cast(AppHub, ctx.hub)
        self.keys = {
            app_id: (app.secret.get_secret_value(), app.max_token_age_s)
            for app_id, app in settings.apps.items()
        }
        self.sockets: dict[str, set[Socket]] = defaultdict(set)
        self.messages: dict[str, Window] = defaultdict(lambda: Window(MESSAGES_PER_MIN))
        self._pushed: OrderedDict[tuple[str, int], None] = OrderedDict()

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return [
            web.get(PATH_SOCKET, self.socket),
            web.post(PATH_MESSAGES, self.post_message),
            web.get(PATH_MESSAGES, self.list_messages),
        ]

    async def start(self) -> None:
        """Nothing to open."""

    async def draining(self) -> None:
        await self.close_all()

    async def stop(self) -> None:
        await self.close_all()

    # ------------------------------------------------------------------ authentication
    def _user(self, request: web.Request) -> AppUser:
        try:
            return verify(request.headers.get("Authorization", ""), self.keys)
        except TokenRefused as err:
            logger.info("in-app request refused (%s): %s", err.status, err.detail)
            raise (web.HTTPUnauthorized if err.status == 401 else web.HTTPForbidden)(
                text=json.dumps({"error": "unauthorized", "detail": err.detail}),
                content_type="application/json",
                headers={"WWW-Authenticate": "HubApp"} if err.status == 401 else None,
            ) from None

    # ------------------------------------------------------------------ REST
    async def post_message(self, request: web.Request) -> web.Response:
        """Store one message (idempotent on ``client_msg_id``)."""
        user = self._user(request)
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _json_error(413, "too_large", "body too large")
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return _json_error(413, "too_large", "body too large")
        try:
            stored, duplicate = await self._store(user, _object(raw))
        except FrameError as err:
            return _json_error(429 if err.code == "rate_limited" else 400, err.code, err.detail)
        return web.json_response(
            {"id": stored, "duplicate": duplicate}, status=200 if duplicate else 201
        )

    async def list_messages(self, request: web.Request) -> web.Response:
        """The user's messages after ``after`` (a resume point), and their status."""
        user = self._user(request)
        try:
            after = max(0, int(request.query.get("after", "0")))
            limit = min(HISTORY_LIMIT, max(1, int(request.query.get("limit", "100"))))
        except ValueError:
            return _json_error(400, "bad_request", "after and limit are integers")
        history = await self.hub.chat_history(
            channel=CHANNEL,
            endpoint_kind=ENDPOINT_KIND,
            address=user.address,
            after_id=after,
            limit=limit,
        )
        status = await self.hub.chat_status(
            channel=CHANNEL, endpoint_kind=ENDPOINT_KIND, address=user.address
        )
        return web.json_response(
            {
                "messages": [message_frame(m, _no_files) for m in history],
                "status": status_frame(status),
            }
        )

    # ------------------------------------------------------------------ storing
    async def _store(self, user: AppUser, data: dict[str, Any]) -> tuple[int, bool]:
        client_id = data.get("client_msg_id")
        if not isinstance(client_id, str) or not CLIENT_MSG_ID.match(client_id):
            raise FrameError("bad_frame", "client_msg_id must be 1-64 of A-Z a-z 0-9 _ -")
        text = data.get("text", "")
        if not isinstance(text, str) or not text.strip():
            raise FrameError("bad_frame", "text must be a non-empty string")
        if len(text) > MAX_TEXT:
            raise FrameError("too_large", f"text over {MAX_TEXT} characters")
        if not self.messages[user.address].allow(time.monotonic()):
            raise FrameError("rate_limited", "too many messages; wait a minute")
        app = self.settings.apps[user.app]
        name = data.get("name")
        language = data.get("lang")
        result = await self.hub.ingest(
            InboundMessage(
                channel=CHANNEL,
                sender_kind=ENDPOINT_KIND,
                sender=user.address,
                provider_id=f"{user.address}:{client_id}",
                text=text,
                display_name=name.strip()[:200] if isinstance(name, str) and name.strip() else None,
                queue=app.queue,
                language="zh" if isinstance(language, str) and language.startswith("zh") else None,
                metadata={"app": user.app},
            )
        )
        if result.message_id is None:
            raise FrameError("unavailable", "not stored; send again")
        stored = await self.hub.chat_history(
            channel=CHANNEL,
            endpoint_kind=ENDPOINT_KIND,
            address=user.address,
            after_id=result.message_id - 1,
            limit=1,
        )
        if stored and stored[0].id == result.message_id:
            echo = message_frame(stored[0], _no_files)
            echo["client_msg_id"] = client_id
            await self.push(user.address, echo)  # the user's other devices show it too
        if result.opened:
            await self.refresh_status(user.address)
        return result.message_id, result.duplicate

    # ------------------------------------------------------------------ the socket
    async def socket(self, request: web.Request) -> web.StreamResponse:
        user = self._user(request)  # before the upgrade: a refused token is a plain 401/403
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_FRAME_BYTES)
        await ws.prepare(request)
        sock = Socket(user=user, ws=ws)
        transport = request.transport
        sock.transport = transport if isinstance(transport, asyncio.Transport) else None
        if not await self._hello(sock):
            await ws.close()
            return ws
        self.sockets[user.address].add(sock)
        try:
            await self._serve(sock)
        finally:
            tabs = self.sockets.get(user.address)
            if tabs is not None:
                tabs.discard(sock)
                if not tabs:
                    del self.sockets[user.address]
        return ws

    async def _hello(self, sock: Socket) -> bool:
        try:
            msg = await sock.ws.receive(timeout=HELLO_TIMEOUT_S)
        except TimeoutError:
            return False
        hello: Any = None
        if msg.type == WSMsgType.TEXT:
            with contextlib.suppress(ValueError):
                hello = json.loads(msg.data)
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            with contextlib.suppress(ConnectionError, RuntimeError):
                await sock.ws.send_json(error_frame("bad_frame", "the first frame must be hello"))
            return False
        last_id = hello.get("last_id")
        after = last_id if isinstance(last_id, int) and not isinstance(last_id, bool) else 0
        address = sock.user.address
        history = await self.hub.chat_history(
            channel=CHANNEL,
            endpoint_kind=ENDPOINT_KIND,
            address=address,
            after_id=max(0, after),
            limit=HISTORY_LIMIT,
        )
        status = status_frame(
            await self.hub.chat_status(
                channel=CHANNEL, endpoint_kind=ENDPOINT_KIND, address=address
            )
        )
        await sock.ws.send_json(
            {
                "type": "welcome",
                "v": PROTOCOL_VERSION,
                "user": {"app": sock.user.app, "id": sock.user.user},
                "status": status,
                "messages": [message_frame(m, _no_files) for m in history],
            }
        )
        sock.last_status = status
        return True

    async def _serve(self, sock: Socket) -> None:
        async for msg in sock.ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data: dict[str, Any] = {}
            try:
                data = _frame_of(sock, msg.data)
                answer = await self._frame(sock, data)
            except FrameError as err:
                answer = error_frame(err.code, err.detail, data)
            except (InvalidInput, HubError) as err:
                logger.warning("in-app frame failed: %s", err)
                answer = error_frame("unavailable", "try again shortly", data)
            except Exception:
                logger.exception("in-app frame failed")
                answer = error_frame("unavailable", "try again shortly", data)
            if answer is not None:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await sock.ws.send_json(answer)

    async def _frame(self, sock: Socket, data: dict[str, Any]) -> dict[str, Any] | None:
        kind = data.get("type")
        if kind == "message":
            stored, _ = await self._store(sock.user, data)
            return {"type": "ack", "client_msg_id": data["client_msg_id"], "id": stored}
        if kind == "typing":
            on = bool(data.get("on"))
            now = time.monotonic()
            if on and now - sock.last_typing < TYPING_EVERY_S:
                return None
            sock.last_typing = now if on else 0.0
            await self.hub.customer_typing(
                channel=CHANNEL, endpoint_kind=ENDPOINT_KIND, address=sock.user.address, on=on
            )
            return None
        if kind == "ping":
            return {"type": "pong"}
        raise FrameError("bad_frame", f"unknown frame type {str(kind)[:30]!r}")

    # ------------------------------------------------------------------ pushing
    async def push(self, address: str, frame: Mapping[str, Any]) -> int:
        """A frame to every open socket of a user; how many took it."""
        sent = 0
        for sock in tuple(self.sockets.get(address, ())):
            if sock.ws.closed:
                continue
            try:
                # A device that stops reading must not hold the others (or the outbox) up:
                # it is closed, and replays from its last id when it reconnects.
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    await sock.ws.send_json(frame)
                sent += 1
            except TimeoutError:
                if sock.transport is not None:
                    sock.transport.abort()
            except (ConnectionError, RuntimeError):
                continue
        return sent

    def connected(self, address: str) -> bool:
        return any(not s.ws.closed for s in self.sockets.get(address, ()))

    async def refresh_status(self, address: str) -> None:
        socks = tuple(self.sockets.get(address, ()))
        if not socks:
            return
        frame = status_frame(
            await self.hub.chat_status(
                channel=CHANNEL, endpoint_kind=ENDPOINT_KIND, address=address
            )
        )
        if all(s.last_status == frame for s in socks):
            return
        for sock in socks:
            sock.last_status = frame
        await self.push(address, frame)

    async def close_all(self) -> None:
        for socks in tuple(self.sockets.values()):
            for sock in tuple(socks):
                with contextlib.suppress(ConnectionError, RuntimeError):
                    # 1012 (service restart): the client reconnects, to another process.
                    await sock.ws.close(code=1012, message=b"hub restarting; reconnect")

    # ------------------------------------------------------------------ agent side
    async def send(self, message: OutboundMessage) -> SendReceipt:
        """An agent's reply: to the user's open sockets here; with none, to the app's push
        hook (retried by the outbox until the company's server takes it)."""
        address = message.to
        stored = await self._stored_reply(address, message.message_id)
        if stored is None:
            raise ChannelError("the reply is not in this user's conversation", retryable=False)
        if await self._push_reply(address, message.message_id, stored):
            return SendReceipt(provider_id=f"app-{message.message_id}", status="delivered")
        app_id, _, user_id = address.partition(":")
        app = self.settings.apps.get(app_id)
        if app is None or not app.push_url:
            # Not lost: the app gets it with its history when it next connects.
            return SendReceipt(provider_id=f"app-{message.message_id}", status="sent")
        body = json.dumps(
            {
                "app": app_id,
                "user": user_id,
                "conversation_id": message.conversation_id,
                "message": {k: stored[k] for k in ("id", "author", "text", "at")},
            },
            ensure_ascii=False,
        ).encode()
        signature = hmac.new(app.hook_key, body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: f"sha256={signature}",
            # The same for every attempt: the company's server drops a repeat.
            DELIVERY_HEADER: message.idempotency_key or f"hub-msg-{message.message_id}",
        }
        try:
            async with self.ctx.http().post(
                app.push_url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=PUSH_TIMEOUT_S),
            ) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ChannelError(
                f"push hook unreachable ({type(err).__name__})", retryable=True, code="push_network"
            ) from None
        if status >= 500 or status == 429:
            raise ChannelError(f"push hook answered {status}", retryable=True, code="push_hook")
        if status >= 300:
            raise ChannelError(
                f"push hook refused it ({status})", retryable=False, code="push_refused"
            )
        return SendReceipt(
            provider_id=f"app-{message.message_id}", status="sent", metadata={"push": True}
        )

    async def _stored_reply(self, address: str, message_id: int) -> dict[str, Any] | None:
        stored = await self.hub.chat_history(
            channel=CHANNEL,
            endpoint_kind=ENDPOINT_KIND,
            address=address,
            after_id=message_id - 1,
            limit=1,
        )
        if not stored or stored[0].id != message_id:
            return None
        return message_frame(stored[0], _no_files)

    async def _push_reply(self, address: str, message_id: int, frame: dict[str, Any]) -> bool:
        """Push a stored reply to this user's sockets here, once; True if one took it."""
        if (address, message_id) in self._pushed:
            return True
        if not self.connected(address):
            return False
        self._pushed[(address, message_id)] = None
        while len(self._pushed) > PUSHED_REMEMBERED:
            self._pushed.popitem(last=False)
        return bool(await self.push(address, frame))

    async def typing(self, *, channel: str, to: str) -> None:
        await self.push(to, {"type": "typing", "on": True, "name": ""})

    async def conversation_update(self, update: ConversationUpdate) -> None:
        if update.endpoint_kind != ENDPOINT_KIND or not self.connected(update.address):
            return
        if update.kind == "message":
            message_id = update.extra.get("message_id")
            if isinstance(message_id, int):
                stored = await self._stored_reply(update.address, message_id)
                if stored is not None:
                    await self._push_reply(update.address, message_id, stored)
            return
        if update.kind == "read":
            await self.push(update.address, {"type": "read", "id": update.extra.get("message_id")})
            return
        await self.refresh_status(update.address)


def _object(raw: str | bytes) -> dict[str, Any]:
    """A JSON object, or FrameError."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise FrameError("bad_frame", "not JSON") from None
    if not isinstance(data, dict):
        raise FrameError("bad_frame", "a JSON object is expected")
    return data


def _frame_of(sock: Socket, raw: str) -> dict[str, Any]:
    if not sock.frames.allow(time.monotonic()):
        raise FrameError("rate_limited", "too many frames; slow down")
    return _object(raw)


def _json_error(status: int, code: str, detail: str) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status)


def create(ctx: ChannelContext) -> InappAdapter | None:
    """Off without a ``[channels.inapp]`` section; a bad one stops the hub at start."""
    settings = channel_section(ctx.settings, SETTINGS_SECTION, InappSettings)
    if settings is None:
        return None
    for required in ("chat_history", "chat_status", "customer_typing"):
        if not callable(getattr(ctx.hub, required, None)):
            raise ConfigError("this hub cannot serve in-app messaging (no ChatPort)")
    return InappAdapter(ctx, settings)
