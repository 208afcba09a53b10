"""A small fake of the Telegram Bot API on 127.0.0.1, for tests and the offline demo.

Serves ``/bot<token>/<method>`` (JSON, urlencoded or multipart bodies, as PTB sends them) and
``/file/bot<token>/<path>``; records every call; answers real-shaped ``{"ok": true, "result":
...}`` envelopes; can refuse a chat with 403 (blocked) or 429 (flood control) and fail a file's
``getFile`` a number of times.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["FakeTelegram", "start_fake_telegram"]

# Fields PTB JSON-encodes (everything that is not a string); decoded so tests see values.
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "allowed_updates",
        "reply_parameters",
        "entities",
        "caption_entities",
        "link_preview_options",
        "drop_pending_updates",
        "show_alert",
        "cache_time",
        "max_connections",
        "disable_notification",
        "protect_content",
        "message_thread_id",
    }
)
_ID_FIELDS = frozenset({"chat_id", "message_id", "user_id", "from_chat_id"})


@dataclass(slots=True, kw_only=True)
class _Refusal:
    status: int
    description: str
    parameters: dict[str, Any] | None = None
    times: int | None = None  # None = until cleared


@dataclass(slots=True)
class FakeTelegram:
    """The fake's state: calls seen, files served, chats refused, webhook registration."""

    token: str
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # file_id -> (path, bytes)
    uploads: list[tuple[str, str, bytes]] = field(default_factory=list)  # (field, name, bytes)
    webhook: dict[str, Any] = field(default_factory=dict)
    _refusals: dict[int, _Refusal] = field(default_factory=dict)
    _file_refusals: dict[str, _Refusal] = field(default_factory=dict)  # file_id -> refusal
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))
    _runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ test controls
    @property
    def bot_user(self) -> dict[str, Any]:
        """The bot's own User object (its id is the token's numeric prefix)."""
        prefix = self.token.split(":", 1)[0]
        return {
            "id": int(prefix) if prefix.isdigit() else 4242,
            "is_bot": True,
            "first_name": "Hub Support",
            "username": "hub_support_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def add_file(
        self, file_id: str, data: bytes, *, file_path: str | None = None
    ) -> dict[str, Any]:
        """Make ``getFile(file_id)`` and its download serve ``data``."""
        path = file_path or f"documents/file_{len(self.files)}"
        self.files[file_id] = (path, data)
        return {"file_id": file_id, "file_path": path, "file_size": len(data)}

    def refuse(
        self,
        chat_id: int,
        status: int,
        description: str,
        *,
        parameters: dict[str, Any] | None = None,
        times: int | None = None,
    ) -> None:
        """Answer the next ``times`` calls for this chat (None: all) with an error envelope."""
        self._refusals[chat_id] = _Refusal(
            status=status, description=description, parameters=parameters, times=times
        )

    def fail_file(
        self,
        file_id: str,
        *,
        times: int | None = 1,
        status: int = 500,
        description: str = "Internal Server Error",
    ) -> None:
        """Answer the next ``times`` ``getFile`` calls for this file with an error (None: all)."""
        self._file_refusals[file_id] = _Refusal(status=status, description=description, times=times)

    def block(self, chat_id: int) -> None:
        """Answer every call for this chat with 403 "bot was blocked by the user"."""
        self.refuse(chat_id, 403, "Forbidden: bot was blocked by the user")

    def flood(self, chat_id: int, retry_after: int, *, times: int | None = 1) -> None:
        """Answer the next ``times`` calls for this chat with 429 and ``retry_after``."""
        self.refuse(
            chat_id,
            429,
            f"Too Many Requests: retry after {retry_after}",
            parameters={"retry_after": retry_after},
            times=times,
        )

    def clear(self, chat_id: int) -> None:
        """Stop refusing this chat."""
        self._refusals.pop(chat_id, None)

    def calls_of(self, method: str) -> list[dict[str, Any]]:
        """The parameters of every call of one method, in order."""
        return [params for name, params in self.calls if name == method]

    # ------------------------------------------------------------------ server
    def app(self) -> web.Application:
        """The aiohttp application of the fake."""
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/{bot}/{method}", self._api)
        app.router.add_get("/file/{bot}/{path:.+}", self._file)
        return app

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["bot"] != f"bot{self.token}":
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append((method, params))
        handler = _METHODS.get(method.lower())
        if handler is None:
            return _error(404, "Not Found")
        refusal = self._refusal(params.get("chat_id"))
        if refusal is None and method.lower() == "getfile":
            refusal = _take(self._file_refusals, params.get("file_id"))
        if refusal is not None:
            return _error(refusal.status, refusal.description, refusal.parameters)
        try:
            result = handler(self, params)
        except _ApiError as err:
            return _error(400, err.description)
        return web.json_response({"ok": True, "result": result})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["bot"] != f"bot{self.token}":
            return _error(401, "Unauthorized")
        path = request.match_info["path"]
        for stored_path, data in self.files.values():
            if stored_path == path:
                return web.Response(body=data, content_type="application/octet-stream")
        return _error(404, "Not Found")

    def _refusal(self, chat_id: Any) -> _Refusal | None:
        if not isinstance(chat_id, int):
            return None
        return _take(self._refusals, chat_id)

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
            return params
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, web.FileField):
                data = value.file.read()
                self.uploads.append((name, value.filename, data))
                params[name] = {
                    "filename": value.filename,
                    "content_type": value.content_type,
                    "size": len(data),
                }
            else:
                params[name] = _decode(name, str(value))
        return params

    # ------------------------------------------------------------------ results
    def _message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise _ApiError("Bad Request: chat not found")
        chat: dict[str, Any] = (
            {"id": chat_id, "type": "private", "first_name": "Customer"}
            if chat_id > 0
            else {"id": chat_id, "type": "supergroup", "title": "Customers"}
        )
        message: dict[str, Any] = {
            "message_id": next(self._ids),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
            **content,
        }
        if isinstance(params.get("reply_markup"), dict):
            message["reply_markup"] = params["reply_markup"]
        return message

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        text = params.get("text")
        if not isinstance(text, str) or not text:
            raise _ApiError("Bad Request: message text is empty")
        return self._message(params, text=text)

    def _send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        size = _upload_size(params.get("photo"))
        unique = f"AQAD{next(self._ids)}"
        photo = [
            {"file_id": f"{unique}-s", "file_unique_id": unique + "s", "width": 90, "height": 90},
            {
                "file_id": f"{unique}-x",
                "file_unique_id": unique + "x",
                "width": 800,
                "height": 800,
                "file_size": size,
            },
        ]
        return self._message(params, photo=photo, **_caption(params))

    def _send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        upload = params.get("document")
        name = upload.get("filename") if isinstance(upload, dict) else "file"
        unique = f"BQAD{next(self._ids)}"
        document = {
            "file_id": f"{unique}-d",
            "file_unique_id": unique,
            "file_name": name,
            "mime_type": (upload or {}).get("content_type") if isinstance(upload, dict) else None,
            "file_size": _upload_size(upload),
        }
        return self._message(
            params,
            document={k: v for k, v in document.items() if v is not None},
            **_caption(params),
        )

    def _get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = params.get("file_id")
        if not isinstance(file_id, str) or file_id not in self.files:
            raise _ApiError("Bad Request: invalid file_id")
        path, data = self.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": f"u{abs(hash(file_id)) % 10**8}",
            "file_size": len(data),
            "file_path": path,
        }

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = params.get("url")
        if not isinstance(url, str):
            raise _ApiError("Bad Request: bad webhook: URL must be provided")
        self.webhook = {
            "url": url,
            "secret_token": params.get("secret_token"),
            "allowed_updates": params.get("allowed_updates"),
            "max_connections": params.get("max_connections", 40),
        }
        return True

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook = {}
        return True

    def _webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        if self.webhook:
            info["max_connections"] = self.webhook.get("max_connections") or 40
            if self.webhook.get("allowed_updates") is not None:
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return info


