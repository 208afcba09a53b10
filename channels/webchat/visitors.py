"""Visitors' websockets (``/ws/chat``, PROTOCOL.md): one visitor may have several tabs.

A visitor is known by a bearer token the server issues and the widget keeps; the endpoint
address is derived from it (a hash), so nothing but the token identifies a visitor and no
visitor table is needed. Every frame is checked before anything is stored; a message is
acknowledged only once the hub has stored it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from channels.webchat.const import (
    CHANNEL,
    ENDPOINT_KIND,
    FRAMES_PER_MIN,
    HEARTBEAT_S,
    HELLO_TIMEOUT_S,
    HISTORY_LIMIT,
    MAX_FRAME_BYTES,
    MAX_TEXT,
    MESSAGES_PER_MIN,
    NEW_VISITORS_PER_MIN,
    PROTOCOL_VERSION,
    SEND_TIMEOUT_S,
    TYPING_EVERY_S,
    VERIFIED_KIND,
)
from channels.webchat.settings import Site, WebchatSettings
from contract.channel import Attachment, HubPort, Identifier, InboundMessage
from contract.chat import ChatPort, ChatStatus
from contract.errors import HubError, InvalidInput
from contract.hours import is_open
from contract.visitor import CLIENT_MSG_ID as _CLIENT_MSG_ID
from contract.visitor import Window, message_frame, status_frame
from contract.visitor import error_frame as _error

logger = logging.getLogger(__name__)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{40,64}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
# What each allowed upload type starts with (a file is what its bytes say, not its name).
_MAGIC: Mapping[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF-",),
}


class ChatHub(HubPort, ChatPort, Protocol):
    """The hub as the web chat adapter sees it."""


class FrameError(Exception):
    """A frame refused: answered with an ``error`` frame (the socket stays open)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def visitor_address(site: str, token: str) -> str:
    """The endpoint address of a token: not reversible, stable per site and token."""
    return "v" + hashlib.sha256(f"{site}:{token}".encode()).hexdigest()[:32]


def bot_name(site: Site, language: str) -> str:
    bot = site.bot_on
    return site.text(bot.name, language) if bot is not None else ""


@dataclass(eq=False)
class Visitor:
    """One socket of one visitor."""

    site_id: str
    site: Site
    token: str
    address: str
    ws: web.WebSocketResponse
    language: str
    page: str = ""
    name: str = ""
    email: str = ""
    topic: str = ""
    verified: str = ""  # the verified identifier ("" until ``identify`` succeeds)
    frames: Window = field(default_factory=lambda: Window(FRAMES_PER_MIN))
    transport: asyncio.Transport | None = None
    last_typing: float = 0.0
    last_status: dict[str, Any] = field(default_factory=dict)


