"""``[channels.wechat]``: the Official Account's AppID, AppSecret, Token and EncodingAESKey.

Environment: ``HUB_CHANNELS__WECHAT__<KEY>`` (e.g. ``..._APP_SECRET``). A section with an
``app_id`` but no ``token`` or ``app_secret`` stops the hub at start: without the token anyone
could sign requests, without the secret no reply could go out. No section leaves WeChat off.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class WeChatSettings(BaseModel):
    """The WeChat channel's section, validated when the hub starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_id: str = Field(pattern=r"^wx[0-9a-zA-Z]{16}$")
    app_secret: SecretStr
    # The Token typed into the official account's server settings (3-32 letters and digits).
    token: SecretStr
    # Safe mode: the 43-character EncodingAESKey; empty for plain-text mode.
    encoding_aes_key: SecretStr = SecretStr("")
    # The key before the last rotation: still accepted for decrypting while WeChat switches.
    previous_encoding_aes_key: SecretStr = SecretStr("")
    api_base: str = "https://api.weixin.qq.com"
    # The queue new WeChat conversations go to (empty: the hub's default).
    queue: str = ""

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if raw and not (3 <= len(raw) <= 32 and raw.isalnum()):
            raise ValueError("the WeChat Token is 3-32 letters or digits")
        return value

    @field_validator("encoding_aes_key", "previous_encoding_aes_key")
    @classmethod
    def _aes_key(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if raw and (len(raw) != 43 or not raw.isalnum()):
            raise ValueError("an EncodingAESKey is 43 letters or digits")
        return value
