"""The Twilio voice adapter: the call flow's webhooks, agent legs and callbacks over the
Calls REST API, and voicemail recordings fetched server-side."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from channels.twilio_voice.const import (
    CALL_PATH,
    CALLS_PATH,
    CHANNEL_CALLBACK,
    CHANNEL_VOICE,
    CHANNEL_VOICEMAIL,
    PATH_STATUS,
    RECORDING_TIMEOUT_S,
    REST_TIMEOUT_S,
    SETTINGS_SECTION,
)
from channels.twilio_voice.settings import VoiceSettings
from channels.twilio_voice.webhook import VoiceHub, VoiceWebhooks
from contract.channel import Attachment, ChannelContext, OutboundMessage, SendReceipt
from contract.errors import ChannelError, ConfigError
from contract.sections import channel_section
from contract.voice import CallOrder

logger = logging.getLogger(__name__)
RECORDING_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg"}


class TwilioVoiceAdapter:
    """Phone calls over Twilio Programmable Voice (``contract.voice.CallControl``)."""

    channels = frozenset({CHANNEL_VOICE, CHANNEL_CALLBACK, CHANNEL_VOICEMAIL})
    reply_options: Mapping[str, frozenset[str]] = {
        CHANNEL_VOICE: frozenset(),
        CHANNEL_CALLBACK: frozenset(),
        CHANNEL_VOICEMAIL: frozenset(),
    }

    def __init__(self, ctx: ChannelContext, settings: VoiceSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.public_url = str(ctx.settings.public_url).rstrip("/")
        self.api_base = settings.api_base.rstrip("/")
        self.max_recording_bytes: int = ctx.settings.attachment_max_bytes
        self._auth = {
            "Authorization": aiohttp.encode_basic_auth(
                settings.account_sid, settings.auth_token.get_secret_value()
            )
        }
        self.webhooks = VoiceWebhooks(
            settings=settings,
            hub=cast(VoiceHub, ctx.hub),
            public_url=self.public_url,
            max_body_bytes=ctx.settings.max_body_bytes,
        )

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return self.webhooks.routes()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def typing(self, *, channel: str, to: str) -> None:
        return None

    async def send(self, message: OutboundMessage) -> SendReceipt:
        raise ChannelError(
            "a phone call cannot carry a written reply; answer by SMS or email",
            retryable=False,
            code="no_text_on_voice",
        )

    # ------------------------------------------------------------------ REST
    async def _rest(self, path: str, fields: list[tuple[str, str]]) -> dict[str, Any]:
        try:
            async with self.ctx.http().post(
                self.api_base + path,
                data=fields,
                headers=self._auth,
                timeout=aiohttp.ClientTimeout(total=REST_TIMEOUT_S),
            ) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    raise _refusal(resp.status, body)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ChannelError(f"Twilio unreachable: {err!r}", retryable=True) from err
        try:
            data = json.loads(body)
        except ValueError:
            raise ChannelError("Twilio answered with unreadable JSON", retryable=True) from None
        if not isinstance(data, dict):
            raise ChannelError("Twilio answered with unexpected JSON", retryable=True)
        return data

    async def connect(self, order: CallOrder) -> str:
        """Ring the agent: when they pick up, their leg dials the caller's queue (or, for a
        callback, the customer's number). Status callbacks tell the hub if nobody answers."""
        if order.channel not in (CHANNEL_VOICE, CHANNEL_CALLBACK):
            raise ChannelError(f"no calls on {order.channel!r}", retryable=False)
        if not order.agent_address:
            raise ChannelError("the agent has no phone number or SIP address", retryable=False)
        status = f"{self.public_url}{PATH_STATUS}?call={order.call_sid}&leg=agent"
        fields = [
            ("To", order.agent_address),
            ("From", self.settings.number),
            ("Twiml", self.webhooks.flow.agent_leg(order)),
            ("StatusCallback", status),
            ("StatusCallbackMethod", "POST"),
            ("Timeout", str(self.settings.ring_timeout_s)),
        ]
        fields += [("StatusCallbackEvent", e) for e in ("initiated", "ringing", "answered")]
        fields.append(("StatusCallbackEvent", "completed"))
        data = await self._rest(CALLS_PATH.format(account_sid=self.settings.account_sid), fields)
        sid = data.get("sid")
        if not isinstance(sid, str) or not sid:
            raise ChannelError("Twilio's answer has no call sid", retryable=True)
        return sid

    async def end_leg(self, *, channel: str, call_sid: str) -> None:
        """Hang up one of our legs (an agent still ringing for a caller who left)."""
        path = CALL_PATH.format(account_sid=self.settings.account_sid, call_sid=call_sid)
        try:
            await self._rest(path, [("Status", "completed")])
        except ChannelError as err:
            logger.info("could not end call leg %s: %s", call_sid, err)

    # ------------------------------------------------------------------ recordings
    async def fetch_attachment(
        self, *, channel: str, source: str, content_type: str, filename: str | None
    ) -> Attachment:
        """Download a voicemail recording (only from our Twilio API host, with our account)."""
        wanted = urlsplit(self.api_base)
        url = urlsplit(source)
        if (url.scheme, url.netloc) != (wanted.scheme, wanted.netloc) or (
            f"/Accounts/{self.settings.account_sid}/Recordings/" not in url.path
        ):
            raise ChannelError("not a recording of our Twilio account", retryable=False)
        target = source if url.path.endswith(tuple(RECORDING_TYPES)) else source + ".wav"
        limit = self.max_recording_bytes
        try:
            async with self.ctx.http().get(
                target,
                headers=self._auth,
                timeout=aiohttp.ClientTimeout(total=RECORDING_TIMEOUT_S),
                allow_redirects=False,
            ) as resp:
                if resp.status >= 400:
                    raise ChannelError(
                        f"Twilio answered {resp.status} for the recording",
                        retryable=resp.status == 429 or resp.status >= 500,
                    )
                data = await resp.content.read(limit + 1)
                served = resp.content_type or content_type
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ChannelError(f"Twilio unreachable: {err!r}", retryable=True) from err
        if len(data) > limit:
            raise ChannelError(f"recording larger than {limit} bytes", retryable=False)
        kind = served if served.startswith("audio/") else content_type
        return Attachment(filename=filename, content_type=kind, data=data)


def _refusal(status: int, body: bytes) -> ChannelError:
    detail = ""
    code: str | None = None
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        detail = str(data.get("message") or "")
        code = str(data["code"]) if data.get("code") is not None else None
    return ChannelError(
        f"Twilio answered {status}{': ' + detail if detail else ''}",
        retryable=status == 429 or status >= 500,
        code=code or str(status),
    )


def create(ctx: ChannelContext) -> TwilioVoiceAdapter | None:
    """Off without a ``[channels.twilio_voice]`` section; a bad one stops the hub at start."""
    settings = channel_section(ctx.settings, SETTINGS_SECTION, VoiceSettings, switch="account_sid")
    if settings is None:
        return None
    if not settings.auth_token.get_secret_value():
        # Fail closed: with an empty key anyone can compute a valid X-Twilio-Signature.
        raise ConfigError(
            f"[channels.{SETTINGS_SECTION}] has an account_sid but no auth_token "
            f"(HUB_CHANNELS__TWILIO_VOICE__AUTH_TOKEN)"
        )
    if not callable(getattr(ctx.hub, "call_fact", None)):
        raise ConfigError("this hub does not take phone calls (no CallPort)")
    return TwilioVoiceAdapter(ctx, settings)
