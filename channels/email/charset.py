"""Decoding mail text the way mail clients do: mislabelled charsets, encoded-words, raw 8-bit."""

from __future__ import annotations

import base64
import binascii
import codecs
import re

from channels.email.const import ASCII_LABELS, CHARSET_ALIASES

# Windows-1252 leaves five bytes undefined; WHATWG (and browsers) map them to the C1 controls
# of the same value, which decoding as latin-1 then translating 0x80-0x9F gives us.
_CP1252_C1: dict[int, str] = {}
for _byte in range(0x80, 0xA0):
    try:
        _CP1252_C1[_byte] = bytes([_byte]).decode("cp1252")
    except UnicodeDecodeError:
        continue

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=")
_FOLD = re.compile(r"\r?\n(?=[ \t])")


def windows_1252(data: bytes) -> str:
    """Decode as Windows-1252 without ever failing (undefined bytes become C1 controls)."""
    return data.decode("latin-1").translate(_CP1252_C1)


def _codec(label: str | None) -> str | None:
    name = (label or "").strip().strip("\"'").lower()
    if not name:
        return None
    name = CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return ""


def decode_bytes(data: bytes, label: str | None) -> str:
    """Decode body or header bytes declared as ``label``; never raises.

    gb2312/gbk labels read as gb18030, iso-8859-1 as windows-1252; no or an ASCII label with
    8-bit bytes: UTF-8 if it is valid UTF-8, else windows-1252; unknown label: the same.
    """
    if not data:
        return ""
    name = (label or "").strip().strip("\"'").lower()
    codec = _codec(label)
    if data.isascii() and codec not in ("utf-7", "utf-16", "utf-16-le", "utf-16-be", "utf-32"):
        return data.decode("ascii")
    if not codec or name in ASCII_LABELS:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return windows_1252(data)
    if codec == "cp1252":
        return windows_1252(data)
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        pass
    if codec != "utf-8":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return data.decode(codec, errors="replace")


def unsurrogate(value: str) -> str:
    """Turn raw 8-bit header bytes (kept by the parser as surrogate escapes) into text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    return decode_bytes(value.encode("utf-8", errors="surrogateescape"), None)


def _word_bytes(encoding: str, text: str) -> bytes | None:
    try:
        if encoding in "Bb":
            return base64.b64decode(text + "=" * (-len(text) % 4))
        return binascii.a2b_qp(text.encode("ascii"), header=True)
    except (binascii.Error, ValueError):
        return None


def decode_header_value(value: str | None) -> str:
    """Unfold a raw header value and decode RFC 2047 encoded-words and raw 8-bit text."""
    if not value:
        return ""
    text = unsurrogate(_FOLD.sub("", value)).replace("\r", "").replace("\n", " ")
    # (charset or None, bytes or text): adjacent words of one charset are joined before
    # decoding because some senders split a multi-byte character across two words.
    pieces: list[tuple[str | None, bytes | str]] = []
    pos = 0
    for match in _ENCODED_WORD.finditer(text):
        between = text[pos : match.start()]
        previous_is_word = bool(pieces) and pieces[-1][0] is not None
        if between and not (previous_is_word and not between.strip()):
            pieces.append((None, between))
        charset = match.group(1).split("*", 1)[0]
        data = _word_bytes(match.group(2), match.group(3))
        if data is None:
            pieces.append((None, match.group(0)))
        elif pieces and pieces[-1][0] == charset.lower() and isinstance(pieces[-1][1], bytes):
            pieces[-1] = (charset.lower(), pieces[-1][1] + data)
        else:
            pieces.append((charset.lower(), data))
        pos = match.end()
    pieces.append((None, text[pos:]))
    out: list[str] = []
    for charset, chunk in pieces:
        if isinstance(chunk, bytes):
            out.append(decode_bytes(chunk, charset))
        else:
            out.append(chunk)
    return "".join(out)
