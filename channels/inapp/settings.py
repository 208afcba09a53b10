"""``[channels.inapp.apps.<id>]``: each app's signing secret, queue and push hook.

Environment: ``HUB_CHANNELS__INAPP__APPS__<ID>__SECRET`` and so on. No section leaves the
channel off; an app without a secret of at least 32 characters stops the hub at start.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

AppId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,31}$")]


class App(BaseModel):
    """One app of the company (iOS and Android builds of one app share it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Signs user tokens (the company's server holds it, never the app itself).
    secret: SecretStr
    name: str = ""
    queue: str = "support"
    # Where to POST a reply that found no open socket (the company sends the push
    # notification); empty: none, the app sees the reply when it next opens.
    push_url: str = Field(default="", pattern=r"^(https?://\S+)?$")
    # Signs the push hook's body; empty: the app's ``secret``.
    push_secret: SecretStr = SecretStr("")
    # The longest a user token may live (its ``expires`` at most this far ahead).
    max_token_age_s: int = Field(default=7 * 86400, ge=60, le=90 * 86400)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("an app secret has at least 32 characters")
        return value

    @property
    def hook_key(self) -> bytes:
        return (self.push_secret.get_secret_value() or self.secret.get_secret_value()).encode()


class InappSettings(BaseModel):
    """The in-app channel's section, validated when the hub starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    apps: dict[AppId, App] = Field(min_length=1)
