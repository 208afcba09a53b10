"""Endpoint normalization: one canonical address per identity, whatever channel sent it."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers

from contract.errors import InvalidInput

_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_CHANNEL_PREFIXES = ("whatsapp:", "sms:", "tel:", "mms:")


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointAddress:
    """A normalized (kind, address) pair: the key of an endpoint."""

    kind: str
    address: str


@functools.lru_cache(maxsize=65536)
def normalize_phone(raw: str, default_region: str) -> str:
    """E.164 for any phone spelling: ``whatsapp:+44…``, WhatsApp ``WaId`` digits, Telegram's
    plus-less ``447700…`` or a national number read in ``default_region``.

    Cached: parsing with libphonenumber's metadata costs about 150 µs, and the same few
    numbers write again and again (a conversation is many messages).
    """
    value = raw.strip()
    lowered = value.lower()
    for prefix in _CHANNEL_PREFIXES:
        if lowered.startswith(prefix):
            value = value[len(prefix) :].strip()
            break
    digits = re.sub(r"[^\d+]", "", value)
    candidates: list[tuple[str, str | None]] = [(value, default_region)]
    if digits and not digits.startswith("+"):
        # Provider ids without a plus (WaId, Telegram contacts) are international digits; a
        # national reading in the default region is tried first and wins when it is valid.
        candidates.append(("+" + digits, None))
    parsed: list[phonenumbers.PhoneNumber] = []
    for text, region in candidates if digits else ():
        try:
            parsed.append(phonenumbers.parse(text, region))
        except phonenumbers.NumberParseException:
            continue
    # Valid beats merely possible: reserved ranges (e.g. UK drama numbers 07700 900xxx) are
    # possible but not valid, and must still normalize the same way from every channel.
    for check in (phonenumbers.is_valid_number, phonenumbers.is_possible_number):
        for number in parsed:
            if check(number):
                return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # Short codes and alphanumeric sender ids are kept as they are so they stay distinct.
    if re.fullmatch(r"[A-Za-z0-9+\-]{3,20}", value.replace(" ", "")):
        return value.replace(" ", "")
    raise InvalidInput(f"not a phone number: {raw!r}")


def normalize_email(raw: str) -> str:
    """A lower-cased bare address; display names and angle brackets dropped."""
    value = raw.strip()
    if "<" in value and value.endswith(">"):
        value = value[value.rindex("<") + 1 : -1]
    value = value.strip().lower()
    if not _EMAIL.match(value):
        raise InvalidInput(f"not an email address: {raw!r}")
    return value


def normalize(kind: str, raw: str, *, default_region: str) -> EndpointAddress:
    """Normalize an address of a given endpoint kind."""
    if kind == "phone":
        return EndpointAddress(kind="phone", address=normalize_phone(raw, default_region))
    if kind == "email":
        return EndpointAddress(kind="email", address=normalize_email(raw))
    value = raw.strip()
    if not value or len(value) > 300:
        raise InvalidInput(f"not a {kind} address: {raw!r}")
    if kind == "telegram" and not re.fullmatch(r"-?\d{1,20}", value):
        raise InvalidInput(f"not a Telegram user id: {raw!r}")
    if not re.fullmatch(r"[\w.:@+\-=/]+", value):
        raise InvalidInput(f"not a {kind} address (no spaces or symbols allowed): {raw!r}")
    return EndpointAddress(kind=kind, address=value)


def guess(raw: str, *, default_region: str) -> EndpointAddress:
    """The endpoint of a free-form address (API channel): email, phone, or an opaque id."""
    value = raw.strip()
    if "@" in value:
        return normalize("email", value, default_region=default_region)
    if re.fullmatch(r"(whatsapp:|tel:)?\+?[\d\s().\-]{5,}", value, flags=re.IGNORECASE):
        return normalize("phone", value, default_region=default_region)
    return normalize("api", value, default_region=default_region)


def first_name(display_name: str) -> str:
    """The first word of a display name (used only for merge *suggestions*, never links)."""
    parts = display_name.strip().split()
    return parts[0].lower() if parts else ""
