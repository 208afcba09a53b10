"""The Telegram adapter: a python-telegram-bot ``Bot`` for sends, the webhook for inbound."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.constants import ChatAction
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from channels.telegram.const import (
    CALLBACK_DATA_LIMIT,
    CAPTION_LIMIT,
    CHANNEL,
    CSAT_PREFIX,
    CSAT_SCORES,
    DOWNLOAD_LIMIT,
    DOWNLOAD_TIMEOUT_S,
    HANDLED_UPDATES,
    PHOTO_TYPES,
    TEXT_LIMIT,
    WEBHOOK_PATH,
)
from channels.telegram.payloads import FileRef
from channels.telegram.webhook import TelegramWebhook
from contract.channel import Attachment, ChannelContext, OutboundMessage, SendReceipt
from contract.errors import ChannelError, ConfigError
from contract.http import read_capped

logger = logging.getLogger(__name__)

CSAT_LABELS = {1: "😞 1", 2: "🙁 2", 3: "😐 3", 4: "🙂 4", 5: "😀 5"}
PHOTO_MAX_BYTES = 10 * 1024 * 1024  # Bot API: larger pictures must go as documents


def provider_error(err: TelegramError, action: str) -> ChannelError:
    """The one place Bot API errors become the hub's ChannelError."""
    if isinstance(err, RetryAfter):
        return ChannelError(
            f"{action}: Telegram flood control, retry in {_retry_after(err)} s",
            retryable=True,
            code="flood",
            retry_after=_retry_after(err),
        )
    if isinstance(err, Forbidden):
        # "bot was blocked by the user", "user is deactivated", kicked from the group.
        return ChannelError(f"{action}: {err.message}", retryable=False, code="blocked")
    if isinstance(err, ChatMigrated):
        return ChannelError(
            f"{action}: group became supergroup {err.new_chat_id}",
            retryable=False,
            code="chat_migrated",
        )
    if isinstance(err, InvalidToken):
        return ChannelError(f"{action}: bot token rejected", retryable=False, code="invalid_token")
    # BadRequest and TimedOut are NetworkError subclasses in PTB: test them first.
    if isinstance(err, BadRequest):
        return ChannelError(f"{action}: {err.message}", retryable=False, code="bad_request")
    if isinstance(err, TimedOut):
        return ChannelError(f"{action}: timed out", retryable=True, code="timeout")
    if isinstance(err, NetworkError):
        return ChannelError(f"{action}: {err.message}", retryable=True, code="network")
    return ChannelError(f"{action}: {err.message}", retryable=True, code="telegram")


def _retry_after(err: RetryAfter) -> float:
    # PTB 22 warns on reading this while it migrates from int seconds to timedelta.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = err.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def inline_keyboard(options: Mapping[str, Any]) -> InlineKeyboardMarkup | None:
    """``options["reply_markup"]`` (rows of {text, callback_data|url}) or ``options["csat"]``."""
    if options.get("csat"):
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(CSAT_LABELS[n], callback_data=f"{CSAT_PREFIX}{n}")
                    for n in CSAT_SCORES
                ]
            ]
        )
    spec = options.get("reply_markup")
    if not spec:
        return None
    if isinstance(spec, Mapping):
        spec = spec.get("inline_keyboard")
    if not isinstance(spec, list) or not all(isinstance(row, list) for row in spec):
        raise ChannelError(
            "reply_markup must be a list of rows of buttons", retryable=False, code="bad_options"
        )
    return InlineKeyboardMarkup([[_button(b) for b in row] for row in spec])


def _button(spec: Any) -> InlineKeyboardButton:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("text"), str):
        raise ChannelError("a button needs a text", retryable=False, code="bad_options")
    data, url = spec.get("callback_data"), spec.get("url")
    if isinstance(data, str) and 0 < len(data.encode()) <= CALLBACK_DATA_LIMIT:
        return InlineKeyboardButton(spec["text"], callback_data=data)
    if isinstance(url, str) and url:
        return InlineKeyboardButton(spec["text"], url=url)
    raise ChannelError(
        "a button needs callback_data (1-64 bytes) or url", retryable=False, code="bad_options"
    )


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Chunks of at most ``limit`` UTF-16 units (Telegram's count), split at line ends if any."""
    chunks: list[str] = []
    rest = text
    while _utf16_len(rest) > limit:
        cut = _fit(rest, limit)
        newline = rest.rfind("\n", 0, cut)
        if newline > cut // 2:
            cut = newline + 1
        chunks.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        chunks.append(rest)
    return chunks


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, limit: int) -> int:
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return i
    return len(text)


def _chat_id(message: OutboundMessage) -> int:
    # A private chat's id is the user's id (the endpoint address). Group conversations are keyed
    # by the group's chat id, always negative; only such a thread key is taken, so a numeric
    # thread key of another channel's conversation (cross-channel reply) can never redirect.
    key = str(message.options.get("thread_key") or "")
    if key.startswith("-") and key[1:].isdigit():
        return int(key)
    to = message.to.strip()
    if to.lstrip("-").isdigit():
        return int(to)
    raise ChannelError(f"not a Telegram chat id: {message.to!r}", retryable=False, code="address")


