"""Raw header access and the id and address conventions of the email channel."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses

from channels.email.charset import decode_header_value, unsurrogate
from channels.email.const import MESSAGE_ID_MAX, SYNTHETIC_DOMAIN

_BRACKETED = re.compile(r"<([^<>]*)>")
_LOOSE_ID = re.compile(r"[^\s<>,;\"']+@[^\s<>,;\"']+")


@dataclass(frozen=True, slots=True, kw_only=True)
class MailAddress:
    """One mailbox of an address header: lower-cased addr-spec and decoded display name."""

    address: str
    display_name: str | None = None


def raw_header(msg: Message, name: str) -> str | None:
    """The first raw (undecoded, unfolded-later) value of ``name``, or None."""
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            return str(value)
    return None


def raw_headers(msg: Message, name: str) -> list[str]:
    """Every raw value of ``name`` in order."""
    wanted = name.lower()
    return [str(value) for key, value in msg.raw_items() if key.lower() == wanted]


def header_text(msg: Message, name: str) -> str | None:
    """The decoded, unfolded, whitespace-trimmed value of ``name`` (None when absent)."""
    value = raw_header(msg, name)
    if value is None:
        return None
    return " ".join(decode_header_value(value).split())


def clip_id(value: str) -> str:
    """A provider id the hub can store: very long ids are replaced by a stable hash."""
    if len(value) <= MESSAGE_ID_MAX:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()
    return f"long-{digest}@{SYNTHETIC_DOMAIN}"


def synthetic_id(raw: bytes) -> str:
    """The stable id of a mail that has no Message-ID: the same bytes give the same id."""
    return f"{hashlib.sha256(raw).hexdigest()}@{SYNTHETIC_DOMAIN}"


def message_ids(value: str | None) -> list[str]:
    """Message-IDs of an id-list header, without angle brackets, in order, deduplicated."""
    if not value:
        return []
    text = unsurrogate(value)
    found = [re.sub(r"\s+", "", item) for item in _BRACKETED.findall(text)]
    if not found:
        # Broken clients write bare ids; accept anything shaped like left@right.
        found = _LOOSE_ID.findall(text)
    seen: dict[str, None] = {}
    for item in found:
        if item:
            seen.setdefault(clip_id(item), None)
    return list(seen)


def addresses(msg: Message, name: str) -> tuple[MailAddress, ...]:
    """Every mailbox of the address headers called ``name`` (groups flattened)."""
    values = [unsurrogate(v) for v in raw_headers(msg, name)]
    if not values:
        return ()
    # Parse before decoding encoded-words: a decoded name may contain commas or quotes.
    unfolded = [re.sub(r"\r?\n", "", v) for v in values]
    result: list[MailAddress] = []
    seen: set[str] = set()
    for name_part, addr in getaddresses(unfolded):
        address = addr.strip().strip("<>").lower()
        if "@" not in address or address in seen:
            continue
        seen.add(address)
        display = " ".join(decode_header_value(name_part).split()).strip("\"' ") or None
        result.append(MailAddress(address=address, display_name=display))
    return tuple(result)
