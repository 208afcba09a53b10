"""Typed parse of a raw RFC 5322 message: people, threading ids, one body, attachments, kind."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from typing import Literal, TypeVar

from channels.email import html as html_mod
from channels.email.charset import decode_bytes, decode_header_value, unsurrogate
from channels.email.const import (
    AUTO_PRECEDENCE,
    AUTO_REPLY_HEADERS,
    BULK_PRECEDENCE,
    FILENAME_MAX_CHARS,
    HTML_INPUT_MAX_CHARS,
    HTML_MAX_CHARS,
    LIST_HEADERS,
    SUBJECT_MAX_CHARS,
    SUPPRESS_VALUES,
    TEXT_MAX_CHARS,
    THREAD_REFS_MAX,
    TRUNCATED_MARK,
)
from channels.email.dsn import Bounce, is_dsn, parse_dsn
from channels.email.headers import (
    MailAddress,
    addresses,
    header_text,
    message_ids,
    raw_header,
    synthetic_id,
)

__all__ = ["Bounce", "MailAddress", "MailAttachment", "MailKind", "ParsedEmail", "parse_email"]

logger = logging.getLogger(__name__)

MailKind = Literal["message", "auto_reply", "bulk", "bounce"]
_MAX_DEPTH = 20
_MAX_PARTS = 500
_DAEMONS = ("mailer-daemon@", "postmaster@")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class MailAttachment:
    """One attachment; ``data`` is None when it was larger than the limit (metadata only)."""

    filename: str | None
    content_type: str
    size: int
    data: bytes | None
    inline: bool = False
    content_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedEmail:
    """Everything the hub needs from one mail, decoded; ids carry no angle brackets."""

    message_id: str
    message_id_synthetic: bool
    from_address: MailAddress | None
    reply_to: tuple[MailAddress, ...]
    to: tuple[MailAddress, ...]
    cc: tuple[MailAddress, ...]
    subject: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    date: datetime | None
    text: str
    html: str | None  # sanitized: nothing runs, nothing loads remotely
    attachments: tuple[MailAttachment, ...]
    kind: MailKind
    # Loop protection: never answer this mail automatically (kind, null sender, or asked not to).
    suppress_auto_reply: bool
    null_sender: bool
    auto_submitted: str | None = None
    precedence: str | None = None
    list_id: str | None = None
    bounce: Bounce | None = None
    blocked_remote_content: int = 0
    # The HTML was longer than the cleaner takes (HTML_INPUT_MAX_CHARS); its tail was dropped.
    html_truncated: bool = False
    defects: tuple[str, ...] = ()

    @property
    def customer(self) -> MailAddress | None:
        """The person the mail is from: a single Reply-To mailbox, else From."""
        if len(self.reply_to) == 1:
            chosen = self.reply_to[0]
            same = self.from_address is not None and self.from_address.address == chosen.address
            if chosen.display_name is None and same:
                return self.from_address
            return chosen
        return self.from_address

    @property
    def thread_refs(self) -> tuple[str, ...]:
        """References (oldest first) then In-Reply-To, deduplicated, newest last, capped."""
        seen: dict[str, None] = {}
        for ref in (*self.references, *self.in_reply_to):
            if ref != self.message_id:
                seen.pop(ref, None)
                seen[ref] = None
        return tuple(seen)[-THREAD_REFS_MAX:]

    @property
    def thread_root(self) -> str:
        """The first message of the thread as far as this mail knows it."""
        if self.references:
            return self.references[0]
        if self.in_reply_to:
            return self.in_reply_to[0]
        return self.message_id


def _safe(fn: Callable[[], T | None], default: T) -> T:
    """Call a stdlib accessor that may raise on malformed input; ``default`` instead."""
    try:
        result = fn()
    except Exception:
        return default
    return result if result is not None else default


# ---------------------------------------------------------------------- dates, subject
def _date(msg: Message) -> datetime | None:
    value = header_text(msg, "Date")
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        # "-0000" means "UTC, origin's zone unknown" (RFC 5322 §3.3).
        parsed = parsed.replace(tzinfo=UTC)
    if parsed.year < 1980:
        return None
    return parsed


# ---------------------------------------------------------------------- parts
def _leaves(part: Message, parent: str = "", depth: int = 0) -> Iterator[tuple[Message, str]]:
    """Leaf parts with their parent multipart subtype; message/rfc822 is a leaf."""
    if depth > _MAX_DEPTH:
        return
    if part.is_multipart() and part.get_content_maintype() == "multipart":
        subtype = part.get_content_subtype()
        for sub in part.get_payload():
            if isinstance(sub, Message):
                yield from _leaves(sub, subtype, depth + 1)
        return
    yield part, parent


def _param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name)
    except Exception:
        return ""
    return value.lower() if isinstance(value, str) else ""


def _part_text(part: Message) -> str:
    """Decoded text of a text part with our charset rules; best effort on any failure."""
    charset = _safe(part.get_content_charset, "")
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        text = decode_bytes(data, charset)
    else:
        text = unsurrogate(str(part.get_payload()))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if part.get_content_type() == "text/plain" and _param(part, "format") == "flowed":
        delsp = _param(part, "delsp") == "yes"
        text = _unflow(text, delsp=delsp)
    return text


def _unflow(text: str, *, delsp: bool) -> str:
    """RFC 3676 format=flowed: join soft-broken lines of the same quote depth."""
    out: list[str] = []
    carry: str | None = None
    carry_depth = -1
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        body = line[depth:]
        if body.startswith(" "):
            body = body[1:]  # space-stuffing
        if carry is not None and depth == carry_depth:
            body = carry + body
        elif carry is not None:
            out.append(">" * carry_depth + (" " if carry_depth else "") + carry)
        carry = None
        if body.endswith(" ") and body != "-- ":
            carry, carry_depth = (body[:-1] if delsp else body), depth
            continue
        out.append(">" * depth + (" " if depth else "") + body)
    if carry is not None:
        out.append(">" * carry_depth + (" " if carry_depth else "") + carry)
    return "\n".join(out)


def _filename(part: Message) -> str | None:
    name = _safe(part.get_filename, "")
    if not name:
        return None
    name = unsurrogate(str(name))
    if "=?" in name:
        # Outlook puts encoded-words inside quoted parameters (not legal, but common).
        name = decode_header_value(name)
    # No directories, no control characters: the name is for display and download only.
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    if len(name) > FILENAME_MAX_CHARS:
        stem, dot, ext = name.rpartition(".")
        keep = FILENAME_MAX_CHARS - len(ext) - 1
        name = f"{stem[:keep]}.{ext}" if dot and 0 < len(ext) < 16 else name[:FILENAME_MAX_CHARS]
    return name or None


def _attachment(part: Message, limit: int) -> MailAttachment:
    ctype = _safe(part.get_content_type, "application/octet-stream")
    data: bytes = b""
    if ctype == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            forwarded: Message = inner[0]
            data = _safe(lambda: forwarded.as_bytes(policy=policy.SMTPUTF8), b"")
    else:
        try:
            payload = part.get_payload(decode=True)
        except Exception:
            payload = None
        data = payload if isinstance(payload, bytes) else b""
    name = _filename(part)
    if name is None and ctype == "message/rfc822":
        name = "message.eml"
    cid = raw_header(part, "Content-ID")
    return MailAttachment(
        filename=name,
        content_type=ctype,
        size=len(data),
        data=data if len(data) <= limit else None,
        inline=_safe(part.get_content_disposition, "") == "inline",
        content_id=cid.strip().strip("<>") if cid else None,
    )


@dataclass(slots=True)
class _Body:
    text: str = ""
    html: str | None = None
    blocked: int = 0
    truncated: bool = False

    def markup(self, part: Message) -> str:
        """The HTML of ``part``, cut to what the cleaner takes."""
        markup = _part_text(part)
        if len(markup) > HTML_INPUT_MAX_CHARS:
            self.truncated = True
            return markup[:HTML_INPUT_MAX_CHARS]
        return markup


def _body(msg: EmailMessage) -> tuple[_Body, set[int]]:
    """The one body of the mail (plain preferred) and the ids of the parts it used."""
    used: set[int] = set()
    plain = _safe(lambda: msg.get_body(preferencelist=("plain",)), None)
    rich = _safe(lambda: msg.get_body(preferencelist=("html",)), None)
    body = _Body()
    if rich is not None:
        used.add(id(rich))
        text, sanitized, blocked = html_mod.convert(body.markup(rich))
        body.html = sanitized[:HTML_MAX_CHARS]
        body.text = text
        body.blocked = blocked
    if plain is not None:
        used.add(id(plain))
        plain_text = _part_text(plain).strip("\n")
        if plain_text.strip() or rich is None:
            body.text = plain_text
    return body, used


def _is_attachment(part: Message, parent: str) -> bool:
    ctype = _safe(part.get_content_type, "text/plain")
    disposition = _safe(part.get_content_disposition, None)
    if disposition == "attachment" or _filename(part):
        return True
    if ctype in ("text/plain", "text/html"):
        return False
    return not (parent == "report" and ctype.startswith(("message/", "text/rfc822")))


def _walk_parts(
    msg: EmailMessage, body: _Body, used: set[int], limit: int
) -> tuple[MailAttachment, ...]:
    attachments: list[MailAttachment] = []
    extra_text: list[str] = []
    for count, (part, parent) in enumerate(_leaves(msg)):
        if count >= _MAX_PARTS:
            break
        if id(part) in used:
            continue
        try:
            if _is_attachment(part, parent):
                attachments.append(_attachment(part, limit))
            elif parent not in ("alternative", "report") and part.get_content_maintype() == "text":
                # Apple Mail splits one body around inline images into several text parts.
                if part.get_content_type() == "text/html":
                    piece = html_mod.html_to_text(body.markup(part))
                else:
                    piece = _part_text(part)
                if piece.strip():
                    extra_text.append(piece.strip("\n"))
        except Exception:
            logger.warning("email part %s skipped", _safe(part.get_content_type, "?"))
    if extra_text:
        body.text = "\n\n".join([body.text, *extra_text]) if body.text else "\n\n".join(extra_text)
    return tuple(attachments)


# ---------------------------------------------------------------------- classification
def _classify(
    msg: Message, *, null_sender: bool, sender: MailAddress | None
) -> tuple[MailKind, str | None, str | None, str | None]:
    auto = (header_text(msg, "Auto-Submitted") or "").split(";", 1)[0].strip().lower() or None
    precedence = (header_text(msg, "Precedence") or "").strip().lower() or None
    list_id = header_text(msg, "List-Id")
    if is_dsn(msg):
        return "bounce", auto, precedence, list_id
    automatic = (auto is not None and auto != "no") or precedence in AUTO_PRECEDENCE
    for name in AUTO_REPLY_HEADERS:
        value = (header_text(msg, name) or "").strip().lower()
        if raw_header(msg, name) is not None and value not in ("no", "false", "0"):
            automatic = True
    report = _safe(msg.get_content_type, "") == "multipart/report"
    daemon = sender is not None and sender.address.startswith(_DAEMONS)
    if automatic or null_sender or report or daemon:
        return "auto_reply", auto, precedence, list_id
    if precedence in BULK_PRECEDENCE or any(raw_header(msg, h) is not None for h in LIST_HEADERS):
        return "bulk", auto, precedence, list_id
    return "message", auto, precedence, list_id


def _suppressed(msg: Message) -> bool:
    value = header_text(msg, "X-Auto-Response-Suppress") or ""
    return any(v.strip().lower() in SUPPRESS_VALUES for v in value.split(","))


def _truncate(text: str) -> str:
    if len(text) <= TEXT_MAX_CHARS:
        return text
    return text[: TEXT_MAX_CHARS - len(TRUNCATED_MARK)] + TRUNCATED_MARK


# ---------------------------------------------------------------------- entry point
def parse_email(
    raw: bytes, *, attachment_max_bytes: int = 10_485_760, mail_from: str | None = None
) -> ParsedEmail:
    """Parse raw message bytes; never raises (broken parts degrade to best-effort text).

    ``mail_from`` is the envelope sender when known ("" or "<>" for the null sender).
    """
    try:
        return _parse(raw, attachment_max_bytes=attachment_max_bytes, mail_from=mail_from)
    except Exception:
        logger.exception("email unparseable; keeping it as text")
    null_sender = mail_from is not None and not mail_from.strip().strip("<>").strip()
    return ParsedEmail(
        message_id=synthetic_id(raw),
        message_id_synthetic=True,
        from_address=None,
        reply_to=(),
        to=(),
        cc=(),
        subject="",
        in_reply_to=(),
        references=(),
        date=None,
        text=_truncate(decode_bytes(raw, None)),
        html=None,
        attachments=(),
        kind="auto_reply" if null_sender else "message",
        suppress_auto_reply=True,
        null_sender=null_sender,
        defects=("Unparseable",),
    )


def _parse(raw: bytes, *, attachment_max_bytes: int, mail_from: str | None) -> ParsedEmail:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    ids = message_ids(raw_header(msg, "Message-ID"))
    from_list = addresses(msg, "From")
    from_address = from_list[0] if from_list else None
    reply_to = addresses(msg, "Reply-To")
    # The null reverse-path: from the envelope, or a Return-Path written by the delivering MTA.
    envelope = mail_from if mail_from is not None else raw_header(msg, "Return-Path")
    null_sender = envelope is not None and not envelope.strip().strip("<>").strip()
    probe = reply_to[0] if len(reply_to) == 1 else from_address
    kind, auto, precedence, list_id = _classify(msg, null_sender=null_sender, sender=probe)
    try:
        body, used = _body(msg)
        attachments = _walk_parts(msg, body, used, attachment_max_bytes)
    except Exception:
        logger.warning("email body unreadable; keeping best-effort text", exc_info=True)
        body, attachments = _Body(text=decode_bytes(raw.partition(b"\n\n")[2], None)), ()
    bounce = _safe(lambda: parse_dsn(msg), None) if kind == "bounce" else None
    subject = header_text(msg, "Subject") or ""
    return ParsedEmail(
        message_id=ids[0] if ids else synthetic_id(raw),
        message_id_synthetic=not ids,
        from_address=from_address,
        reply_to=reply_to,
        to=addresses(msg, "To"),
        cc=addresses(msg, "Cc"),
        subject=subject[:SUBJECT_MAX_CHARS],
        in_reply_to=tuple(message_ids(raw_header(msg, "In-Reply-To"))),
        references=tuple(message_ids(raw_header(msg, "References"))),
        date=_date(msg),
        text=_truncate(body.text.strip()),
        html=body.html,
        attachments=attachments,
        kind=kind,
        suppress_auto_reply=kind != "message" or null_sender or _suppressed(msg),
        null_sender=null_sender,
        auto_submitted=auto,
        precedence=precedence,
        list_id=list_id,
        bounce=bounce,
        blocked_remote_content=body.blocked,
        html_truncated=body.truncated,
        defects=tuple(sorted({type(d).__name__ for d in msg.defects})),
    )
