"""Typed parse of Twilio's messaging webhooks (form bodies): inbound messages, status reports."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from channels.twilio_sms.const import (
    CHANNEL_SMS,
    CHANNEL_WHATSAPP,
    HANDOFF_PAYLOADS,
    HELP_KEYWORDS,
    SID_RE,
    START_KEYWORDS,
    STOP_KEYWORDS,
    WHATSAPP_PREFIX,
)
from contract.errors import InvalidInput

Channel = Literal["sms", "whatsapp"]
OptOut = Literal["stop", "start", "help"]

_MEDIA_KEY = re.compile(r"^Media(Url|ContentType)(\d{1,2})$")
# Parameters that become typed fields; everything else is kept as metadata.
_CONSUMED = frozenset({"MessageSid", "SmsSid", "SmsMessageSid", "Body"})


class MalformedPayload(InvalidInput):
    """A Twilio form body lacks what every message carries; answered 400, nothing stored."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Media:
    """One MMS/WhatsApp media item as announced (not yet fetched)."""

    index: int
    url: str
    content_type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """A shared location (WhatsApp)."""

    latitude: float
    longitude: float
    address: str | None = None
    label: str | None = None

    def describe(self) -> str:
        """A one-line text for an agent."""
        place = ", ".join(p for p in (self.label, self.address) if p)
        coords = f"{self.latitude:.6f}, {self.longitude:.6f}"
        return f"Location: {place} ({coords})" if place else f"Location: {coords}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Button:
    """A quick-reply / interactive button answer."""

    payload: str | None
    text: str | None
    type: str | None

    @property
    def handoff(self) -> bool:
        """True when the button asks for a person."""
        return (self.payload or "").strip().lower() in HANDOFF_PAYLOADS


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundPayload:
    """An inbound SMS, MMS or WhatsApp message."""

    message_sid: str
    account_sid: str
    channel: Channel
    from_: str  # as sent, e.g. "whatsapp:+14155550100"
    sender: str  # From without the channel prefix
    to: str  # as sent (keeps "whatsapp:" so replies leave from the same sender)
    body: str
    profile_name: str | None = None
    wa_id: str | None = None
    media: tuple[Media, ...] = ()
    location: Location | None = None
    button: Button | None = None
    opt_out_type: str | None = None
    replied_to_sid: str | None = None
    num_segments: int | None = None
    # Every other non-blank parameter, as received (JSON-serializable metadata).
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def keyword(self) -> OptOut | None:
        """The opt-out action this message asks for: Twilio's OptOutType, else the keyword."""
        if self.opt_out_type:
            kind = self.opt_out_type.strip().upper()
            if kind in ("STOP", "START", "HELP"):
                return "stop" if kind == "STOP" else "start" if kind == "START" else "help"
        word = self.body.strip().strip(".!").strip().upper()
        if word in STOP_KEYWORDS:
            return "stop"
        if word in START_KEYWORDS:
            return "start"
        if word in HELP_KEYWORDS:
            return "help"
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusPayload:
    """A delivery report of one of our outbound messages."""

    message_sid: str
    account_sid: str
    status: str  # Twilio's spelling, lower-cased
    channel: Channel
    to: str | None
    from_: str | None
    error_code: str | None = None
    error_message: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


