"""RFC 3464 delivery status notifications: who failed, why, and which of our mails it was."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

from channels.email.charset import decode_bytes, decode_header_value
from channels.email.headers import message_ids, raw_header

logger = logging.getLogger(__name__)

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_FIELD = re.compile(r"^([A-Za-z0-9-]+)\s*:\s*(.*)$")
_MAX_RECIPIENTS = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryFailure:
    """One per-recipient block of a delivery status report."""

    recipient: str
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # "5.1.1"; "" when the report gave none
    diagnostic: str

    @property
    def permanent(self) -> bool:
        """A final failure: the address will not take mail (5.x.x, or failed with no status)."""
        return self.action == "failed" and not self.status.startswith("4")


@dataclass(frozen=True, slots=True, kw_only=True)
class Bounce:
    """A parsed DSN: the original Message-ID (no brackets) and each recipient's outcome."""

    original_message_id: str | None
    recipients: tuple[DeliveryFailure, ...]
    reporting_mta: str | None = None


def is_dsn(msg: Message) -> bool:
    """``multipart/report; report-type=delivery-status`` at the top level."""
    try:
        report_type = str(msg.get_param("report-type", "") or "")
        return msg.get_content_type() == "multipart/report" and (
            report_type.strip().lower() == "delivery-status"
        )
    except Exception:  # a malformed Content-Type is simply not a DSN
        return False


def _fields(text: str) -> list[dict[str, str]]:
    """Blank-line separated blocks of ``Name: value`` lines (continuations folded)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.replace("\r", "").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, ""
            continue
        if line[:1] in (" ", "\t") and last:
            current[last] += " " + line.strip()
            continue
        match = _FIELD.match(line)
        if match:
            last = match.group(1).lower()
            current.setdefault(last, match.group(2).strip())
    if current:
        blocks.append(current)
    return blocks


def _status_blocks(part: Message) -> list[dict[str, str]]:
    payload = part.get_payload()
    if isinstance(payload, list):
        # The stdlib parses message/delivery-status into one header block per Message.
        return [
            {str(k).lower(): " ".join(decode_header_value(str(v)).split()) for k, v in b.items()}
            for b in payload
            if isinstance(b, Message)
        ]
    data = part.get_payload(decode=True)
    text = decode_bytes(data, "utf-8") if isinstance(data, bytes) else str(payload)
    return _fields(text)


def _address(value: str) -> str:
    # "rfc822; nobody@example.net" (the address type is optional in the wild)
    address = value.split(";", 1)[-1].strip().strip("<>").strip()
    return address.lower()


def _typed_value(value: str) -> str:
    # "smtp; 550 5.1.1 ..." -> "550 5.1.1 ..."
    kind, sep, rest = value.partition(";")
    return rest.strip() if sep and " " not in kind.strip() else value.strip()


def _original_id(part: Message) -> str | None:
    """The Message-ID of the bounced original from its headers part."""
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            ids = message_ids(raw_header(inner[0], "Message-ID"))
            return ids[0] if ids else None
        return None
    data = part.get_payload(decode=True)
    raw = data if isinstance(data, bytes) else str(part.get_payload()).encode("utf-8", "replace")
    headers = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)
    ids = message_ids(raw_header(headers, "Message-ID"))
    return ids[0] if ids else None


def parse_dsn(msg: EmailMessage) -> Bounce:
    """Read the delivery-status and original-headers parts of a DSN; never raises."""
    blocks: list[dict[str, str]] = []
    original: str | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        try:
            if ctype == "message/delivery-status" and not blocks:
                blocks = _status_blocks(part)
            elif ctype in ("text/rfc822-headers", "message/rfc822") and original is None:
                original = _original_id(part)
        except Exception:  # a broken report part: keep what the other parts give
            logger.warning("unreadable %s part in a delivery report", ctype)
    reporting = blocks[0].get("reporting-mta") if blocks else None
    recipients: list[DeliveryFailure] = []
    for block in blocks[1:] if len(blocks) > 1 else blocks:
        who = block.get("final-recipient") or block.get("original-recipient")
        if not who:
            continue
        status_match = _STATUS.search(block.get("status", ""))
        recipients.append(
            DeliveryFailure(
                recipient=_address(who),
                action=block.get("action", "").split()[0].lower() if block.get("action") else "",
                status=status_match.group(0) if status_match else "",
                diagnostic=_typed_value(block.get("diagnostic-code", ""))[:500],
            )
        )
        if len(recipients) >= _MAX_RECIPIENTS:
            break
    return Bounce(
        original_message_id=original,
        recipients=tuple(recipients),
        reporting_mta=_typed_value(reporting) if reporting else None,
    )
