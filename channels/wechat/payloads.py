"""The XML WeChat pushes, parsed into the hub's ``InboundMessage``.

Every push is one flat ``<xml>`` element whose children are text fields (CDATA or not). We
refuse any document type declaration before parsing, so no entity can expand (billion
laughs, quadratic blow-up) and nothing external is ever fetched; the rest of the parse is
expat's, linear in the body's size, which the webhook caps first.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from channels.wechat.const import CHANNEL, ENDPOINT_KIND, EVENT_TYPES, MESSAGE_TYPES, UNION_KIND
from contract.channel import Attachment, Identifier, InboundMessage

_DECLARATION = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_OPENID = re.compile(r"^[A-Za-z0-9_\-]{6,64}$")
MAX_FIELDS = 40  # a push has about ten; more is not WeChat
MAX_TEXT = 20_000


class MalformedPush(ValueError):
    """Not a WeChat push: no usable XML or missing the fields every push carries."""


def parse_xml(body: bytes) -> dict[str, str]:
    """The children of the root ``<xml>`` as a flat name → text mapping."""
    if _DECLARATION.search(body):
        raise MalformedPush("document type declarations are not accepted")
    try:
        root = ET.fromstring(body)  # noqa: S314 - no DTD can reach it (checked above)
    except ET.ParseError as err:
        raise MalformedPush(f"not XML: {err}") from None
    if root.tag != "xml":
        raise MalformedPush(f"root element is <{root.tag[:40]}>, not <xml>")
    if len(root) > MAX_FIELDS:
        raise MalformedPush(f"{len(root)} fields")
    fields: dict[str, str] = {}
    for child in root:
        if len(child):
            continue  # nested elements (e.g. article lists in replies) carry nothing we use
        fields[child.tag] = (child.text or "").strip()
    return fields


@dataclass(frozen=True, slots=True)
class ParsedPush:
    """One push: the contact to ingest (None when deliberately not stored) and why not."""

    msg_type: str
    event: str
    openid: str
    message: InboundMessage | None
    reason: str = ""
    # subscribe / unsubscribe: the follower's consent to customer-service messages.
    consent: bool | None = None


def _when(fields: dict[str, str]) -> datetime | None:
    raw = fields.get("CreateTime", "")
    if not raw.isdigit():
        return None
    return datetime.fromtimestamp(int(raw), tz=UTC)


def _pending(source: str, content_type: str, filename: str) -> Attachment:
    """Media WeChat announced by MediaId: the hub's media worker fetches it (media/get)."""
    return Attachment(filename=filename, content_type=content_type, state="pending", source=source)


def _content(
    msg_type: str, f: dict[str, str]
) -> tuple[str, tuple[Attachment, ...], dict[str, Any]]:
    """Text, attachments and kept metadata of a message push."""
    media = f.get("MediaId", "")
    meta: dict[str, Any] = {}
    if msg_type == "text":
        if f.get("MsgDataId"):
            meta["article"] = {"msg_data_id": f["MsgDataId"], "idx": f.get("Idx", "")}
        return f.get("Content", ""), (), meta
    if msg_type == "image":
        if f.get("PicUrl"):
            meta["pic_url"] = f["PicUrl"]
        return "", ((_pending(media, "image/jpeg", "image.jpg"),) if media else ()), meta
    if msg_type == "voice":
        fmt = (f.get("Format") or "amr").lower()
        # Speech recognition (when the account has it on) gives the words: they are the text.
        recognition = f.get("Recognition", "")
        if recognition:
            meta["recognition"] = True
        audio = (_pending(media, f"audio/{fmt}", f"voice.{fmt}"),) if media else ()
        return recognition, audio, meta
    if msg_type in ("video", "shortvideo"):
        if f.get("ThumbMediaId"):
            meta["thumb_media_id"] = f["ThumbMediaId"]
        return "", ((_pending(media, "video/mp4", "video.mp4"),) if media else ()), meta
    if msg_type == "location":
        lat, lon, label = f.get("Location_X", ""), f.get("Location_Y", ""), f.get("Label", "")
        meta["location"] = {"lat": lat, "lon": lon, "scale": f.get("Scale", ""), "label": label}
        place = f"{label} " if label else ""
        return f"📍 {place}({lat}, {lon})", (), meta
    # link
    meta["link"] = {"title": f.get("Title", ""), "url": f.get("Url", "")}
    parts = [f.get("Title", ""), f.get("Description", ""), f.get("Url", "")]
    return "\n".join(p for p in parts if p), (), meta