def make_bot(token: str, api_base: str) -> tuple[Bot, HTTPXRequest]:
    """A PTB bot talking to ``api_base`` (Telegram or a fake), and its HTTP client to close."""
    # PTB 22 is migrating durations (RetryAfter.retry_after, Voice.duration) from int seconds to
    # timedelta and warns on every 429 unless opted in; we handle both, so opt in (documented
    # switch of PTB, read when the value is accessed).
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    request = HTTPXRequest(
        connection_pool_size=16,
        read_timeout=15.0,
        write_timeout=15.0,
        connect_timeout=5.0,
        pool_timeout=5.0,
        media_write_timeout=30.0,
    )
    base = api_base.rstrip("/")
    bot = Bot(
        token,
        base_url=f"{base}/bot",
        base_file_url=f"{base}/file/bot",
        request=request,
        get_updates_request=request,
    )
    return bot, request


class _RedactToken(logging.Filter):
    """Keeps the bot token (part of every Bot API URL) out of httpx's request log lines."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg = message.replace(self.token, "<token>")
            record.args = ()
        return True


class TelegramAdapter:
    """Telegram Bot API channel."""

    channels = frozenset({CHANNEL})
    reply_options: Mapping[str, frozenset[str]] = {CHANNEL: frozenset({"reply_markup", "csat"})}

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self._token: str = settings.telegram_bot_token.get_secret_value()
        self.api_base: str = settings.telegram_api_base.rstrip("/")
        self.max_file_bytes = min(int(settings.attachment_max_bytes), DOWNLOAD_LIMIT)
        self._bot: Bot | None = None
        self._request: HTTPXRequest | None = None
        self._redact = _RedactToken(self._token)
        self.webhook = TelegramWebhook(settings=settings, hub=ctx.hub, side=self)

    @property
    def bot(self) -> Bot | None:
        """The PTB bot once started."""
        return self._bot

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return [self.webhook.route()]

    async def start(self) -> None:
        """Build the bot; no network call, so the hub starts even when Telegram is away."""
        if not self.webhook.secret:
            logger.warning(
                "HUB_TELEGRAM_SECRET_TOKEN is empty: every Telegram webhook call will get 403"
            )
        for name in ("httpx", "telegram.Bot"):
            logging.getLogger(name).addFilter(self._redact)
        # Bot.initialize() would call getMe; sends work without it and the token is checked by
        # `hub telegram info` instead, so start does not depend on Telegram being reachable.
        self._bot, self._request = make_bot(self._token, self.api_base)

    async def stop(self) -> None:
        """Close the bot's HTTP client."""
        bot, request = self._bot, self._request
        self._bot = self._request = None
        if bot is not None:
            await bot.shutdown()
        if request is not None:
            # The bot was never initialize()d, so its shutdown() leaves our client open.
            await request.shutdown()
        for name in ("httpx", "telegram.Bot"):
            logging.getLogger(name).removeFilter(self._redact)

    def _require_bot(self) -> Bot:
        if self._bot is None:
            raise ChannelError("telegram adapter not started", retryable=True, code="not_started")
        return self._bot

    # ------------------------------------------------------------------------ outbound
    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Text (split at 4096 units), files, inline keyboards; receipt of the first message."""
        bot = self._require_bot()
        chat_id = _chat_id(message)
        markup = inline_keyboard(message.options)
        text = message.text or ""
        if not text.strip() and not message.attachments:
            raise ChannelError("nothing to send", retryable=False, code="empty")
        sent: list[Message] = []
        try:
            if len(message.attachments) == 1 and _utf16_len(text) <= CAPTION_LIMIT:
                # One file with a short text: a single message, the text as its caption.
                sent.append(
                    await self._send_file(bot, chat_id, message.attachments[0], text, markup)
                )
            else:
                chunks = split_text(text) if text.strip() else []
                for i, chunk in enumerate(chunks):
                    last = i == len(chunks) - 1 and not message.attachments
                    sent.append(
                        await bot.send_message(
                            chat_id=chat_id, text=chunk, reply_markup=markup if last else None
                        )
                    )
                for j, att in enumerate(message.attachments):
                    last = j == len(message.attachments) - 1
                    sent.append(
                        await self._send_file(bot, chat_id, att, None, markup if last else None)
                    )
        except TelegramError as err:
            # A partial send (first chunk out, second refused) is retried whole: at-least-once.
            raise provider_error(err, "send") from err
        first = sent[0]
        return SendReceipt(
            provider_id=f"{first.chat.id}:{first.message_id}",
            status="sent",
            metadata={"message_ids": [m.message_id for m in sent], "chat_id": first.chat.id},
        )

    async def _send_file(
        self,
        bot: Bot,
        chat_id: int,
        att: Attachment,
        caption: str | None,
        markup: InlineKeyboardMarkup | None,
    ) -> Message:
        caption = caption or None
        if att.content_type in PHOTO_TYPES and len(att.data) <= PHOTO_MAX_BYTES:
            return await bot.send_photo(
                chat_id=chat_id,
                photo=att.data,
                filename=att.filename or "photo.jpg",
                caption=caption,
                reply_markup=markup,
            )
        return await bot.send_document(
            chat_id=chat_id,
            document=att.data,
            filename=att.filename or "file",
            caption=caption,
            reply_markup=markup,
        )

    async def register_webhook(self, public_url: str) -> str:
        """Ask Telegram to deliver to this hub (setWebhook with our secret token and only
        the update types we handle), for the admin's channel page."""
        bot = self._require_bot()
        url = f"{public_url}{WEBHOOK_PATH}"
        if not url.startswith("https://"):
            raise ChannelError(
                f"Telegram delivers only to https:// URLs; HUB_PUBLIC_URL gives {url}",
                retryable=False,
                code="not_https",
            )
        try:
            await bot.set_webhook(
                url=url,
                secret_token=self.webhook.secret.decode(),
                allowed_updates=list(HANDLED_UPDATES),
            )
        except TelegramError as err:
            raise provider_error(err, "setWebhook") from err
        return f"webhook set: {url} (updates: {', '.join(HANDLED_UPDATES)})"

    async def typing(self, *, channel: str, to: str) -> None:
        """Show "typing…" in the chat (best effort: failures are only logged)."""
        bot = self._require_bot()
        try:
            await bot.send_chat_action(chat_id=int(to), action=ChatAction.TYPING)
        except ValueError:
            logger.info("typing: %r is not a Telegram chat id", to)
        except TelegramError as err:
            logger.info("typing indicator failed: %s", provider_error(err, "sendChatAction"))

    async def answer_callback(self, callback_query_id: str, *, text: str | None = None) -> None:
        """Stop the button's progress spinner (answerCallbackQuery), with an optional toast."""
        bot = self._require_bot()
        try:
            await bot.answer_callback_query(callback_query_id, text=text)
        except TelegramError as err:
            raise provider_error(err, "answerCallbackQuery") from err

    # ------------------------------------------------------------------------ files
    async def fetch_file(self, ref: FileRef) -> Attachment:
        """``getFile`` then download, refusing files over the attachment limit."""
        bot = self._require_bot()
        limit = self.max_file_bytes
        if ref.size is not None and ref.size > limit:
            raise ChannelError(
                f"file of {ref.size} bytes exceeds {limit}", retryable=False, code="too_large"
            )
        try:
            tg_file = await bot.get_file(ref.file_id)
        except TelegramError as err:
            raise provider_error(err, "getFile") from err
        if tg_file.file_size is not None and tg_file.file_size > limit:
            raise ChannelError(
                f"file of {tg_file.file_size} bytes exceeds {limit}",
                retryable=False,
                code="too_large",
            )
        if not tg_file.file_path:
            raise ChannelError("getFile returned no file_path", retryable=True, code="no_path")
        data = await self._download(tg_file.file_path, limit)
        return Attachment(
            filename=ref.filename, content_type=ref.content_type, data=data, source=ref.file_id
        )

    async def fetch_attachment(
        self, *, channel: str, source: str, content_type: str, filename: str | None
    ) -> Attachment:
        """Fetch a file again by its ``file_id`` (``source``), for the hub's media retries."""
        ref = FileRef(
            file_id=source, file_unique_id="", filename=filename or "", content_type=content_type
        )
        return await self.fetch_file(ref)

    async def _download(self, url: str, limit: int) -> bytes:
        # The URL holds the bot token: it is never logged or stored (errors name the type only).
        try:
            async with self.ctx.http().get(
                url, timeout=aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_S)
            ) as resp:
                if resp.status != 200:
                    raise ChannelError(
                        f"file download answered {resp.status}",
                        retryable=resp.status >= 500 or resp.status == 429,
                        code="download",
                    )
                return await read_capped(resp, limit)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ChannelError(
                f"file download failed: {type(err).__name__}", retryable=True, code="download"
            ) from None


def create(ctx: ChannelContext) -> TelegramAdapter | None:
    """The adapter, or None when HUB_TELEGRAM_BOT_TOKEN is empty."""
    if not ctx.settings.telegram_bot_token.get_secret_value():
        return None
    if not ctx.settings.telegram_secret_token.get_secret_value():
        # The webhook would refuse every update; say so at start rather than drop them all.
        raise ConfigError(
            "missing setting HUB_TELEGRAM_SECRET_TOKEN: required when HUB_TELEGRAM_BOT_TOKEN "
            "is set (Telegram sends it with every update; 1-256 characters A-Z a-z 0-9 _ -)"
        )
    return TelegramAdapter(ctx)