class Visitors:
    """The sockets of every connected visitor, by endpoint address."""

    def __init__(
        self,
        settings: WebchatSettings,
        hub: ChatHub,
        file_url: Callable[[str, int], str],
        *,
        own_origin: str,
    ) -> None:
        self.settings = settings
        # Allowed origins per site ("self" read as the hub's own).
        self.origins = {
            site_id: frozenset(own_origin if o == "self" else o for o in site.origins)
            for site_id, site in settings.sites.items()
        }
        self.hub = hub
        self.file_url = file_url  # (address, file id) -> URL
        self.by_address: dict[str, set[Visitor]] = defaultdict(set)
        # Per visitor address: messages in the last minute (shared by their tabs).
        self.messages: dict[str, Window] = defaultdict(lambda: Window(MESSAGES_PER_MIN))
        self.new_per_ip: dict[str, Window] = defaultdict(lambda: Window(NEW_VISITORS_PER_MIN))
        # Per address, what the visitor told us (pre-chat form, verified identity): kept
        # while any tab is open, so every tab's messages carry it.
        self.profiles: dict[str, dict[str, str]] = {}

    # ------------------------------------------------------------------ pushing
    async def push(self, address: str, frame: Mapping[str, Any]) -> int:
        """Send a frame to every socket of a visitor; how many got it."""
        sent = 0
        for visitor in tuple(self.by_address.get(address, ())):
            if visitor.ws.closed:
                continue
            try:
                # A tab that stops reading must not hold up the others (or the outbox):
                # it is closed and catches up by replay when it reconnects.
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    await visitor.ws.send_json(frame)
                sent += 1
            except TimeoutError:
                logger.info("web chat visitor not reading; closing its socket")
                if visitor.transport is not None:
                    visitor.transport.abort()
            except (ConnectionError, RuntimeError):
                continue
        return sent

    def connected(self, address: str) -> bool:
        return any(not v.ws.closed for v in self.by_address.get(address, ()))

    # ------------------------------------------------------------------ the socket
    async def handle(self, request: web.Request) -> web.StreamResponse:
        site_id = request.query.get("site", "")
        site = self.settings.sites.get(site_id)
        if site is None:
            raise web.HTTPNotFound(text="unknown site")
        origin = request.headers.get("Origin", "")
        if origin not in self.origins[site_id]:
            logger.warning("web chat %s: origin %r not allowed", site_id, origin[:100])
            raise web.HTTPForbidden(text="origin not allowed")
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_FRAME_BYTES)
        await ws.prepare(request)
        visitor = await self._hello(ws, site_id, site, request.remote or "")
        if visitor is None:
            await ws.close()
            return ws
        transport = request.transport
        visitor.transport = transport if isinstance(transport, asyncio.Transport) else None
        self.by_address[visitor.address].add(visitor)
        try:
            await self._serve(visitor)
        finally:
            tabs = self.by_address.get(visitor.address)
            if tabs is not None:
                tabs.discard(visitor)
                if not tabs:
                    del self.by_address[visitor.address]
                    self.profiles.pop(visitor.address, None)
        return ws

    async def _hello(
        self, ws: web.WebSocketResponse, site_id: str, site: Site, ip: str
    ) -> Visitor | None:
        try:
            msg = await ws.receive(timeout=HELLO_TIMEOUT_S)
        except TimeoutError:
            return None
        if msg.type != WSMsgType.TEXT:
            return None
        try:
            hello = json.loads(msg.data)
        except ValueError:
            hello = None
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            await ws.send_json(_error("bad_frame", "the first frame must be hello"))
            return None
        token = hello.get("token")
        if not isinstance(token, str) or not _TOKEN.match(token):
            if not self.new_per_ip[ip].allow(time.monotonic()):
                await ws.send_json(_error("rate_limited", "too many new visitors"))
                return None
            token = secrets.token_urlsafe(32)
        language = "zh" if str(hello.get("lang", "")).lower().startswith("zh") else "en"
        visitor = Visitor(
            site_id=site_id,
            site=site,
            token=token,
            address=visitor_address(site_id, token),
            ws=ws,
            language=language,
            page=str(hello.get("page", ""))[:500],
        )
        profile = self.profiles.get(visitor.address, {})
        visitor.name = profile.get("name", "")
        visitor.email = profile.get("email", "")
        visitor.topic = profile.get("topic", "")
        visitor.verified = profile.get("verified", "")
        last_id = hello.get("last_id")
        after = last_id if isinstance(last_id, int) and not isinstance(last_id, bool) else 0
        history = await self.hub.chat_history(
            channel=CHANNEL,
            endpoint_kind=ENDPOINT_KIND,
            address=visitor.address,
            after_id=max(0, after),
            limit=HISTORY_LIMIT,
        )
        status = await self._status(visitor)
        # Out of hours, or nobody to answer a new chat: the offline form (a bot, when the
        # site has one, answers at any hour of the opening hours even with no agent in).
        offline = not is_open(site.hours, site.timezone, datetime.now(UTC)) or (
            status.state in ("new", "closed")
            and site.bot_on is None
            and not await self.hub.can_take(channel=CHANNEL, queue=site.queue)
        )
        await ws.send_json(
            {
                "type": "welcome",
                "v": PROTOCOL_VERSION,
                "token": token,
                "visitor": {
                    "name": visitor.name,
                    "email": visitor.email,
                    "verified": bool(visitor.verified),
                },
                "config": self._config(visitor, offline),
                "status": status_frame(status),
                "messages": [message_frame(m, self._files(visitor)) for m in history],
            }
        )
        visitor.last_status = status_frame(status)
        return visitor

    def _config(self, visitor: Visitor, offline: bool) -> dict[str, Any]:
        site, lang = visitor.site, visitor.language
        return {
            "title": site.text(site.title, lang),
            "greeting": site.text(site.greeting, lang),
            "colour": site.colour,
            "position": site.position,
            "prechat": {
                "enabled": site.prechat,
                "required": list(site.required),
                "topics": [{"id": t.id, "label": t.label(lang)} for t in site.topics],
            },
            "offline": offline,
            "upload": {
                "max_bytes": self.settings.max_file_bytes,
                "types": list(self.settings.upload_types),
            },
            "identity": site.identity,
            "bot": bot_name(site, lang),
        }

    def _files(self, visitor: Visitor) -> Callable[[int], str]:
        return lambda file_id: self.file_url(visitor.address, file_id)

    async def _status(self, visitor: Visitor) -> ChatStatus:
        return await self.hub.chat_status(
            channel=CHANNEL, endpoint_kind=ENDPOINT_KIND, address=visitor.address
        )

    async def _serve(self, visitor: Visitor) -> None:
        ws = visitor.ws
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                if msg.type == WSMsgType.BINARY:
                    await ws.send_json(_error("bad_frame", "frames are JSON text"))
                continue
            data: dict[str, Any] = {}
            try:
                data = self._parse(visitor, msg.data)
                answer = await self._frame(visitor, data)
            except FrameError as err:
                answer = _error(err.code, err.detail, data)
            except InvalidInput as err:
                answer = _error("bad_frame", str(err), data)
            except HubError as err:
                logger.warning("web chat frame failed: %s", err)
                answer = _error("unavailable", "try again shortly", data)
            except Exception:
                # Storage away (a database restart): nothing was stored and no ack went out;
                # the visitor stays connected and the widget sends the frame again.
                logger.exception("web chat frame failed")
                answer = _error("unavailable", "try again shortly", data)
            if answer is not None:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_json(answer)

    @staticmethod
    def _parse(visitor: Visitor, raw: str) -> dict[str, Any]:
        if not visitor.frames.allow(time.monotonic()):
            raise FrameError("rate_limited", "too many frames; slow down")
        try:
            data = json.loads(raw)
        except ValueError:
            raise FrameError("bad_frame", "not JSON") from None
        if not isinstance(data, dict):
            raise FrameError("bad_frame", "a frame is a JSON object")
        return data

    async def _frame(self, visitor: Visitor, data: dict[str, Any]) -> dict[str, Any] | None:
        kind = data.get("type")
        if kind == "message":
            return await self._message(visitor, data)
        if kind == "typing":
            await self._typing(visitor, bool(data.get("on")))
            return None
        if kind == "identify":
            return self._identify(visitor, data)
        if kind == "prechat":
            return self._prechat(visitor, data)
        if kind == "offline":
            return await self._offline(visitor, data)
        if kind == "handoff":
            await self._hand_off(visitor)
            return {"type": "ack", "ref": "handoff"}
        if kind == "rate":
            return await self._rate(visitor, data)
        if kind == "ping":
            return {"type": "pong"}
        raise FrameError("bad_frame", f"unknown frame type {str(kind)[:30]!r}")

    # ------------------------------------------------------------------ frames
    def _remember(self, visitor: Visitor, **values: str) -> None:
        profile = self.profiles.setdefault(visitor.address, {})
        profile.update(values)
        for tab in self.by_address.get(visitor.address, ()):
            for key, value in values.items():
                setattr(tab, key, value)

    def _identify(self, visitor: Visitor, data: dict[str, Any]) -> dict[str, Any]:
        site = visitor.site
        identifier = data.get("identifier")
        given = data.get("hash")
        if site.identity == "off":
            raise FrameError("not_allowed", "this site does not verify identities")
        if not isinstance(identifier, str) or not 1 <= len(identifier) <= 200:
            raise FrameError("bad_frame", "identifier must be 1-200 characters")
        if not re.fullmatch(r"[\w.@+\-=/:]+", identifier):
            raise FrameError("bad_frame", "identifier has characters that are not allowed")
        expected = hmac.new(
            site.secret.get_secret_value().encode(), identifier.encode(), hashlib.sha256
        ).hexdigest()
        if not isinstance(given, str) or not hmac.compare_digest(given.lower(), expected):
            logger.warning(
                "web chat %s: identity %r refused (bad hash)", visitor.site_id, identifier
            )
            raise FrameError("identity_refused", "the identifier's hash does not verify")
        values = {"verified": identifier}
        name, email = data.get("name"), data.get("email")
        if isinstance(name, str) and name.strip():
            values["name"] = name.strip()[:200]
        if isinstance(email, str) and _EMAIL.match(email.strip()):
            values["email"] = email.strip()[:320]
        self._remember(visitor, **values)
        return {"type": "identified", "verified": True}

    def _prechat(self, visitor: Visitor, data: dict[str, Any]) -> dict[str, Any]:
        site = visitor.site
        name = str(data.get("name") or "").strip()[:200]
        email = str(data.get("email") or "").strip()[:320]
        topic = str(data.get("topic") or "")
        if "name" in site.required and not name:
            raise FrameError("bad_frame", "name is required")
        if email and not _EMAIL.match(email):
            raise FrameError("bad_frame", "not an email address")
        if "email" in site.required and not email:
            raise FrameError("bad_frame", "email is required")
        if topic and site.topic(topic) is None:
            raise FrameError("bad_frame", "unknown topic")
        self._remember(visitor, name=name, email=email, topic=topic)
        return {"type": "ack", "ref": "prechat"}

    def _mandatory_unverified(self, visitor: Visitor) -> bool:
        return visitor.site.identity == "mandatory" and not visitor.verified

    async def _message(self, visitor: Visitor, data: dict[str, Any]) -> dict[str, Any]:
        if self._mandatory_unverified(visitor):
            raise FrameError("identity_refused", "this site needs a verified identity first")
        client_id = data.get("client_msg_id")
        if not isinstance(client_id, str) or not _CLIENT_MSG_ID.match(client_id):
            raise FrameError("bad_frame", "client_msg_id must be 1-64 of A-Z a-z 0-9 _ -")
        text = data.get("text", "")
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            raise FrameError("too_large" if isinstance(text, str) else "bad_frame", "text")
        files = self._file(data.get("file"))
        if not text.strip() and not files:
            raise FrameError("bad_frame", "an empty message")
        if not self.messages[visitor.address].allow(time.monotonic()):
            raise FrameError("rate_limited", "too many messages; wait a minute")
        site = visitor.site
        topic = site.topic(visitor.topic) if visitor.topic else None
        identifiers: tuple[Identifier, ...] = ()
        if visitor.verified:
            identifiers = (
                Identifier(kind=VERIFIED_KIND, address=f"{visitor.site_id}:{visitor.verified}"),
            )
        metadata: dict[str, Any] = {"site": visitor.site_id}
        if visitor.page:
            metadata["page"] = visitor.page
        if visitor.email:
            metadata["email"] = visitor.email
        result = await self.hub.ingest(
            InboundMessage(
                channel=CHANNEL,
                sender_kind=ENDPOINT_KIND,
                sender=visitor.address,
                provider_id=f"{visitor.address}:{client_id}",
                text=text,
                display_name=visitor.name or None,
                queue=topic.queue if topic else site.queue,
                language=visitor.language,
                attachments=files,
                identifiers=identifiers,
                metadata=metadata,
                hold=site.bot_on is not None,
            )
        )
        if result.message_id is None:
            raise FrameError("unavailable", "not stored; send again")
        # Every tab of the visitor shows it (the sender dedupes by id).
        stored = await self.hub.chat_history(
            channel=CHANNEL,
            endpoint_kind=ENDPOINT_KIND,
            address=visitor.address,
            after_id=result.message_id - 1,
            limit=1,
        )
        if stored and stored[0].id == result.message_id:
            echo = message_frame(stored[0], self._files(visitor))
            echo["client_msg_id"] = client_id  # the tab that sent it matches it exactly
            await self.push(visitor.address, echo)
        ack = {"type": "ack", "client_msg_id": client_id, "id": result.message_id}
        if result.duplicate:
            return ack
        await self._bot_turn(visitor, text)
        if result.opened:
            await self.refresh_status(visitor.address)
        return ack

    async def _rate(self, visitor: Visitor, data: dict[str, Any]) -> dict[str, Any]:
        """The visitor's answer to a satisfaction survey (stars under the survey message):
        stored as a ``csat`` message of the conversation; the first answer counts."""
        score = data.get("score")
        survey_id = data.get("message_id")
        if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
            raise FrameError("bad_frame", "score must be an integer from 1 to 5")
        if not isinstance(survey_id, int) or isinstance(survey_id, bool) or survey_id < 1:
            raise FrameError("bad_frame", "message_id must be the survey message's id")
        result = await self.hub.ingest(
            InboundMessage(
                channel=CHANNEL,
                sender_kind=ENDPOINT_KIND,
                sender=visitor.address,
                provider_id=f"{visitor.address}:rate:{survey_id}",
                text=f"CSAT {score}/5",
                kind="csat",
                metadata={"score": score, "how": "widget"},
            )
        )
        return {"type": "ack", "ref": "rate", "id": result.message_id}

    async def _bot_turn(self, visitor: Visitor, text: str) -> None:
        """While the bot holds the conversation: answer from the FAQ, or hand it to people
        (asked for, no answer known, or the site's bot switched off meanwhile)."""
        if visitor.site.bot is None:
            return  # no bot configured: nothing holds conversations (no status read)
        status = await self._status(visitor)
        if status.state != "bot" or status.conversation_id is None:
            return
        bot = visitor.site.bot_on
        answer = bot.answer(text, visitor.language) if bot is not None else None
        if bot is None or bot.wants_person(text) or answer is None:
            await self._hand_off(visitor)
            return
        message_id = await self.hub.bot_reply(conversation_id=status.conversation_id, text=answer)
        if message_id is None:
            await self.refresh_status(visitor.address)

    async def _hand_off(self, visitor: Visitor) -> None:
        status = await self._status(visitor)
        if status.state == "bot" and status.conversation_id is not None:
            await self.hub.hand_off(conversation_id=status.conversation_id)
        await self.refresh_status(visitor.address)

    def _file(self, raw: Any) -> tuple[Attachment, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            raise FrameError("bad_frame", "file must be an object")
        name = str(raw.get("name") or "file")
        kind = str(raw.get("type") or "")
        if kind not in self.settings.upload_types:
            raise FrameError("not_allowed", f"files of type {kind[:60]!r} are not accepted")
        encoded = raw.get("data")
        if not isinstance(encoded, str):
            raise FrameError("bad_frame", "file data must be base64")
        if len(encoded) > self.settings.max_file_bytes * 4 // 3 + 8:
            raise FrameError("too_large", f"files up to {self.settings.max_file_bytes} bytes")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise FrameError("bad_frame", "file data is not base64") from None
        if not data or len(data) > self.settings.max_file_bytes:
            raise FrameError("too_large", f"files up to {self.settings.max_file_bytes} bytes")
        magic = _MAGIC.get(kind)
        if magic is not None and not data.startswith(magic):
            raise FrameError("not_allowed", f"the file is not a {kind}")
        if kind == "image/webp" and data[8:12] != b"WEBP":
            raise FrameError("not_allowed", "the file is not a image/webp")
        safe = re.sub(r"[^\w.\- ]", "_", name.replace("\\", "/").rsplit("/", 1)[-1])[:120]
        return (Attachment(filename=safe or "file", content_type=kind, data=data),)

    async def _typing(self, visitor: Visitor, on: bool) -> None:
        now = time.monotonic()
        if on and now - visitor.last_typing < TYPING_EVERY_S:
            return
        visitor.last_typing = now if on else 0.0
        await self.hub.customer_typing(
            channel=CHANNEL, endpoint_kind=ENDPOINT_KIND, address=visitor.address, on=on
        )

    async def _offline(self, visitor: Visitor, data: dict[str, Any]) -> dict[str, Any]:
        name = str(data.get("name") or "").strip()[:200]
        email = str(data.get("email") or "").strip()[:320]
        text = data.get("text")
        if not _EMAIL.match(email):
            raise FrameError("bad_frame", "an email address is needed to answer you")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            raise FrameError("bad_frame", "a message of 1-4000 characters")
        if not self.messages[visitor.address].allow(time.monotonic()):
            raise FrameError("rate_limited", "too many messages; wait a minute")
        digest = hashlib.sha256(f"{visitor.address}\n{email}\n{text}".encode()).hexdigest()[:24]
        await self.hub.ingest(
            InboundMessage(
                channel="email",
                sender_kind="email",
                sender=email,
                provider_id=f"webchat-offline:{digest}",
                text=text,
                subject=f"Web chat message from {name or email} (left while we were away)",
                display_name=name or None,
                threading="explicit",
                queue=visitor.site.offline_queue,
                language=visitor.language,
                metadata={"site": visitor.site_id, "via": "webchat-offline"},
            )
        )
        return {"type": "ack", "ref": "offline"}

    # ------------------------------------------------------------------ status
    async def refresh_status(self, address: str) -> None:
        """Send the visitor their conversation's state if it changed."""
        tabs = tuple(self.by_address.get(address, ()))
        if not tabs:
            return
        frame = status_frame(
            await self.hub.chat_status(
                channel=CHANNEL, endpoint_kind=ENDPOINT_KIND, address=address
            )
        )
        await self._send_status(address, frame)

    async def _send_status(self, address: str, frame: dict[str, Any]) -> None:
        tabs = tuple(self.by_address.get(address, ()))
        if not tabs or all(t.last_status == frame for t in tabs):
            return
        for tab in tabs:
            tab.last_status = frame
        await self.push(address, frame)

    async def refresh_waiting(self) -> None:
        """Queued visitors hear their position again (it moves as others are served): one
        read for all of them; those no longer waiting are asked one by one."""
        queued = [
            address
            for address, tabs in tuple(self.by_address.items())
            if any(t.last_status.get("state") == "queued" for t in tabs)
        ]
        if not queued:
            return
        with contextlib.suppress(HubError):
            statuses = await self.hub.chat_waiting(
                channel=CHANNEL, endpoint_kind=ENDPOINT_KIND, addresses=queued
            )
            for address in queued:
                status = statuses.get(address)
                if status is None:
                    await self.refresh_status(address)
                else:
                    await self._send_status(address, status_frame(status))

    async def close_all(self) -> None:
        for tabs in tuple(self.by_address.values()):
            for visitor in tuple(tabs):
                with contextlib.suppress(ConnectionError, RuntimeError):
                    # 1012 (service restart): the widget reconnects, to another process.
                    await visitor.ws.close(code=1012, message=b"hub restarting; reconnect")
        await asyncio.sleep(0)
