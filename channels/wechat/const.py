"""Constants of the WeChat Official Account channel: paths, limits, API error codes."""

from __future__ import annotations

from typing import Final

CHANNEL: Final = "wechat"
ENDPOINT_KIND: Final = "wechat"  # the OpenID, one per official account
UNION_KIND: Final = "wechat_union"  # the UnionID, shared by the apps of one Open Platform
SETTINGS_SECTION: Final = "wechat"
WEBHOOK_PATH: Final = "/webhooks/wechat"

# A user's message opens a 48-hour window for customer-service sends.
WINDOW_S: Final = 48 * 3600
# WeChat drops the connection after 5 s and retries (three times); we answer this.
ACK: Final = "success"
# A request's body: one XML message, a few kB (safe mode roughly triples it).
MAX_BODY: Final = 64 * 1024

# Message types we turn into contacts, and event types we record.
MESSAGE_TYPES: Final = frozenset(
    {"text", "image", "voice", "video", "shortvideo", "location", "link"}
)
EVENT_TYPES: Final = frozenset({"subscribe", "unsubscribe", "click", "scan", "view", "location"})

# API paths (below ``api_base``).
STABLE_TOKEN_PATH: Final = "/cgi-bin/stable_token"  # noqa: S105 - a path
SEND_PATH: Final = "/cgi-bin/message/custom/send"
TYPING_PATH: Final = "/cgi-bin/message/custom/typing"
MEDIA_GET_PATH: Final = "/cgi-bin/media/get"
MEDIA_UPLOAD_PATH: Final = "/cgi-bin/media/upload"

# errcodes (a JSON body with errcode != 0 is an error even under HTTP 200).
TOKEN_ERRORS: Final = frozenset({40001, 40014, 42001})  # invalid, malformed, expired token
WINDOW_CLOSED: Final = 45015  # outside the 48 h window, or the user unfollowed
QUOTA_EXCEEDED: Final = 45047  # too many sends in the window
SYSTEM_BUSY: Final = -1
RETRYABLE_ERRORS: Final = frozenset({SYSTEM_BUSY, 45009})  # busy; API call quota for the day

# Refresh a cached token this long before WeChat says it expires.
TOKEN_MARGIN_S: Final = 300
# Image uploads for replies (media/upload type=image).
IMAGE_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif"})
IMAGE_MAX_BYTES: Final = 2 * 1024 * 1024
