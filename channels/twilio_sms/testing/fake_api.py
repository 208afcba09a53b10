"""A local fake of Twilio's Messages REST API and media store, for tests and the demo.

It checks Basic auth, answers real-shaped JSON, can be told to fail (sends, media fetches,
list reads), serves MMS media and afterwards POSTs signed status callbacks (``sent`` then
``delivered``) to the StatusCallback it was given, exactly as Twilio signs them. Every
message it accepted (or a test put there with ``add_message``) is a Message resource that
``GET Messages.json`` lists: filtered by ``To``, ``From`` and ``DateSent`` (``DateSent>``,
``DateSent<``; whole days, messages without a sent date never match), newest ``date_sent``
first with the not yet sent ones before all others, paged by ``PageSize`` and a
``PageToken`` cursor in ``next_page_uri``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from yarl import URL

from channels.twilio_sms.const import (
    API_VERSION,
    ERROR_UNSUBSCRIBED,
    ERROR_WHATSAPP_WINDOW,
    WHATSAPP_PREFIX,
)
from channels.twilio_sms.testing.simulator import encode, new_sid, sign_body

logger = logging.getLogger(__name__)

DEMO_ACCOUNT_SID = "AC" + "d" * 32
DEMO_AUTH_TOKEN = "demo-twilio-auth-token"  # noqa: S105 - the fake's own demo credential


@dataclass(slots=True)
class Callback:
    """One status callback the fake delivered."""

    url: str
    params: dict[str, str]
    status: int | None  # the hub's HTTP answer; None when unreachable


@dataclass(slots=True)
class StoredMedia:
    """A media file the fake serves."""

    data: bytes
    content_type: str


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
    )


def _rfc2822(when: datetime) -> str:
    """A date as Twilio writes it in JSON: ``Thu, 30 Jul 2015 20:12:31 +0000``."""
    return format_datetime(when.astimezone(UTC).replace(microsecond=0))


def _parsed(value: object) -> datetime | None:
    return parsedate_to_datetime(value) if isinstance(value, str) and value else None


def _day(value: str) -> date:
    """A DateSent filter's day: ``YYYY-MM-DD``, also the start of a longer ISO timestamp."""
    return date.fromisoformat(value[:10])


