"""``[channels.webchat]``: the sites that embed the widget.

```toml
[channels.webchat.sites.demo]
origins = ["https://shop.example"]     # pages allowed to open the chat
secret = "…"                           # HMAC key of verified identities
identity = "optional"                  # off | optional | mandatory
title = "Chat with us"
queue = "support"
topics = [{id = "billing", labels = {en = "Billing", zh = "账单"}, queue = "billing"}]
```
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from contract.hours import Hours, Zone

SiteId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
UPLOAD_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
)


class Topic(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,40}$")]
    labels: dict[str, str]
    queue: str = Field(min_length=1, max_length=100)

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels.get("en") or self.id


class Answer(BaseModel):
    """One FAQ entry: words that ask it (any language), and the answer per language."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keywords: tuple[str, ...] = Field(min_length=1)
    answer: dict[str, str] = Field(min_length=1)


class Bot(BaseModel):
    """A first-line FAQ bot: it answers what it knows and hands the visitor to people when
    they ask, or as soon as it has no answer (it never keeps a visitor it cannot help)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    name: dict[str, str] = Field(default_factory=lambda: {"en": "Assistant", "zh": "智能助理"})
    faq: tuple[Answer, ...] = Field(min_length=1)
    # Words that ask for a person (besides the widget's button).
    handoff_words: tuple[str, ...] = (
        "human",
        "agent",
        "person",
        "someone",
        "operator",
        "人工",
        "客服",
        "真人",
    )

    def wants_person(self, text: str) -> bool:
        folded = text.casefold()
        return any(w.casefold() in folded for w in self.handoff_words)

    def answer(self, text: str, language: str) -> str | None:
        """The answer whose keywords the text names most (None: no answer known)."""
        folded = text.casefold()
        best, hits = None, 0
        for entry in self.faq:
            count = sum(1 for k in entry.keywords if k.casefold() in folded)
            if count > hits:
                best, hits = entry, count
        if best is None:
            return None
        return (
            best.answer.get(language) or best.answer.get("en") or next(iter(best.answer.values()))
        )


class Site(BaseModel):
    """One site that embeds the widget."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Exact origins ("https://shop.example", "http://127.0.0.1:8080") allowed to connect;
    # "self" is the hub's own public URL (its demo page).
    origins: tuple[str, ...] = Field(min_length=1)
    secret: SecretStr = SecretStr("")
    identity: Literal["off", "optional", "mandatory"] = "optional"
    title: dict[str, str] = Field(default_factory=lambda: {"en": "Chat with us", "zh": "在线咨询"})
    greeting: dict[str, str] = Field(
        default_factory=lambda: {
            "en": "Hello! How can we help you today?",
            "zh": "您好！请问有什么可以帮您？",
        }
    )
    colour: str = Field(default="#0b7285", pattern=r"^#[0-9a-fA-F]{6}$")
    position: Literal["left", "right"] = "right"
    queue: str = "support"
    topics: tuple[Topic, ...] = ()
    prechat: bool = True
    required: tuple[Literal["name", "email"], ...] = ("name",)
    # Where the offline form's messages go (as email conversations).
    offline_queue: str = "support"
    hours: Hours = Field(default_factory=dict)
    timezone: Zone = "UTC"
    # A bot answers first (None: people from the first message).
    bot: Bot | None = None

    @property
    def bot_on(self) -> Bot | None:
        return self.bot if self.bot is not None and self.bot.enabled else None

    @field_validator("origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if origin == "self":
                continue
            if not origin.startswith(("http://", "https://")) or origin.rstrip("/") != origin:
                raise ValueError(f"an origin is scheme://host[:port] without a path: {origin!r}")
        return value

    @model_validator(mode="after")
    def _secret_when_verifying(self) -> Site:
        if self.identity != "off" and len(self.secret.get_secret_value()) < 16:
            raise ValueError("identity verification needs a secret of at least 16 characters")
        return self

    def text(self, texts: dict[str, str], language: str) -> str:
        return texts.get(language) or texts.get("en") or next(iter(texts.values()), "")

    def topic(self, topic_id: str) -> Topic | None:
        return next((t for t in self.topics if t.id == topic_id), None)


class WebchatSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sites: dict[SiteId, Site] = Field(min_length=1)
    max_file_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=5 * 1024 * 1024)
    upload_types: tuple[str, ...] = UPLOAD_TYPES
