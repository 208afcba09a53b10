"""Constants of the Telegram channel: paths, headers, update types, limits."""

from __future__ import annotations

import re
from typing import Final

CHANNEL: Final = "telegram"
WEBHOOK_PATH: Final = "/webhooks/telegram"
SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name

# The update types the hub acts on; `hub telegram set-webhook` asks Telegram for these only.
HANDLED_UPDATES: Final = ("message", "edited_message", "callback_query")

# Update types we deliberately drop (answered 200 so Telegram does not retry them). Anything
# in neither set is logged as unknown and also answered 200.
IGNORED_UPDATES: Final = frozenset(
    {
        "channel_post",
        "edited_channel_post",
        "inline_query",
        "chosen_inline_result",
        "shipping_query",
        "pre_checkout_query",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
        "message_reaction",
        "message_reaction_count",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "purchased_paid_media",
        "managed_bot",
        "guest_message",
    }
)

# Chat types whose messages become conversations: a private chat is the customer's own; a group
# is its own conversation keyed by the group's chat id (see README, "Group chats").
PRIVATE_CHAT: Final = "private"
GROUP_CHATS: Final = frozenset({"group", "supergroup"})

CSAT_PREFIX: Final = "csat:"
CSAT_SCORES: Final = range(1, 6)
CSAT_THANKS: Final = "Thank you for your feedback!"
START_COMMAND: Final = "start"

# Bot API limits: 4096 characters per text message, 1024 per caption, 200 per callback answer,
# 64 bytes of callback data, 20 MB per getFile download on the cloud Bot API.
TEXT_LIMIT: Final = 4096
CAPTION_LIMIT: Final = 1024
CALLBACK_ANSWER_LIMIT: Final = 200
CALLBACK_DATA_LIMIT: Final = 64
DOWNLOAD_LIMIT: Final = 20 * 1024 * 1024

# Telegram waits for our answer and then retries; file downloads get a bounded share of that.
DOWNLOAD_TIMEOUT_S: Final = 10.0
# Redelivered update ids remembered in memory so a retry is answered without refetching files
# (the hub's provider-id dedupe is the durable guard; this is only a shortcut).
SEEN_UPDATES: Final = 2048

# setWebhook's secret_token: 1-256 characters of A-Z, a-z, 0-9, _ and -.
SECRET_TOKEN_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

# Content types sent as photos (re-encoded by Telegram); anything else goes as a document.
PHOTO_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/webp"})