@dataclass(slots=True)
class FakeTwilio:
    """The fake's state; tests inspect ``sent`` (the POSTs it accepted), ``messages`` (the
    Message resources it lists), ``list_requests``, ``callbacks`` and ``media_requests``."""

    account_sid: str
    auth_token: str
    callback_delay: float = 0.05
    callbacks_enabled: bool = True
    # Deliver callbacks here instead of the StatusCallback's own origin (tests: the URL is
    # the hub's public URL, the test server listens elsewhere); the signature still covers
    # the StatusCallback URL, as behind a reverse proxy.
    callback_base: str | None = None
    statuses: tuple[str, ...] = ("sent", "delivered")
    sent: list[dict[str, Any]] = field(default_factory=list)
    # Message resources as Twilio returns them, oldest first (sends and add_message).
    messages: list[dict[str, Any]] = field(default_factory=list)
    # The query of every GET Messages.json.
    list_requests: list[dict[str, str]] = field(default_factory=list)
    callbacks: list[Callback] = field(default_factory=list)
    media_requests: list[tuple[str, bool]] = field(default_factory=list)
    # Failure switches.
    fail_next: int = 0
    fail_status: int = 500
    retry_after: str | None = None
    list_fail_next: int = 0
    list_fail_status: int = 503
    # Accept the next N messages, then hang up before answering (a connection lost mid-send).
    lose_answer_next: int = 0
    unsubscribed: set[str] = field(default_factory=set)
    whatsapp_window_closed: set[str] = field(default_factory=set)
    # Sids to hand out next (tests that post fixture callbacks for a known sid).
    next_sids: deque[str] = field(default_factory=deque)
    media: dict[str, StoredMedia] = field(default_factory=dict)
    # media sid -> (answers still to fail, None: until cleared; HTTP status of the failure)
    media_failures: dict[str, tuple[int | None, int]] = field(default_factory=dict)
    app: web.Application = field(init=False)
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_post(
            "/2010-04-01/Accounts/{account}/Messages.json", self._create_message
        )
        self.app.router.add_get("/2010-04-01/Accounts/{account}/Messages.json", self._list_messages)
        self.app.router.add_get(
            "/2010-04-01/Accounts/{account}/Messages/{message}/Media/{media}", self._media_api
        )
        self.app.router.add_get("/media/{media}", self._media_file)

    # ------------------------------------------------------------------ test controls
    def add_media(
        self, data: bytes, content_type: str, *, base_url: str, message_sid: str | None = None
    ) -> str:
        """Store a media file; its Twilio-shaped URL under ``base_url``."""
        message_sid = message_sid or new_sid("MM")
        media_sid = new_sid("ME")
        self.media[media_sid] = StoredMedia(data=data, content_type=content_type)
        path = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{message_sid}/Media/{media_sid}"
        return base_url.rstrip("/") + path

    def put_media(self, media_sid: str, data: bytes, content_type: str) -> None:
        """Serve ``data`` for an existing media sid (fixtures name their own)."""
        self.media[media_sid] = StoredMedia(data=data, content_type=content_type)

    def fail_media(self, media_sid: str, *, times: int | None = 1, status: int = 503) -> None:
        """Answer the next ``times`` fetches of this media with ``status`` (None: all)."""
        self.media_failures[media_sid] = (times, status)

    def add_message(
        self,
        *,
        to: str,
        body: str,
        from_: str | None = None,
        messaging_service_sid: str | None = None,
        created: datetime | None = None,
        sent: datetime | None = None,
        status: str = "delivered",
        num_media: int = 0,
        direction: str = "outbound-api",
        error_code: int | None = None,
    ) -> str:
        """Put a Message resource in the account (one sent earlier, or by someone else);
        its sid. ``sent`` None: not handed to the carrier yet (``date_sent`` null)."""
        sid = new_sid("MM" if num_media else "SM")
        created = created or datetime.now(UTC)
        self.messages.append(
            self._resource(
                sid=sid,
                to=to,
                from_=from_,
                messaging_service_sid=messaging_service_sid,
                body=body,
                num_media=num_media,
                status=status,
                direction=direction,
                created=created,
                sent=sent,
                error_code=error_code,
            )
        )
        return sid

    async def settle(self) -> None:
        """Wait until every scheduled status callback has been delivered."""
        while self._tasks:
            await asyncio.gather(*tuple(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------------ handlers
    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return secrets.compare_digest(
            f"{user}:{password}".encode(), f"{self.account_sid}:{self.auth_token}".encode()
        )

    async def _create_message(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        if request.match_info["account"] != self.account_sid:
            return _error(404, 20404, "The requested resource was not found")
        form = await request.post()
        fields = {k: str(v) for k, v in form.items()}
        if self.fail_next > 0:
            self.fail_next -= 1
            response = _error(self.fail_status, 20500, "Internal Server Error")
            if self.retry_after is not None:
                response.headers["Retry-After"] = self.retry_after
            return response
        to, from_ = fields.get("To", ""), fields.get("From", "")
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not from_ and not fields.get("MessagingServiceSid"):
            return _error(400, 21603, "A 'From' phone number is required.")
        if not (fields.get("Body") or fields.get("ContentSid") or fields.get("MediaUrl")):
            return _error(400, 21602, "Message body is required.")
        whatsapp = to.startswith(WHATSAPP_PREFIX)
        if whatsapp != from_.startswith(WHATSAPP_PREFIX) and from_:
            return _error(400, 63007, "Twilio could not find a Channel with the specified From")
        bare = to.removeprefix(WHATSAPP_PREFIX)
        if not whatsapp and bare in self.unsubscribed:
            return _error(400, int(ERROR_UNSUBSCRIBED), "Attempt to send to unsubscribed recipient")
        if whatsapp and bare in self.whatsapp_window_closed and not fields.get("ContentSid"):
            return _error(
                400,
                int(ERROR_WHATSAPP_WINDOW),
                "Failed to send freeform message because you are outside the allowed window. "
                "If you are using WhatsApp, please use a Message Template.",
            )
        sid = self.next_sids.popleft() if self.next_sids else new_sid("SM")
        record: dict[str, Any] = {**fields, "sid": sid}
        record["MediaUrls"] = [str(u) for u in form.getall("MediaUrl", [])]
        self.sent.append(record)
        resource = self._resource(
            sid=sid,
            to=to,
            from_=from_ or None,
            messaging_service_sid=fields.get("MessagingServiceSid"),
            body=fields.get("Body", ""),
            num_media=len(record["MediaUrls"]),
            status="accepted" if fields.get("MessagingServiceSid") else "queued",
            direction="outbound-api",
            created=datetime.now(UTC),
            sent=None,
            error_code=None,
        )
        self.messages.append(resource)
        callback = fields.get("StatusCallback")
        if callback and self.callbacks_enabled:
            task = asyncio.create_task(self._report(callback, record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self.lose_answer_next > 0 and request.transport is not None:
            self.lose_answer_next -= 1
            request.transport.close()  # the message exists; its 201 never arrives
        return web.json_response(resource, status=201)

    def _resource(
        self,
        *,
        sid: str,
        to: str,
        from_: str | None,
        messaging_service_sid: str | None,
        body: str,
        num_media: int,
        status: str,
        direction: str,
        created: datetime,
        sent: datetime | None,
        error_code: int | None,
    ) -> dict[str, Any]:
        """A Message resource in Twilio's JSON shape."""
        base = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": _rfc2822(created),
            "date_sent": _rfc2822(sent) if sent is not None else None,
            "date_updated": _rfc2822(sent or created),
            "direction": direction,
            "error_code": error_code,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": messaging_service_sid,
            "num_media": str(num_media),
            "num_segments": "1" if len(body) <= 160 else str(-(-len(body) // 153)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": status,
            "subresource_uris": {"media": f"{base}/Media.json"},
            "to": to,
            "uri": f"{base}.json",
        }

    async def _list_messages(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        if request.match_info["account"] != self.account_sid:
            return _error(404, 20404, "The requested resource was not found")
        query = request.query
        self.list_requests.append(dict(query))
        if self.list_fail_next > 0:
            self.list_fail_next -= 1
            return _error(self.list_fail_status, 20500, "Service Unavailable")
        try:
            on = _day(query["DateSent"]) if "DateSent" in query else None
            after = _day(query["DateSent>"]) if "DateSent>" in query else None
            before = _day(query["DateSent<"]) if "DateSent<" in query else None
            size = int(query.get("PageSize", "50"))
            page = int(query.get("Page", "0"))
        except ValueError:
            return _error(400, 20001, "Invalid filter or paging parameter")
        if not 1 <= size <= 1000 or page < 0:
            return _error(400, 20001, "PageSize must be between 1 and 1000")

        def wanted(item: dict[str, Any]) -> bool:
            if "To" in query and item["to"] != query["To"]:
                return False
            if "From" in query and item["from"] != query["From"]:
                return False
            if on is None and after is None and before is None:
                return True
            sent = _parsed(item["date_sent"])
            if sent is None:
                return False
            day = sent.date()
            return (
                (on is None or day == on)
                and (after is None or day >= after)
                and (before is None or day <= before)
            )

        order = {id(item): n for n, item in enumerate(self.messages)}
        floor = datetime.min.replace(tzinfo=UTC)

        def newest(item: dict[str, Any]) -> tuple[bool, datetime, datetime, int]:
            sent = _parsed(item["date_sent"])
            created = _parsed(item["date_created"]) or floor
            return (sent is None, sent or floor, created, order[id(item)])

        listed = sorted(filter(wanted, self.messages), key=newest, reverse=True)
        start = page * size
        token = query.get("PageToken", "")
        if token.startswith("PA"):
            # A cursor: the page after the message it names, however the list grew since.
            sids = [item["sid"] for item in listed]
            if token[2:] in sids:
                start = sids.index(token[2:]) + 1
        items = listed[start : start + size]
        path = request.path
        names = ("To", "From", "DateSent", "DateSent>", "DateSent<")
        filters = [(k, query[k]) for k in names if k in query]

        def uri(number: int, cursor: str | None = None) -> str:
            params = [*filters, ("PageSize", str(size)), ("Page", str(number))]
            if cursor:
                params.append(("PageToken", cursor))
            return f"{path}?{urlencode(params)}"

        more = start + size < len(listed)
        return web.json_response(
            {
                "end": start + len(items) - 1 if items else start,
                "first_page_uri": uri(0),
                "messages": items,
                "next_page_uri": uri(page + 1, "PA" + items[-1]["sid"]) if more else None,
                "page": page,
                "page_size": size,
                "previous_page_uri": uri(page - 1) if page > 0 else None,
                "start": start,
                "uri": uri(page, token or None),
            }
        )

    async def _media_api(self, request: web.Request) -> web.StreamResponse:
        ok = self._authorized(request)
        self.media_requests.append((request.path, ok))
        if not ok:
            return _error(401, 20003, "Authenticate")
        media_sid = request.match_info["media"]
        failing = self.media_failures.get(media_sid)
        if failing is not None:
            times, status = failing
            if times is not None:
                if times <= 1:
                    del self.media_failures[media_sid]
                else:
                    self.media_failures[media_sid] = (times - 1, status)
            return _error(status, 20500, "Service Unavailable")
        if media_sid not in self.media:
            return _error(404, 20404, "The requested resource was not found")
        # Twilio redirects to its CDN; the fake redirects to its own /media path.
        raise web.HTTPTemporaryRedirect(f"/media/{media_sid}")

    async def _media_file(self, request: web.Request) -> web.Response:
        ok = self._authorized(request)
        self.media_requests.append((request.path, ok))
        if not ok:
            return _error(401, 20003, "Authenticate")
        item = self.media.get(request.match_info["media"])
        if item is None:
            return _error(404, 20404, "The requested resource was not found")
        return web.Response(body=item.data, content_type=item.content_type)

    # ------------------------------------------------------------------ status callbacks
    def _status_params(self, record: dict[str, Any], status: str) -> list[tuple[str, str]]:
        sid = str(record["sid"])
        to, from_ = str(record.get("To", "")), str(record.get("From", ""))
        params = [
            ("SmsSid", sid),
            ("SmsStatus", status),
            ("MessageStatus", status),
            ("To", to),
            ("MessageSid", sid),
            ("AccountSid", self.account_sid),
            ("From", from_),
            ("ApiVersion", API_VERSION),
        ]
        if to.startswith(WHATSAPP_PREFIX):
            params += [
                ("ChannelToAddress", to.removeprefix(WHATSAPP_PREFIX)),
                ("ChannelPrefix", "whatsapp"),
                ("ChannelInstallSid", "XE" + "0" * 32),
            ]
            if status == "read":
                params.append(("EventType", "READ"))
        elif status in ("delivered", "undelivered"):
            params.append(("RawDlrDoneDate", datetime.now(UTC).strftime("%y%m%d%H%M")))
        return params

    async def _report(self, callback: str, record: dict[str, Any]) -> None:
        for status in self.statuses:
            await asyncio.sleep(self.callback_delay)
            self._advance(str(record["sid"]), status)
            await self.post_status(callback, self._status_params(record, status))

    def _advance(self, sid: str, status: str) -> None:
        """The listed resource follows the reports: its status, and its sent date once sent."""
        now = _rfc2822(datetime.now(UTC))
        for item in self.messages:
            if item["sid"] == sid:
                item["status"] = status
                item["date_updated"] = now
                if status in ("sent", "delivered", "undelivered", "read"):
                    item["date_sent"] = item["date_sent"] or now

    async def post_status(self, callback: str, params: list[tuple[str, str]]) -> int | None:
        """POST one signed status callback (signed over ``callback``, sent to callback_base)."""
        body = encode(params)
        headers = sign_body(callback, body, self.auth_token)
        target = URL(callback)
        if self.callback_base:
            base = URL(self.callback_base)
            target = target.with_scheme(base.scheme).with_host(base.host or "127.0.0.1")
            target = target.with_port(base.port)
        status: int | None = None
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(target, data=body, headers=headers) as resp:
                status = resp.status
                await resp.read()
        except aiohttp.ClientError as err:
            logger.warning("fake Twilio: status callback to %s failed: %s", target, err)
        self.callbacks.append(Callback(url=callback, params=dict(params), status=status))
        return status

    # ------------------------------------------------------------------ lifecycle
    async def close(self) -> None:
        """Stop serving; cancel pending callbacks."""
        for task in tuple(self._tasks):
            task.cancel()
        for task in tuple(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()


async def start_fake_twilio(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    account_sid: str = DEMO_ACCOUNT_SID,
    auth_token: str = DEMO_AUTH_TOKEN,
    callback_delay: float = 0.05,
    callbacks: bool = True,
    callback_base: str | None = None,
) -> tuple[FakeTwilio, str]:
    """Start the fake on ``host:port`` (0 = a free port); (fake, base URL). Stop: ``close()``."""
    fake = FakeTwilio(
        account_sid=account_sid,
        auth_token=auth_token,
        callback_delay=callback_delay,
        callbacks_enabled=callbacks,
        callback_base=callback_base,
    )
    runner = web.AppRunner(fake.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    fake._runner = runner
    sockets = [s for s in runner.addresses if isinstance(s, tuple)]
    bound_port = sockets[0][1] if sockets else port
    return fake, f"http://{host}:{bound_port}"
