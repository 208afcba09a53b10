"""``POST /webhooks/telegram``: secret check, Update parse, files, persist, then answer 200.

Answers, following Telegram's delivery rule (every non-2xx answer is retried, and later updates
wait behind it):

* 403: missing or wrong ``X-Telegram-Bot-Api-Secret-Token`` (also when no secret is configured:
  an unauthenticated webhook is never accepted). Nothing is read or stored.
* 413: body larger than ``max_body_bytes``.
* 400: a body that is not JSON at all. Telegram never sends that, so it is not Telegram and a
  retry is harmless.
* 200: everything Telegram sent that we stored, deliberately dropped (ignored or unknown update
  types, group service messages) or could not use (valid JSON that is not a valid Update): a
  retry would only repeat the same result and block the updates queued behind it.
* 5xx (from the app's error middleware): the hub could not persist; Telegram's retry is wanted.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections import OrderedDict
from dataclasses import replace
from typing import Any, Protocol

from aiohttp import web
from telegram import Bot

from channels.telegram.const import SECRET_HEADER, SEEN_UPDATES, WEBHOOK_PATH
from channels.telegram.payloads import FileRef, MalformedUpdate, ParsedUpdate, parse_update
from contract.channel import Attachment, HubPort
from contract.errors import ChannelError, InvalidInput

logger = logging.getLogger(__name__)


class BotSide(Protocol):
    """What the webhook needs from the adapter: the bot, file fetching, callback answers."""

    @property
    def bot(self) -> Bot | None: ...

    async def fetch_file(self, ref: FileRef) -> Attachment: ...

    async def answer_callback(self, callback_query_id: str, *, text: str | None = None) -> None: ...


class TelegramWebhook:
    """The webhook handler bound to the settings, the hub port and the adapter."""

    def __init__(self, *, settings: Any, hub: HubPort, side: BotSide) -> None:
        self.hub = hub
        self.side = side
        self.secret: bytes = settings.telegram_secret_token.get_secret_value().encode()
        self.max_body: int = settings.max_body_bytes
        self.queue: str | None = settings.telegram_queue or None
        # update_ids already persisted by this process (a shortcut, not the dedupe guard).
        self._seen: OrderedDict[int, None] = OrderedDict()

    def route(self) -> web.RouteDef:
        """The aiohttp route definition."""
        return web.post(WEBHOOK_PATH, self.handle)

    def authentic(self, request: web.Request) -> bool:
        """True when the secret header matches the configured secret (constant time)."""
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        return bool(self.secret) and hmac.compare_digest(given, self.secret)

    async def handle(self, request: web.Request) -> web.Response:
        """Authenticate, parse, persist, acknowledge."""
        if not self.authentic(request):
            logger.warning(
                "telegram webhook: missing or wrong secret token from %s", request.remote
            )
            return web.Response(status=403, text="forbidden")
        if request.content_length is not None and request.content_length > self.max_body:
            logger.warning("telegram webhook: body of %s bytes refused", request.content_length)
            return web.Response(status=413, text="body too large")
        body = await request.read()
        if len(body) > self.max_body:
            logger.warning("telegram webhook: body of %s bytes refused", len(body))
            return web.Response(status=413, text="body too large")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            logger.warning("telegram webhook: body is not JSON (%s bytes)", len(body))
            return web.Response(status=400, text="body is not JSON")
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if isinstance(update_id, int) and update_id in self._seen:
            logger.info("telegram update %s redelivered; already stored", update_id)
            return web.Response(status=200)
        bot = self.side.bot
        if bot is None:
            # Not started yet: let Telegram retry in a moment rather than lose the update.
            return web.Response(status=503, text="starting")
        try:
            parsed = parse_update(data, bot=bot, queue=self.queue)
        except MalformedUpdate as err:
            logger.warning("telegram webhook: malformed update dropped: %s", err)
            return web.Response(status=200)
        await self._process(parsed, body)
        self._remember(parsed.update_id)
        return web.Response(status=200)

    async def _process(self, parsed: ParsedUpdate, body: bytes) -> None:
        if parsed.message is None:
            log = logger.warning if parsed.reason == "unknown update type" else logger.info
            log(
                "telegram update %s (%s) not stored: %s",
                parsed.update_id,
                parsed.update_type or "empty",
                parsed.reason,
            )
        else:
            message = parsed.message
            if parsed.files:
                message = replace(message, attachments=await self._fetch(parsed.files))
            try:
                result = await self.hub.ingest(replace(message, raw=body))
            except InvalidInput as err:
                # The hub refused the content itself (e.g. an unusable id): a retry cannot help.
                logger.warning("telegram update %s refused by the hub: %s", parsed.update_id, err)
            else:
                if result.duplicate:
                    logger.info("telegram update %s already stored", parsed.update_id)
        if parsed.callback_query_id is not None:
            # After persisting: the button's spinner stops once the choice is safely recorded.
            try:
                await self.side.answer_callback(
                    parsed.callback_query_id, text=parsed.callback_answer
                )
            except ChannelError as err:
                logger.warning("answerCallbackQuery %s failed: %s", parsed.callback_query_id, err)

    async def _fetch(self, refs: tuple[FileRef, ...]) -> tuple[Attachment, ...]:
        """Every file, in order: fetched, or pending (the hub fetches it again), or failed."""
        return tuple(await asyncio.gather(*(self._fetch_one(ref) for ref in refs)))

    async def _fetch_one(self, ref: FileRef) -> Attachment:
        try:
            return await self.side.fetch_file(ref)
        except ChannelError as err:
            # Stored without the bytes rather than answering non-2xx: a retry storm would hold
            # back every later update. A file over the limit would not fit on a later try.
            logger.warning("telegram file %s not fetched: %s", ref.file_unique_id, err)
            return Attachment(
                filename=ref.filename,
                content_type=ref.content_type,
                state="pending" if err.retryable else "failed",
                source=None if err.code == "too_large" else ref.file_id,
                error=str(err)[:300],
            )

    def _remember(self, update_id: int) -> None:
        self._seen[update_id] = None
        while len(self._seen) > SEEN_UPDATES:
            self._seen.popitem(last=False)