def _get(form: Mapping[str, str], name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _sid(form: Mapping[str, str]) -> str:
    sid = _get(form, "MessageSid") or _get(form, "SmsMessageSid") or _get(form, "SmsSid")
    if sid is None:
        raise MalformedPayload("MessageSid is missing")
    if not SID_RE.match(sid):
        raise MalformedPayload(f"MessageSid {sid[:40]!r} is not a Twilio message sid")
    return sid


def _channel(*addresses: str | None) -> Channel:
    for address in addresses:
        if address and address.lower().startswith(WHATSAPP_PREFIX):
            return CHANNEL_WHATSAPP
    return CHANNEL_SMS


def strip_prefix(address: str) -> str:
    """``whatsapp:+1415…`` -> ``+1415…`` (other addresses unchanged)."""
    if address.lower().startswith(WHATSAPP_PREFIX):
        return address[len(WHATSAPP_PREFIX) :].strip()
    return address


def _media(form: Mapping[str, str]) -> tuple[Media, ...]:
    urls: dict[int, str] = {}
    types: dict[int, str] = {}
    for key in form:
        match = _MEDIA_KEY.match(key)
        if match is None:
            continue
        value = (form.get(key) or "").strip()
        if not value:
            continue
        target = urls if match.group(1) == "Url" else types
        target[int(match.group(2))] = value
    return tuple(
        Media(index=i, url=urls[i], content_type=types.get(i, "application/octet-stream"))
        for i in sorted(urls)
    )


def _location(form: Mapping[str, str]) -> Location | None:
    lat, lon = _get(form, "Latitude"), _get(form, "Longitude")
    if lat is None or lon is None:
        return None
    try:
        latitude, longitude = float(lat), float(lon)
    except ValueError:
        return None  # kept as raw metadata; a bad location is not worth a 400
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return Location(
        latitude=latitude,
        longitude=longitude,
        address=_get(form, "Address"),
        label=_get(form, "Label"),
    )


def _int(value: str | None) -> int | None:
    if value is None or not value.isdigit():
        return None
    return int(value)


def _extra(form: Mapping[str, str]) -> dict[str, str]:
    kept: dict[str, str] = {}
    for key in form:
        # Provider media URLs never reach a browser; media are described separately.
        if key in _CONSUMED or key.startswith("MediaUrl"):
            continue
        value = form.get(key)
        if value is not None and value.strip():
            kept[key] = value
    return kept


def parse_inbound(form: Mapping[str, str]) -> InboundPayload:
    """Parse an inbound message body; raises :class:`MalformedPayload`."""
    sid = _sid(form)
    from_ = _get(form, "From")
    if from_ is None:
        raise MalformedPayload("From is missing")
    account = _get(form, "AccountSid") or ""
    to = _get(form, "To") or ""
    channel = _channel(from_)
    sender = strip_prefix(from_)
    if not sender:
        raise MalformedPayload("From has no address")
    button_payload, button_text = _get(form, "ButtonPayload"), _get(form, "ButtonText")
    button = None
    if button_payload is not None or button_text is not None:
        button = Button(payload=button_payload, text=button_text, type=_get(form, "ButtonType"))
    return InboundPayload(
        message_sid=sid,
        account_sid=account,
        channel=channel,
        from_=from_,
        sender=sender,
        to=to,
        body=form.get("Body") or "",
        profile_name=_get(form, "ProfileName"),
        wa_id=_get(form, "WaId"),
        media=_media(form),
        location=_location(form),
        button=button,
        opt_out_type=_get(form, "OptOutType"),
        replied_to_sid=_get(form, "OriginalRepliedMessageSid"),
        num_segments=_int(_get(form, "NumSegments")),
        extra=_extra(form),
    )


def parse_status(form: Mapping[str, str]) -> StatusPayload:
    """Parse a status callback body; raises :class:`MalformedPayload`."""
    sid = _sid(form)
    status = _get(form, "MessageStatus") or _get(form, "SmsStatus")
    if status is None:
        raise MalformedPayload("MessageStatus is missing")
    to, from_ = _get(form, "To"), _get(form, "From")
    prefix = (_get(form, "ChannelPrefix") or "").lower()
    channel: Channel = CHANNEL_WHATSAPP if prefix == CHANNEL_WHATSAPP else _channel(from_, to)
    error_code = _get(form, "ErrorCode")
    if error_code in ("0", "null"):
        error_code = None
    return StatusPayload(
        message_sid=sid,
        account_sid=_get(form, "AccountSid") or "",
        status=status.lower(),
        channel=channel,
        to=to,
        from_=from_,
        error_code=error_code,
        error_message=_get(form, "ChannelStatusMessage") or _get(form, "ErrorMessage"),
        extra=_extra(form),
    )
