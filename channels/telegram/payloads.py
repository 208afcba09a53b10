"""Typed parse of Telegram ``Update`` JSON into channel-neutral inbound messages.

Pure: no network. Files a message carries are returned as :class:`FileRef` values; the webhook
fetches them (``getFile`` + download) and attaches the bytes before handing the message to the
hub.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from telegram import Bot, Message, MessageEntity, Update, User
from telegram.warnings import PTBDeprecationWarning

from channels.telegram.const import (
    CHANNEL,
    CSAT_PREFIX,
    CSAT_SCORES,
    CSAT_THANKS,
    GROUP_CHATS,
    HANDLED_UPDATES,
    IGNORED_UPDATES,
    PRIVATE_CHAT,
)
from contract.channel import Identifier, InboundKind, InboundMessage
from contract.errors import InvalidInput

__all__ = [
    "FileRef",
    "MalformedUpdate",
    "ParsedUpdate",
    "parse_update",
    "update_type",
]


class MalformedUpdate(InvalidInput):
    """Valid JSON that is not a usable Telegram Update."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FileRef:
    """A file a message carries, to be fetched through ``getFile``."""

    file_id: str
    file_unique_id: str
    filename: str
    content_type: str
    size: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedUpdate:
    """What one Update means for the hub: a message to store (or why none), files, a callback."""

    update_id: int
    update_type: str
    message: InboundMessage | None
    # Why nothing is stored (ignored type, group service message, ...); empty when stored.
    reason: str = ""
    files: tuple[FileRef, ...] = ()
    # A callback query must be answered (answerCallbackQuery) even when nothing is stored.
    callback_query_id: str | None = None
    callback_answer: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Content:
    """The customer-visible content of one Message."""

    text: str
    kind: InboundKind = "message"
    files: tuple[FileRef, ...] = ()
    identifiers: tuple[Identifier, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


Parser = Callable[[Update, int, str | None], ParsedUpdate]


def update_type(data: Mapping[str, Any]) -> str:
    """The Update's type: its one optional field besides ``update_id`` ('' when none)."""
    return next((key for key in data if key != "update_id"), "")


def parse_update(data: Any, *, bot: Bot | None = None, queue: str | None = None) -> ParsedUpdate:
    """Parse decoded Update JSON; raises :class:`MalformedUpdate` for unusable input."""
    if not isinstance(data, dict):
        raise MalformedUpdate("an Update is a JSON object")
    update_id = data.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise MalformedUpdate("update_id missing or not an integer")
    kind = update_type(data)
    parser = PARSERS.get(kind)
    if parser is None:
        reason = "ignored update type" if kind in IGNORED_UPDATES else "unknown update type"
        return ParsedUpdate(update_id=update_id, update_type=kind, message=None, reason=reason)
    try:
        update = Update.de_json(data, bot)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise MalformedUpdate(f"{kind} update {update_id}: {type(err).__name__}: {err}") from err
    return parser(update, update_id, queue)


# ---------------------------------------------------------------------------- messages
def _parse_message(update: Update, update_id: int, queue: str | None) -> ParsedUpdate:
    return _from_message(update.message, update_id, "message", queue)


def _parse_edited(update: Update, update_id: int, queue: str | None) -> ParsedUpdate:
    return _from_message(update.edited_message, update_id, "edited_message", queue)


def _from_message(
    msg: Message | None, update_id: int, kind: str, queue: str | None
) -> ParsedUpdate:
    if msg is None:
        raise MalformedUpdate(f"{kind} update {update_id} without a message")
    _check_ids(kind, update_id, msg)
    skipped = ParsedUpdate(update_id=update_id, update_type=kind, message=None)
    chat = msg.chat
    user = msg.from_user
    if chat.type not in GROUP_CHATS and chat.type != PRIVATE_CHAT:
        return replace(skipped, reason=f"{chat.type} chat")
    if user is None:
        # Anonymous group admins and channel posts have a sender_chat, not a person.
        return replace(skipped, reason="no sending user")
    if user.is_bot:
        return replace(skipped, reason="sent by a bot")
    content = _content(msg, user)
    if content is None:
        return replace(skipped, reason="no customer content (service message)")
    edit = kind == "edited_message"
    metadata: dict[str, Any] = {
        "update_id": update_id,
        "chat_id": chat.id,
        "chat_type": chat.type,
        "message_id": msg.message_id,
    }
    if user.username:
        metadata["username"] = user.username
    if chat.type in GROUP_CHATS:
        metadata["chat_title"] = chat.title or ""
    if msg.reply_to_message is not None:
        metadata["reply_to_message_id"] = msg.reply_to_message.message_id
    if msg.media_group_id:
        metadata["media_group_id"] = msg.media_group_id
    metadata.update(content.metadata)
    message = InboundMessage(
        channel=CHANNEL,
        sender_kind="telegram",
        sender=str(user.id),
        provider_id=f"{chat.id}:{msg.message_id}",
        text=content.text,
        kind="edit" if edit else content.kind,
        display_name=user.full_name or None,
        thread_key=str(chat.id),
        # The chat id is the conversation key: only it continues a conversation, so a
        # customer's private chat and a group they write in never share one.
        threading="explicit",
        subject=chat.title if chat.type in GROUP_CHATS else None,
        identifiers=() if edit else content.identifiers,
        queue=queue,
        language=user.language_code,
        occurred_at=(msg.edit_date or msg.date) if edit else msg.date,
        metadata=metadata,
    )
    return ParsedUpdate(
        update_id=update_id,
        update_type=kind,
        message=message,
        # An edit replaces the stored text only; the original's files were fetched already.
        files=() if edit else content.files,
    )


def _check_ids(kind: str, update_id: int, msg: Message) -> None:
    # PTB does not type-check while decoding; ids are our dedupe keys, so check them here.
    user = msg.from_user
    if (
        not _is_int(msg.message_id)
        or not _is_int(msg.chat.id)
        or (user is not None and not _is_int(user.id))
    ):
        raise MalformedUpdate(f"{kind} update {update_id}: ids are not integers")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _content(msg: Message, user: User) -> _Content | None:
    """Text, files and identifiers of a message; None for service messages."""
    caption = msg.caption or ""
    if msg.text is not None:
        return _text_content(msg)
    if msg.photo:
        # The same picture in ascending sizes: store only the largest.
        best = max(msg.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        ref = FileRef(
            file_id=best.file_id,
            file_unique_id=best.file_unique_id,
            filename=f"photo_{best.file_unique_id}.jpg",
            content_type="image/jpeg",
            size=best.file_size,
        )
        meta: dict[str, Any] = {
            "photo": {"width": best.width, "height": best.height, "file_id": best.file_id}
        }
        return _Content(text=caption, files=(ref,), metadata=meta)
    if msg.voice is not None:
        voice = msg.voice
        ref = FileRef(
            file_id=voice.file_id,
            file_unique_id=voice.file_unique_id,
            filename=f"voice_{voice.file_unique_id}.ogg",
            content_type=voice.mime_type or "audio/ogg",
            size=voice.file_size,
        )
        meta = {
            "voice": {"duration": _seconds(voice, "duration"), "file_id": voice.file_id},
            # No speech-to-text is configured: the agent gets the audio, not a transcript.
            "transcript": None,
        }
        return _Content(text=caption, files=(ref,), metadata=meta)
    for name in ("document", "audio", "video", "video_note", "animation"):
        media = getattr(msg, name)
        if media is not None:
            return _file_content(name, media, caption)
    if msg.location is not None:
        return _location_content(msg)
    if msg.contact is not None:
        return _contact_content(msg, user)
    if msg.sticker is not None:
        # Stickers are decoration (webp/tgs animations); the emoji carries their meaning.
        emoji = msg.sticker.emoji or ""
        return _Content(text=emoji or "[sticker]", metadata={"sticker": {"emoji": emoji}})
    return None


def _text_content(msg: Message) -> _Content:
    text = msg.text or ""
    command = next(
        (
            e
            for e in msg.entities
            if e.type == MessageEntity.BOT_COMMAND and e.offset == 0 and e.length > 1
        ),
        None,
    )
    if command is None:
        return _Content(text=text)
    # Entity offsets count UTF-16 units; a command is ASCII at offset 0, so they match here.
    name = text[1 : command.length].split("@", 1)[0].lower()
    payload = text[command.length :].strip() or None
    return _Content(text=text, kind="command", metadata={"command": name, "payload": payload})


def _file_content(name: str, media: Any, caption: str) -> _Content:
    unique = str(media.file_unique_id)
    filename = getattr(media, "file_name", None) or f"{name}_{unique}"
    default_type = {"video_note": "video/mp4", "animation": "video/mp4"}.get(
        name, "application/octet-stream"
    )
    ref = FileRef(
        file_id=str(media.file_id),
        file_unique_id=unique,
        filename=filename,
        content_type=getattr(media, "mime_type", None) or default_type,
        size=media.file_size,
    )
    meta: dict[str, Any] = {"file_id": ref.file_id, "file_name": filename}
    return _Content(text=caption, files=(ref,), metadata={name: meta})


def _location_content(msg: Message) -> _Content:
    loc = msg.location
    assert loc is not None
    meta: dict[str, Any] = {"latitude": loc.latitude, "longitude": loc.longitude}
    if loc.horizontal_accuracy is not None:
        meta["horizontal_accuracy"] = loc.horizontal_accuracy
    if loc.live_period is not None:
        meta["live_period"] = _seconds(loc, "live_period")
    text = f"📍 {loc.latitude}, {loc.longitude}"
    if msg.venue is not None:
        meta["venue"] = {"title": msg.venue.title, "address": msg.venue.address}
        text = f"📍 {msg.venue.title}, {msg.venue.address} ({loc.latitude}, {loc.longitude})"
    return _Content(text=text, metadata={"location": meta})


def _contact_content(msg: Message, user: User) -> _Content:
    contact = msg.contact
    assert contact is not None
    phone = contact.phone_number.strip()
    # Telegram sends international digits without "+"; the hub normalizes to E.164.
    if phone and not phone.startswith("+"):
        phone = "+" + phone
    own = contact.user_id is not None and contact.user_id == user.id
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p)
    meta = {
        "phone_number": phone,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "user_id": contact.user_id,
        "own": own,
    }
    # Only the user's own number (shared through Telegram's "share my contact") is verified by
    # Telegram; a third party's card is just data and never links identities.
    identifiers = (Identifier(kind="phone", address=phone, verified=True),) if own else ()
    return _Content(
        text=f"📇 {name}, {phone}" if name else f"📇 {phone}",
        identifiers=identifiers,
        metadata={"contact": meta},
    )


def _seconds(obj: object, attr: str) -> int | float | None:
    """A duration attribute as seconds, without PTB's int/timedelta migration warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = getattr(obj, attr)
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        return int(seconds) if seconds.is_integer() else seconds
    return value if isinstance(value, int | float) else None


# ---------------------------------------------------------------------------- callbacks
def _parse_callback(update: Update, update_id: int, queue: str | None) -> ParsedUpdate:
    cq = update.callback_query
    if cq is None or not isinstance(cq.id, str) or cq.from_user is None:
        raise MalformedUpdate(f"callback_query update {update_id} without id or sender")
    if not _is_int(cq.from_user.id):
        raise MalformedUpdate(f"callback_query update {update_id}: sender id not an integer")
    base = ParsedUpdate(
        update_id=update_id,
        update_type="callback_query",
        message=None,
        callback_query_id=cq.id,
    )
    data = cq.data
    if not data:
        return replace(base, reason="callback without data (game)")
    # cq.message is the bot's own message carrying the keyboard: its chat is the conversation,
    # its text is ours and never becomes customer text.
    chat_id = cq.message.chat.id if cq.message is not None else None
    metadata: dict[str, Any] = {
        "update_id": update_id,
        "callback_query_id": cq.id,
        "callback_data": data,
        "chat_instance": cq.chat_instance,
    }
    if cq.message is not None:
        metadata["chat_id"] = chat_id
        metadata["bot_message_id"] = cq.message.message_id
    score = _csat_score(data)
    kind: InboundKind
    if score is not None:
        kind, text, answer = "csat", f"CSAT {score}/5", CSAT_THANKS
        metadata["score"] = score
    else:
        kind, text, answer = "event", data, None
        metadata["event"] = "callback_query"
    message = InboundMessage(
        channel=CHANNEL,
        sender_kind="telegram",
        sender=str(cq.from_user.id),
        provider_id=f"cb:{cq.id}",
        text=text,
        kind=kind,
        display_name=cq.from_user.full_name or None,
        thread_key=str(chat_id) if chat_id is not None else None,
        threading="explicit",
        queue=queue,
        language=cq.from_user.language_code,
        metadata=metadata,
    )
    return replace(base, message=message, callback_answer=answer)


def _csat_score(data: str) -> int | None:
    if not data.startswith(CSAT_PREFIX):
        return None
    value = data.removeprefix(CSAT_PREFIX)
    if not value.isdigit() or int(value) not in CSAT_SCORES:
        return None
    return int(value)


# Update type -> parser; IGNORED_UPDATES lists what we drop on purpose.
PARSERS: dict[str, Parser] = {
    "message": _parse_message,
    "edited_message": _parse_edited,
    "callback_query": _parse_callback,
}
assert set(PARSERS) == set(HANDLED_UPDATES)
assert not set(PARSERS) & IGNORED_UPDATES
