"""A scripted web chat visitor speaking PROTOCOL.md over a real websocket (tests, the
demo's simulated visitors, the benchmark)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
from typing import Any

import aiohttp


def identity_hash(secret: str, identifier: str) -> str:
    """What the host site's backend computes for a verified visitor."""
    return hmac.new(secret.encode(), identifier.encode(), hashlib.sha256).hexdigest()


class ChatVisitor:
    """One browser tab: ``connect``, ``say``, read frames with ``next``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        site: str = "demo",
        origin: str | None = None,
        token: str | None = None,
        lang: str = "en",
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.site = site
        self.origin = origin or self.base_url
        self.token = token
        self.lang = lang
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.welcome: dict[str, Any] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._skipped: list[dict[str, Any]] = []

    @property
    def last_id(self) -> int:
        return max(self.messages, default=0)

    async def connect(self, *, last_id: int | None = None) -> dict[str, Any]:
        """Open the socket and say hello; the welcome frame (history replayed after
        ``last_id``, by default what this tab already has)."""
        ws_url = self.base_url.replace("http", "ws", 1) + f"/ws/chat?site={self.site}"
        self.ws = await self.session.ws_connect(
            ws_url, headers={"Origin": self.origin}, max_msg_size=8 * 1024 * 1024
        )
        await self.ws.send_json(
            {
                "type": "hello",
                "v": 1,
                "token": self.token,
                "last_id": self.last_id if last_id is None else last_id,
                "lang": self.lang,
                "page": f"{self.base_url}/chat/demo",
            }
        )
        welcome: dict[str, Any] = await self.ws.receive_json(timeout=10)
        if welcome.get("type") != "welcome":
            raise RuntimeError(f"no welcome: {welcome}")
        self.welcome = welcome
        self.token = welcome["token"]
        for m in welcome["messages"]:
            self.messages[m["id"]] = m
        self._reader = asyncio.create_task(self._read())
        return welcome

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            if frame.get("type") == "message":
                self.messages[frame["id"]] = frame
            await self.frames.put(frame)

    async def send(self, frame: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send_json(frame)

    async def next(self, kind: str | None = None, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The next frame (of ``kind``), skipping others; TimeoutError after ``timeout``."""
        for i, frame in enumerate(self._skipped):
            if kind is None or frame.get("type") == kind:
                del self._skipped[i]
                return frame
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.frames.get()
                if kind is None or frame.get("type") == kind:
                    return frame
                self._skipped.append(frame)  # kept for a later ``next`` of its kind

    async def say(
        self, text: str, *, client_msg_id: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Send a message; its ack."""
        cid = client_msg_id or secrets.token_hex(8)
        await self.send({"type": "message", "client_msg_id": cid, "text": text, **extra})
        async with asyncio.timeout(5.0):
            while True:
                frame = await self.frames.get()
                if frame.get("type") == "error":
                    return frame
                if frame.get("type") == "ack" and frame.get("client_msg_id") == cid:
                    return frame
                self._skipped.append(frame)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await self._reader