def _take(refusals: dict[Any, _Refusal], key: Any) -> _Refusal | None:
    """The refusal for ``key``, counting it down (and forgetting it when used up)."""
    refusal = refusals.get(key)
    if refusal is None:
        return None
    if refusal.times is not None:
        refusal.times -= 1
        if refusal.times <= 0:
            del refusals[key]
    return refusal


class _ApiError(Exception):
    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def _decode(name: str, value: str) -> Any:
    if name in _ID_FIELDS and value.lstrip("-").isdigit():
        return int(value)
    if name in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _caption(params: dict[str, Any]) -> dict[str, Any]:
    caption = params.get("caption")
    return {"caption": caption} if isinstance(caption, str) and caption else {}


def _upload_size(upload: Any) -> int | None:
    return upload.get("size") if isinstance(upload, dict) else None


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


_METHODS: dict[str, Any] = {
    "getme": lambda fake, params: fake.bot_user,
    "sendmessage": FakeTelegram._send_message,
    "sendphoto": FakeTelegram._send_photo,
    "senddocument": FakeTelegram._send_document,
    "sendchataction": lambda fake, params: True,
    "answercallbackquery": lambda fake, params: True,
    "getfile": FakeTelegram._get_file,
    "setwebhook": FakeTelegram._set_webhook,
    "deletewebhook": FakeTelegram._delete_webhook,
    "getwebhookinfo": FakeTelegram._webhook_info,
}


async def start_fake_telegram(
    token: str, host: str = "127.0.0.1", port: int = 0
) -> tuple[FakeTelegram, str]:
    """Start the fake; returns it and its base URL (the value of HUB_TELEGRAM_API_BASE)."""
    fake = FakeTelegram(token)
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    fake._runner = runner
    bound = runner.addresses[0][1]
    return fake, f"http://{host}:{bound}"
