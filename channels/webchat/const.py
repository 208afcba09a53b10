"""Web chat: paths, limits and the visitor protocol's names (PROTOCOL.md)."""

from __future__ import annotations

from typing import Final

CHANNEL: Final = "webchat"
ENDPOINT_KIND: Final = "webchat"
# A verified identifier from the host site: "<site>:<identifier>".
VERIFIED_KIND: Final = "webchat_id"
SETTINGS_SECTION: Final = "webchat"
PROTOCOL_VERSION: Final = 1

PATH_WIDGET: Final = "/chat/widget.js"
PATH_DEMO: Final = "/chat/demo"
PATH_DEMO_CSS: Final = "/chat/demo.css"
PATH_SOCKET: Final = "/ws/chat"
PATH_FILES: Final = "/chat/files/{file_id}"

# A 5 MiB file is 6.7 MiB of base64, plus the frame around it.
MAX_FRAME_BYTES: Final = 8 * 1024 * 1024
MAX_TEXT: Final = 4000
HISTORY_LIMIT: Final = 500
HEARTBEAT_S: Final = 25.0
HELLO_TIMEOUT_S: Final = 10.0
# Per visitor per minute; per address per minute for new visitors.
MESSAGES_PER_MIN: Final = 20
FRAMES_PER_MIN: Final = 60
NEW_VISITORS_PER_MIN: Final = 10
# At most one typing hint per visitor this often reaches the agent.
TYPING_EVERY_S: Final = 2.0
# How often waiting visitors get their position again.
STATUS_EVERY_S: Final = 10.0
# A frame a visitor's socket could not take in this long closes it (it replays on return).
SEND_TIMEOUT_S: Final = 5.0
FILE_URL_TTL_S: Final = 24 * 3600
