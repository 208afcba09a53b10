"""Builds correctly signed, real-shaped Twilio messaging webhooks (tests, demo traffic)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp

from channels.twilio_sms.const import (
    API_VERSION,
    FORM_CONTENT_TYPE,
    IDEMPOTENCY_HEADER,
    PATH_INBOUND,
    SIGNATURE_HEADER,
    WHATSAPP_PREFIX,
)

Params = list[tuple[str, str]]


def new_sid(prefix: str, rng: random.Random | None = None) -> str:
    """A Twilio-shaped sid: two letters and 32 lower-case hex digits."""
    digits = f"{rng.getrandbits(128):032x}" if rng is not None else secrets.token_hex(16)
    return prefix + digits


def compute_signature(url: str, params: Iterable[tuple[str, str]], auth_token: str) -> str:
    """Twilio's X-Twilio-Signature: HMAC-SHA1 over the URL + each name+value sorted by name.

    Written from Twilio's published algorithm (independently of the validator we check with),
    so tests cross-check the two.
    """
    data = url + "".join(name + value for name, value in sorted(params))
    mac = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def sign_body(url: str, body: bytes, auth_token: str) -> dict[str, str]:
    """Headers Twilio sends with a form body POSTed to ``url`` (the public URL it calls)."""
    params = parse_qsl(body.decode(), keep_blank_values=True)
    return {
        "Content-Type": FORM_CONTENT_TYPE,
        SIGNATURE_HEADER: compute_signature(url, params, auth_token),
        IDEMPOTENCY_HEADER: f"{secrets.token_hex(16)}-{secrets.token_hex(8)}",
        "User-Agent": "TwilioProxy/1.1",
    }


def encode(params: Sequence[tuple[str, str]]) -> bytes:
    """Form-encode as Twilio does: spaces as ``+``, ``+`` as ``%2B``, UTF-8, blanks kept."""
    return urlencode(list(params)).encode()


def inbound_params(
    account_sid: str,
    *,
    from_: str,
    to: str,
    body: str,
    message_sid: str | None = None,
    whatsapp: bool = False,
    profile_name: str | None = None,
    media: Sequence[tuple[str, str]] = (),
    extra: Mapping[str, str | None] | None = None,
    rng: random.Random | None = None,
) -> Params:
    """The parameters of one inbound message, shaped like Twilio's (blank geo fields too).

    ``media`` is (url, content type) pairs; ``extra`` adds or overrides parameters (None
    removes one); with ``rng`` the parameter order is shuffled (Twilio's order is not fixed).
    """
    sid = message_sid or new_sid("MM" if media else "SM", rng)
    params: dict[str, str] = {}
    if whatsapp:
        from_addr = from_ if from_.startswith(WHATSAPP_PREFIX) else WHATSAPP_PREFIX + from_
        to_addr = to if to.startswith(WHATSAPP_PREFIX) else WHATSAPP_PREFIX + to
        params.update(
            SmsMessageSid=sid,
            NumMedia=str(len(media)),
            ProfileName=profile_name or "",
            MessageType="image" if media else "text",
            SmsSid=sid,
            WaId=from_addr.removeprefix(WHATSAPP_PREFIX).lstrip("+"),
            SmsStatus="received",
            Body=body,
            To=to_addr,
            NumSegments="1",
            ReferralNumMedia="0",
            MessageSid=sid,
            AccountSid=account_sid,
            From=from_addr,
            ApiVersion=API_VERSION,
        )
        if not profile_name:
            del params["ProfileName"]
    else:
        segments = 1 if len(body) <= 160 else -(-len(body) // 153)
        params.update(
            ToCountry="US",
            ToState="CA",
            SmsMessageSid=sid,
            NumMedia=str(len(media)),
            ToCity="",
            FromZip="",
            SmsSid=sid,
            FromState="",
            SmsStatus="received",
            FromCity="",
            Body=body,
            FromCountry="GB" if from_.startswith("+44") else "US",
            To=to,
            ToZip="",
            NumSegments=str(segments),
            MessageSid=sid,
            AccountSid=account_sid,
            From=from_,
            ApiVersion=API_VERSION,
        )
    for i, (url, content_type) in enumerate(media):
        params[f"MediaContentType{i}"] = content_type
        params[f"MediaUrl{i}"] = url
    for key, value in (extra or {}).items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    items = list(params.items())
    if rng is not None:
        rng.shuffle(items)
    return items


def signed_inbound(
    settings_public_url: str,
    auth_token: str,
    account_sid: str,
    *,
    from_: str,
    to: str,
    body: str,
    message_sid: str | None = None,
    whatsapp: bool = False,
    profile_name: str | None = None,
    media: Sequence[tuple[str, str]] = (),
    extra: Mapping[str, str | None] | None = None,
    rng: random.Random | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Body bytes and headers (signature included) of one inbound message webhook."""
    params = inbound_params(
        account_sid,
        from_=from_,
        to=to,
        body=body,
        message_sid=message_sid,
        whatsapp=whatsapp,
        profile_name=profile_name,
        media=media,
        extra=extra,
        rng=rng,
    )
    data = encode(params)
    url = settings_public_url.rstrip("/") + PATH_INBOUND
    return data, sign_body(url, data, auth_token)


async def post_inbound(
    session: aiohttp.ClientSession,
    hub_base_url: str,
    settings_public_url: str,
    auth_token: str,
    account_sid: str,
    **message: Any,
) -> tuple[int, str]:
    """Sign one inbound message for the public URL and POST it to the hub; (status, body)."""
    data, headers = signed_inbound(settings_public_url, auth_token, account_sid, **message)
    async with session.post(
        hub_base_url.rstrip("/") + PATH_INBOUND, data=data, headers=headers
    ) as resp:
        return resp.status, await resp.text()


# ---------------------------------------------------------------------------- demo traffic
_SMS_TEXTS = (
    "Hi, my order #48213 hasn't arrived yet. Can someone check?",
    "I was charged twice this month 😕",
    "Can I change my delivery address to 12 Baker St?",
    "¿Pueden ayudarme con mi factura?",
    "Bonjour, mon colis est arrivé abîmé.",
    "Hallo, ich möchte mein Abo kündigen.",
    "请问退款需要多久？",
    "Thanks!! 🙏🎉",
)
_WHATSAPP_TEXTS = (
    "Hello 👋 is the store open on Sunday?",
    "My package tracking says delivered but nothing here",
    "Olá, preciso de ajuda com meu pedido",
    "مرحبا، أحتاج مساعدة",
    "Can I talk to a human please?",
)
_NAMES = ("Ana", "Bilal", "Chen Wei", "Dara", "Émile", "Fatima", "Giulia", "Hiro")
OUR_SMS_NUMBER = "+14155550100"
OUR_WHATSAPP_SENDER = "whatsapp:+14155238886"


def random_inbound(rng: random.Random) -> dict[str, Any]:
    """Keyword arguments of ``signed_inbound`` for one varied demo message."""
    number = rng.choice(("+1202555", "+1415555")) + f"{rng.randint(100, 199):04d}"
    if rng.random() < 0.35:
        return {
            "from_": number,
            "to": OUR_WHATSAPP_SENDER,
            "body": rng.choice(_WHATSAPP_TEXTS),
            "whatsapp": True,
            "profile_name": rng.choice(_NAMES),
            "rng": rng,
        }
    return {"from_": number, "to": OUR_SMS_NUMBER, "body": rng.choice(_SMS_TEXTS), "rng": rng}


async def demo_traffic(session: aiohttp.ClientSession, settings: Any, rng: random.Random) -> None:
    """One signed inbound SMS/WhatsApp to the local hub (a ``server.demo`` traffic source)."""
    if not settings.twilio_account_sid:
        return
    await post_inbound(
        session,
        f"http://127.0.0.1:{settings.http_port}",
        settings.public_url,
        settings.twilio_auth_token.get_secret_value(),
        settings.twilio_account_sid,
        **random_inbound(rng),
    )
