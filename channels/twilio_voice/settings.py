"""``[channels.twilio_voice]``: the account, our number, the menus, hours and the hold music.

Environment: ``HUB_CHANNELS__TWILIO_VOICE__<KEY>`` (e.g. ``..._AUTH_TOKEN``). A section with an
account but no auth token stops the hub at start (anyone could sign requests with an empty
key); no section (or no account) leaves the phone channel off.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from channels.twilio_voice.const import PROMPTS
from contract.hours import Hours, Zone, is_open

Key = Annotated[str, Field(pattern=r"^[0-9*#]$")]


class MenuOption(BaseModel):
    """One main-menu choice: a key, words a caller may say, and where it routes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Key
    queue: str = Field(min_length=1, max_length=100)
    # What the prompt calls it, per language ({"en": "billing", "zh": "账单"}).
    labels: dict[str, str]
    # Spoken words that pick it (any language), matched inside the speech result.
    words: tuple[str, ...] = ()
    priority: int | None = Field(default=None, ge=0, le=100)

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels.get("en") or self.queue

    def heard(self, speech: str) -> bool:
        text = speech.casefold()
        return any(w.casefold() in text for w in (*self.words, *self.labels.values()) if w)


DEFAULT_OPTIONS = (
    MenuOption(
        key="1",
        queue="support",
        labels={"en": "general questions", "zh": "一般咨询"},
        words=("support", "question", "help", "咨询", "帮助"),
    ),
    MenuOption(
        key="2",
        queue="billing",
        labels={"en": "billing", "zh": "账单"},
        words=("bill", "invoice", "payment", "账单", "发票", "付款"),
    ),
    MenuOption(
        key="3",
        queue="tech",
        labels={"en": "technical support", "zh": "技术支持"},
        words=("technical", "broken", "not working", "技术", "故障"),
    ),
)


class VoiceSettings(BaseModel):
    """The phone channel's section, validated when the hub starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretStr
    api_base: str = "https://api.twilio.com"
    # Our number: the caller id of the calls we place (agents' legs, callbacks).
    number: str = Field(pattern=r"^\+[1-9]\d{6,14}$")
    # The first is the default; with more than one, new callers choose (known ones don't).
    languages: tuple[str, ...] = ("en", "zh")
    options: tuple[MenuOption, ...] = DEFAULT_OPTIONS
    # Opening hours in ``timezone`` ("08:00-20:00" per day; a day left out is closed). Empty:
    # always open. Outside them callers may leave a voicemail.
    hours: Hours = Field(default_factory=dict)
    timezone: Zone = "UTC"
    hold_music_url: str = (
        "http://com.twilio.sounds.music.s3.amazonaws.com/MARKOVICHAMP-Borghestral.mp3"
    )
    voicemail_key: Key = "1"
    callback_key: Key = "2"
    # How long an agent's phone rings before the call goes to someone else.
    ring_timeout_s: int = Field(default=20, ge=5, le=120)
    voicemail_max_s: int = Field(default=120, ge=10, le=3600)
    # Seconds of hold music between two position announcements.
    announce_every_s: int = Field(default=30, ge=5, le=600)
    # After the agent hangs up, the caller is asked to rate the call with a key (1-5).
    survey: bool = False

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [lang for lang in value if lang not in PROMPTS]
        if not value or unknown:
            raise ValueError(f"languages must be among {sorted(PROMPTS)}; got {list(value)}")
        return value

    @model_validator(mode="after")
    def _distinct_keys(self) -> VoiceSettings:
        keys = [o.key for o in self.options]
        if not keys or len(set(keys)) != len(keys):
            raise ValueError("options need at least one entry and distinct keys")
        if self.voicemail_key == self.callback_key:
            raise ValueError("voicemail_key and callback_key must differ")
        return self

    def is_open(self, now: datetime) -> bool:
        """Whether ``now`` (aware) falls inside the opening hours."""
        return is_open(self.hours, self.timezone, now)

    def option(self, key: str) -> MenuOption | None:
        return next((o for o in self.options if o.key == key), None)
