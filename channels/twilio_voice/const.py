"""Twilio voice: paths, parameters and prompts (facts: shared/reference/channels.md §2)."""

from __future__ import annotations

from typing import Final

CHANNEL_VOICE: Final = "voice"
CHANNEL_VOICEMAIL: Final = "voicemail"
CHANNEL_CALLBACK: Final = "callback"
SETTINGS_SECTION: Final = "twilio_voice"

BASE: Final = "/webhooks/twilio/voice"
PATH_INCOMING: Final = f"{BASE}/incoming"
PATH_STATUS: Final = f"{BASE}/status"
PATH_GATHER: Final = f"{BASE}/gather"
PATH_QUEUE_WAIT: Final = f"{BASE}/queue-wait"
PATH_ENQUEUE_ACTION: Final = f"{BASE}/enqueue-action"
PATH_QUEUE_WHISPER: Final = f"{BASE}/queue-whisper"
PATH_AGENT_DIAL_ACTION: Final = f"{BASE}/agent-dial-action"
PATH_VOICEMAIL: Final = f"{BASE}/voicemail"
PATH_TRANSCRIPTION: Final = f"{BASE}/transcription"

SIGNATURE_HEADER: Final = "X-Twilio-Signature"
FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
API_VERSION: Final = "2010-04-01"
CALLS_PATH: Final = "/2010-04-01/Accounts/{account_sid}/Calls.json"
CALL_PATH: Final = "/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json"
REST_TIMEOUT_S: Final = 10.0
RECORDING_TIMEOUT_S: Final = 20.0

# Twilio queue names are at most 64 characters; one queue per caller ("c" + CallSid) lets
# the agent the router chose dial exactly that caller (``<Dial><Queue>`` takes the head).
QUEUE_PREFIX: Final = "c"
# Menus: "lang" (language choice), "main" (the options), "queue" (keys pressed while waiting).
MENUS: Final = ("lang", "main", "queue", "survey")
# A menu is repeated this many times without a valid answer before a default is taken.
MENU_TRIES: Final = 2
CALL_SID_PATTERN: Final = r"CA[0-9a-f]{32}"

# Twilio's <Say> language per hub language.
SAY_LANGUAGE: Final = {"en": "en-US", "zh": "zh-CN"}
LANGUAGE_NAMES: Final = {"en": "English", "zh": "中文"}

PROMPTS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "welcome": "Thank you for calling.",
        "welcome_back": "Welcome back, {name}.",
        "choose_language": "For English, press {key}.",
        "option": "For {label}, press {key}, or say {word}.",
        "sorry": "Sorry, I did not get that.",
        "closed": "We are closed now. Please leave a message after the tone, "
        "and we will call you back.",
        "position": "You are number {position} in the queue.",
        "wait_minutes": "Your expected wait is about {minutes} minutes.",
        "wait_short": "You will be connected shortly.",
        "queue_options": "To leave a voicemail, press {voicemail}. "
        "To be called back instead of waiting, press {callback}.",
        "queue_voicemail_only": "To leave a voicemail, press {voicemail}.",
        "connecting": "Connecting you now.",
        "connecting_to": "Connecting you to {agent}.",
        "callback": "Thank you. We will call you back on this number as soon as we can.",
        "voicemail": "Please leave your message after the tone, then press the pound key "
        "or hang up.",
        "goodbye": "Thank you for calling. Goodbye.",
        "survey": "Before you go: how satisfied were you with our help? Press a key from 1, "
        "poor, to 5, excellent.",
        "survey_thanks": "Thank you for your rating. Goodbye.",
        "error": "Sorry, we cannot take your call right now. Please try again later.",
        "announce_callback": "Calling back {name}.",
    },
    "zh": {
        "welcome": "感谢您的来电。",
        "welcome_back": "{name}，欢迎再次来电。",
        "choose_language": "中文服务请按{key}。",
        "option": "{label}请按{key}，或者说{word}。",
        "sorry": "对不起，我没有听清。",
        "closed": "现在是非工作时间。请在提示音后留言，我们会给您回电。",
        "position": "您前面还有{ahead}位客户，您排在第{position}位。",
        "wait_minutes": "预计等待时间约为{minutes}分钟。",
        "wait_short": "马上为您接通。",
        "queue_options": "留言请按{voicemail}，需要回电请按{callback}。",
        "queue_voicemail_only": "留言请按{voicemail}。",
        "connecting": "正在为您接通。",
        "connecting_to": "正在为您接通{agent}。",
        "callback": "谢谢，我们会尽快按这个号码给您回电。",
        "voicemail": "请在提示音后留言，结束后请按井号键或直接挂机。",
        "goodbye": "感谢您的来电，再见。",
        "survey": "请对本次服务进行评价：非常不满意请按1，非常满意请按5。",
        "survey_thanks": "感谢您的评价，再见。",
        "error": "对不起，现在无法接听您的电话，请稍后再拨。",
        "announce_callback": "正在回电给{name}。",
    },
}
