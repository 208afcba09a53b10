"""Finding an earlier send in Twilio's Messages list, when the answer to it was lost.

A process that dies between Twilio's 201 and recording the sid leaves the outbox not
knowing whether the message went out. Twilio has no idempotency key on ``Messages.json``,
so before sending again we read the recipient's messages back and look for ours: same
``To``, same sender (number or Messaging Service), the exact body, the same number of
media, created at or after the lost attempt began.

We filter the list by ``To`` (and ``From``) only, never by ``DateSent``: that filter is on
the date Twilio handed the message to the carrier, which is empty while a message still
waits in Twilio's queue, and a queued message is exactly the one we must not send twice.
Time is checked here, to the second, on ``date_created``. The list comes newest first and
we read at most ``RECONCILE_MAX_PAGES`` pages of it without stopping at the first older
message: Twilio does not document where it lists the messages it has not sent yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from channels.twilio_sms.const import (
    RECONCILE_CLOCK_SKEW_S,
    RECONCILE_PAGE_SIZE,
    UNCERTAIN_KEEP,
)

# The direction of a message created through the REST API (what ``send`` does).
OUTBOUND_API = "outbound-api"


class UnreadableList(ValueError):
    """Twilio's answer is not a page of the Messages list."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedMessage:
    """One Message resource as the list returns it (the fields we match on)."""

    sid: str
    to: str
    from_: str
    messaging_service_sid: str | None
    body: str
    status: str
    direction: str
    num_media: int
    date_created: datetime | None
    date_sent: datetime | None
    error_code: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessagePage:
    """One page of the list: its messages (newest first) and the next page's URI."""

    messages: tuple[ListedMessage, ...]
    next_page_uri: str | None


def _date(value: Any) -> datetime | None:
    """An RFC 2822 date as Twilio writes them (``Thu, 30 Jul 2015 20:12:31 +0000``)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _count(value: Any) -> int:
    """Twilio writes counts as strings ("0"); anything unreadable counts as none."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def parse_message(item: Mapping[str, Any]) -> ListedMessage:
    """One element of ``messages``; UnreadableList when it has no sid."""
    sid = item.get("sid")
    if not isinstance(sid, str) or not sid:
        raise UnreadableList("a listed message has no sid")
    error = item.get("error_code")
    return ListedMessage(
        sid=sid,
        to=str(item.get("to") or ""),
        from_=str(item.get("from") or ""),
        messaging_service_sid=str(item["messaging_service_sid"])
        if item.get("messaging_service_sid")
        else None,
        body=str(item.get("body") or ""),
        status=str(item.get("status") or ""),
        direction=str(item.get("direction") or ""),
        num_media=_count(item.get("num_media")),
        date_created=_date(item.get("date_created")),
        date_sent=_date(item.get("date_sent")),
        error_code=str(error) if error is not None else None,
    )


def parse_page(data: Any) -> MessagePage:
    """A page of ``GET Messages.json``; UnreadableList when it is not shaped like one."""
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise UnreadableList("not a page of the Messages list")
    items = data["messages"]
    if not all(isinstance(item, dict) for item in items):
        raise UnreadableList("a listed message is not an object")
    next_uri = data.get("next_page_uri")
    return MessagePage(
        messages=tuple(parse_message(item) for item in items),
        next_page_uri=next_uri if isinstance(next_uri, str) and next_uri else None,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SentQuery:
    """The lost attempt, as the form fields we POST for it, and when it began."""

    to: str
    sender: str
    by_service: bool  # sender is a Messaging Service sid, not a From address
    body: str
    num_media: int
    since: datetime

    @classmethod
    def from_form(cls, fields: list[tuple[str, str]], *, since: datetime) -> SentQuery | None:
        """The query for the form ``send`` would POST; None when its body is not ours to
        compare (a template: Twilio stores the text it rendered, not what we sent)."""
        form = dict(fields)
        if "ContentSid" in form:
            return None
        service = form.get("MessagingServiceSid")
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)  # the hub stores UTC
        return cls(
            to=form["To"],
            sender=service or form["From"],
            by_service=service is not None,
            body=form.get("Body", ""),
            num_media=sum(1 for name, _ in fields if name == "MediaUrl"),
            since=since,
        )

    @property
    def earliest(self) -> datetime:
        """The oldest ``date_created`` that can be the lost attempt: ``since`` to the second
        (Twilio's precision), less the clock skew we allow."""
        return self.since.replace(microsecond=0) - timedelta(seconds=RECONCILE_CLOCK_SKEW_S)

    def params(self) -> list[tuple[str, str]]:
        """The list filter: this recipient, from this number (a service picks its own)."""
        params = [("To", self.to)]
        if not self.by_service:
            params.append(("From", self.sender))
        params.append(("PageSize", str(RECONCILE_PAGE_SIZE)))
        return params

    def matches(self, item: ListedMessage) -> bool:
        """Whether ``item`` is this message, sent through the API at or after ``since``."""
        if item.direction != OUTBOUND_API or item.to != self.to:
            return False
        sender = item.messaging_service_sid if self.by_service else item.from_
        if sender != self.sender:
            return False
        if item.body != self.body or item.num_media != self.num_media:
            return False
        return item.date_created is not None and item.date_created >= self.earliest


@dataclass(slots=True)
class UncertainSends:
    """This process's sends whose outcome is unknown: the request may have reached Twilio
    (a timeout, a dropped connection, a 5xx, an unreadable 2xx). The next attempt at the same
    message first looks for it in the list, from when the first such attempt began."""

    keep: int = UNCERTAIN_KEEP
    _began: dict[str, datetime] = field(default_factory=dict)

    def began(self, key: str) -> datetime | None:
        """When the first uncertain attempt at ``key`` began (None: no such attempt)."""
        return self._began.get(key)

    def add(self, key: str, began: datetime) -> None:
        """Remember an uncertain attempt; an earlier one's start is kept."""
        self._began.setdefault(key, began)
        while len(self._began) > self.keep:
            del self._began[next(iter(self._began))]  # the oldest remembered

    def settle(self, key: str) -> None:
        """The outcome is known now (sent, found, or refused)."""
        self._began.pop(key, None)
