"""Constants of the Twilio messaging channel: paths, keywords, statuses, error codes."""

from __future__ import annotations

import re
from typing import Final

from contract.channel import DeliveryStatus

CHANNEL_SMS: Final = "sms"
CHANNEL_WHATSAPP: Final = "whatsapp"
WHATSAPP_PREFIX: Final = "whatsapp:"

PATH_INBOUND: Final = "/webhooks/twilio/messaging"
PATH_STATUS: Final = "/webhooks/twilio/messaging/status"

SIGNATURE_HEADER: Final = "X-Twilio-Signature"
IDEMPOTENCY_HEADER: Final = "I-Twilio-Idempotency-Token"
FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"

API_VERSION: Final = "2010-04-01"
MESSAGES_PATH: Final = "/2010-04-01/Accounts/{account_sid}/Messages.json"

# Twilio ids: two capital letters and 32 hex digits (SM/MM messages, AC accounts, MG services).
SID_RE: Final = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
ACCOUNT_SID_RE: Final = re.compile(r"^AC[0-9a-fA-F]{32}$")
SERVICE_SID_RE: Final = re.compile(r"^MG[0-9a-fA-F]{32}$")

# Twilio answers a webhook within 15 s or gives up; media fetches get a share of that budget
# so the hub still has time to persist and answer.
MEDIA_TIMEOUT_S: Final = 8.0
SEND_TIMEOUT_S: Final = 20.0

# Reading back the Messages list after a send whose answer was lost (``find_sent``): one
# customer's messages, newest first, this many per page and at most this many pages.
RECONCILE_PAGE_SIZE: Final = 50
RECONCILE_MAX_PAGES: Final = 5
RECONCILE_TIMEOUT_S: Final = 15.0
# Twilio's clock against ours: a message Twilio dates up to this long before the lost
# attempt began still counts as that attempt (Twilio's dates have whole seconds).
RECONCILE_CLOCK_SKEW_S: Final = 2.0
# Sends of this process whose outcome is unknown (timeout, dropped connection, 5xx), kept so
# the next attempt looks first; the oldest are forgotten beyond this many.
UNCERTAIN_KEEP: Final = 10_000
# Hosts our account credentials may be sent to when fetching media (besides twilio_api_base).
MEDIA_AUTH_HOST_SUFFIXES: Final = (".twilio.com",)
# Hosts a media URL (and each redirect hop) may name at all: Twilio's API, which redirects
# to its media CDN. Anything else in a MediaUrl is refused unfetched (server-side request
# forgery: the bytes would be served to agents).
MEDIA_HOST_SUFFIXES: Final = (".twilio.com", ".twiliocdn.com")
MEDIA_MAX_REDIRECTS: Final = 3

# Twilio's default opt-out keyword sets (case-insensitive, the whole trimmed body).
STOP_KEYWORDS: Final = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_KEYWORDS: Final = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS: Final = frozenset({"HELP", "INFO"})

# Quick-reply payloads (lower-cased) that ask for a person; the message is flagged for hand-off.
HANDOFF_PAYLOADS: Final = frozenset({"agent", "human", "handoff", "talk_to_agent", "live_agent"})

# Twilio's message statuses mapped onto the hub's delivery states; None = not a delivery
# report of an outbound message (inbound lifecycle states).
TWILIO_STATUS: Final[dict[str, DeliveryStatus | None]] = {
    "queued": "queued",
    "accepted": "queued",
    "scheduled": "queued",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "partially_delivered": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
    "read": "read",
    "receiving": None,
    "received": None,
}

# Forward-only precedence of Twilio statuses (reports race; a lower rank never overwrites a
# higher one). The hub applies it; exported for whoever needs the Twilio spelling.
STATUS_PRECEDENCE: Final[dict[str, int]] = {
    "queued": 1,
    "accepted": 1,
    "scheduled": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "partially_delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
    "read": 5,
}

ERROR_UNSUBSCRIBED: Final = "21610"
ERROR_WHATSAPP_WINDOW: Final = "63016"
WHATSAPP_WINDOW_S: Final = 24 * 3600

# Agent-readable explanations of the error codes we meet most.
ERROR_MESSAGES: Final[dict[str, str]] = {
    "20003": "Twilio rejected the account credentials",
    "21211": "invalid 'To' phone number",
    "21408": "sending to this region is not enabled on the Twilio account",
    "21610": "the recipient replied STOP (unsubscribed); they must text START first",
    "21614": "'To' is not a mobile number that can receive SMS",
    "30003": "unreachable destination handset",
    "30004": "message blocked by the recipient or carrier",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "message filtered by the carrier",
    "30008": "unknown delivery error",
    "63016": "outside the WhatsApp 24-hour customer-service window: send an approved template",
}
