"""In-app messaging: paths, limits, header names (PROTOCOL.md)."""

from __future__ import annotations

from typing import Final

CHANNEL: Final = "app"
ENDPOINT_KIND: Final = "app"  # address "<app id>:<user id>"
SETTINGS_SECTION: Final = "inapp"
PROTOCOL_VERSION: Final = 1

PATH_SOCKET: Final = "/app/v1/ws"
PATH_MESSAGES: Final = "/app/v1/messages"
AUTH_SCHEME: Final = "HubApp"

MAX_BODY: Final = 64 * 1024
MAX_FRAME_BYTES: Final = 64 * 1024
MAX_TEXT: Final = 4000
HISTORY_LIMIT: Final = 500
HEARTBEAT_S: Final = 25.0
HELLO_TIMEOUT_S: Final = 10.0
MESSAGES_PER_MIN: Final = 20
FRAMES_PER_MIN: Final = 120
TYPING_EVERY_S: Final = 2.0
SEND_TIMEOUT_S: Final = 5.0
PUSH_TIMEOUT_S: Final = 10.0
# Headers of the push hook's request to the company's server.
SIGNATURE_HEADER: Final = "X-Hub-Signature-256"
DELIVERY_HEADER: Final = "X-Hub-Delivery"