def parse_push(fields: dict[str, str], *, queue: str | None = None) -> ParsedPush:
    """The contact a push carries; MalformedPush when it lacks what every push has."""
    msg_type = fields.get("MsgType", "").lower()
    openid = fields.get("FromUserName", "")
    account = fields.get("ToUserName", "")
    if not msg_type or not account or not _OPENID.match(openid):
        raise MalformedPush("missing MsgType, ToUserName or a usable FromUserName")
    identifiers: tuple[Identifier, ...] = ()
    union = fields.get("UnionId") or fields.get("UnionID") or ""
    if _OPENID.match(union):
        # The same person across the accounts of one Open Platform: verified by WeChat.
        identifiers = (Identifier(kind=UNION_KIND, address=union),)
    common: dict[str, Any] = {
        "channel": CHANNEL,
        "sender_kind": ENDPOINT_KIND,
        "sender": openid,
        "recipient": account,
        "queue": queue or None,
        "occurred_at": _when(fields),
        "identifiers": identifiers,
    }
    if msg_type == "event":
        return _parse_event(fields, openid, common)
    if msg_type not in MESSAGE_TYPES:
        return ParsedPush(msg_type, "", openid, None, f"unknown message type {msg_type[:40]!r}")
    msg_id = fields.get("MsgId", "")
    if not msg_id.isdigit():
        raise MalformedPush(f"{msg_type} without a numeric MsgId")
    text, attachments, meta = _content(msg_type, fields)
    if not text.strip() and not attachments:
        return ParsedPush(msg_type, "", openid, None, "nothing in it")
    meta["msg_type"] = msg_type
    message = InboundMessage(
        provider_id=msg_id,
        text=text[:MAX_TEXT],
        attachments=attachments,
        metadata=meta,
        **common,
    )
    return ParsedPush(msg_type, "", openid, message)


def _parse_event(fields: dict[str, str], openid: str, common: dict[str, Any]) -> ParsedPush:
    event = fields.get("Event", "").lower()
    key = fields.get("EventKey", "")
    if event not in EVENT_TYPES:
        return ParsedPush("event", event, openid, None, f"unknown event {event[:40]!r}")
    if event in ("location", "view"):
        # Position reports every few seconds and menu links opened: noise in a conversation.
        return ParsedPush("event", event, openid, None, f"{event} events are not stored")
    if event in ("subscribe", "unsubscribe"):
        # Following is consent, unfollowing withdraws it (WeChat refuses sends after it);
        # neither is a request for help, so no conversation is opened.
        return ParsedPush("event", event, openid, None, "consent", consent=event == "subscribe")
    meta: dict[str, Any] = {"event": event}
    if key:
        meta["event_key"] = key
    if event == "scan":
        meta["scene"] = key
    texts = {
        "click": f"menu: {key}",
        "scan": f"scanned code {key}",
    }
    # Events carry no MsgId: WeChat's own dedupe key is sender + CreateTime; the event and
    # its key tell apart two events of the same second.
    provider_id = f"ev:{openid}:{fields.get('CreateTime', '')}:{event}:{key}"[:200]
    message = InboundMessage(
        provider_id=provider_id, text=texts[event], kind="event", metadata=meta, **common
    )
    return ParsedPush("event", event, openid, message)
