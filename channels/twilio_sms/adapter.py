"""The Twilio messaging adapter: SMS, MMS and WhatsApp out through the REST API (aiohttp)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from yarl import URL

from channels.twilio_sms.const import (
    CHANNEL_SMS,
    CHANNEL_WHATSAPP,
    ERROR_MESSAGES,
    ERROR_UNSUBSCRIBED,
    ERROR_WHATSAPP_WINDOW,
    MESSAGES_PATH,
    PATH_STATUS,
    RECONCILE_MAX_PAGES,
    RECONCILE_TIMEOUT_S,
    SEND_TIMEOUT_S,
    SERVICE_SID_RE,
    TWILIO_STATUS,
    WHATSAPP_PREFIX,
    WHATSAPP_WINDOW_S,
)
from channels.twilio_sms.payloads import strip_prefix
from channels.twilio_sms.reconcile import (
    ListedMessage,
    MessagePage,
    SentQuery,
    UncertainSends,
    parse_page,
)
from channels.twilio_sms.webhook import TwilioWebhook
from contract.channel import (
    Attachment,
    ChannelContext,
    DeliveryStatus,
    OutboundMessage,
    SendReceipt,
)
from contract.errors import ChannelError, ConfigError, HubError

logger = logging.getLogger(__name__)


def _address(channel: str, address: str) -> str:
    """Twilio's spelling of an address on a channel: WhatsApp needs ``whatsapp:`` both sides."""
    bare = strip_prefix(address.strip())
    return f"{WHATSAPP_PREFIX}{bare}" if channel == CHANNEL_WHATSAPP else bare


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def provider_error(status: int, body: bytes, headers: Mapping[str, str]) -> ChannelError:
    """Map one failed REST answer to a ChannelError (the only place that decides retries)."""
    code: str | None = None
    detail = ""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        code = str(data["code"]) if data.get("code") is not None else None
        detail = str(data.get("message") or "")
    if status == 429 or status >= 500:
        return ChannelError(
            f"Twilio answered {status}{': ' + detail if detail else ''}",
            retryable=True,
            code=code,
            retry_after=_retry_after(headers.get("Retry-After")),
        )
    explanation = ERROR_MESSAGES.get(code or "")
    message = f"Twilio refused the message ({status}"
    message += f", error {code})" if code else ")"
    if explanation:
        message += f": {explanation}"
    if detail and detail != explanation:
        message += f" [{detail}]"
    return ChannelError(message, retryable=False, code=code or str(status))


class TwilioMessagingAdapter:
    """SMS/MMS/WhatsApp over Twilio Programmable Messaging."""

    channels = frozenset({CHANNEL_SMS, CHANNEL_WHATSAPP})
    # Free-form WhatsApp outside the 24-hour window needs an approved template (ContentSid).
    reply_options: Mapping[str, frozenset[str]] = {
        CHANNEL_SMS: frozenset({"media_urls"}),
        CHANNEL_WHATSAPP: frozenset({"media_urls", "template_sid", "template_variables"}),
    }

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.account_sid: str = settings.twilio_account_sid
        self._headers = {
            "Authorization": aiohttp.encode_basic_auth(
                self.account_sid, settings.twilio_auth_token.get_secret_value()
            )
        }
        self.api_base: str = settings.twilio_api_base.rstrip("/")
        self.messages_url = self.api_base + MESSAGES_PATH.format(account_sid=self.account_sid)
        self.status_callback = settings.public_url.rstrip("/") + PATH_STATUS
        self.default_from: str = settings.twilio_from
        self.default_whatsapp_from: str = settings.twilio_whatsapp_from
        self.webhook = TwilioWebhook(settings=settings, hub=ctx.hub, http=ctx.http)
        self.uncertain = UncertainSends()

    def routes(self) -> Sequence[web.AbstractRouteDef]:
        return self.webhook.routes()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def typing(self, *, channel: str, to: str) -> None:
        return None

    async def fetch_attachment(
        self, *, channel: str, source: str, content_type: str, filename: str | None
    ) -> Attachment:
        """Fetch announced media again (``source`` is its MediaUrl; same host checks)."""
        return await self.webhook.media.fetch(
            self.ctx.http(), source, content_type=content_type, filename=filename
        )

    def form(self, message: OutboundMessage, *, check_window: bool = True) -> list[tuple[str, str]]:
        """The Messages.json form fields for one outbound message (raises on what can't go).

        ``check_window=False``: the fields of an attempt already made, whatever the time now.
        """
        channel = message.channel
        if channel not in self.channels:
            raise ChannelError(f"Twilio cannot send on channel {channel!r}", retryable=False)
        options = message.options
        template = options.get("template_sid")
        if (
            check_window
            and channel == CHANNEL_WHATSAPP
            and not template
            and _window_closed(options)
        ):
            raise ChannelError(
                f"Twilio error {ERROR_WHATSAPP_WINDOW}: {ERROR_MESSAGES[ERROR_WHATSAPP_WINDOW]}",
                retryable=False,
                code=ERROR_WHATSAPP_WINDOW,
            )
        default_from = (
            self.default_whatsapp_from if channel == CHANNEL_WHATSAPP else self.default_from
        )
        sender = message.sender or default_from or None
        if not sender:
            raise ChannelError(
                "no Twilio sender for this conversation (the customer never wrote to one of our "
                "numbers); reply on the channel they used",
                retryable=False,
                code="no_sender",
            )
        fields = [("To", _address(channel, message.to))]
        if SERVICE_SID_RE.match(sender):
            fields.append(("MessagingServiceSid", sender))
        else:
            fields.append(("From", _address(channel, sender)))
        media_urls = [str(u) for u in options.get("media_urls", ())]
        if template:
            fields.append(("ContentSid", str(template)))
            variables = options.get("template_variables")
            if variables is not None:
                value = variables if isinstance(variables, str) else json.dumps(variables)
                fields.append(("ContentVariables", value))
        elif message.text:
            fields.append(("Body", message.text))
        elif not media_urls:
            raise ChannelError(
                "nothing to send: Twilio needs text, a template or public media URLs "
                "(stored attachments are not reachable by Twilio)",
                retryable=False,
                code="empty",
            )
        fields.extend(("MediaUrl", u) for u in media_urls)
        fields.append(("StatusCallback", self.status_callback))
        return fields

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """POST one message to Messages.json; the receipt carries Twilio's sid and status.

        After an attempt of this process whose outcome is unknown, the next one first looks
        for it in Twilio's list (``find_sent``) instead of texting the customer twice.
        """
        fields = self.form(message)
        key = message.idempotency_key or f"message:{message.message_id}"
        earlier = self.uncertain.began(key)
        if earlier is not None:
            found = await self.find_sent(message, since=earlier)
            if found is not None:
                self.uncertain.settle(key)
                return found
        if message.attachments and not message.options.get("media_urls"):
            logger.warning(
                "message %s: %d attachment(s) not sent (Twilio needs public media URLs)",
                message.message_id,
                len(message.attachments),
            )
        began = datetime.now(UTC)
        try:
            async with self.ctx.http().post(
                self.messages_url,
                data=fields,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_S),
            ) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    err = provider_error(resp.status, body, resp.headers)
                    if resp.status >= 500 and resp.status != 503:
                        # A 500/502/504 may come after Twilio created the message.
                        self.uncertain.add(key, began)
                        err.outcome_unknown = True
                    else:
                        self.uncertain.settle(key)
                    await self._after_refusal(message, err)
                    raise err
                data = json.loads(body)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as err:
            # Never connected: nothing reached Twilio.
            raise ChannelError(f"Twilio unreachable: {err!r}", retryable=True) from err
        except (aiohttp.ClientError, TimeoutError) as err:
            self.uncertain.add(key, began)
            raise ChannelError(
                f"Twilio unreachable: {err!r}", retryable=True, outcome_unknown=True
            ) from err
        except ValueError as err:
            self.uncertain.add(key, began)
            raise ChannelError(
                "Twilio answered with unreadable JSON", retryable=True, outcome_unknown=True
            ) from err
        sid = data.get("sid") if isinstance(data, dict) else None
        if not isinstance(sid, str) or not sid:
            self.uncertain.add(key, began)
            raise ChannelError(
                "Twilio's answer has no message sid", retryable=True, outcome_unknown=True
            )
        self.uncertain.settle(key)
        status: DeliveryStatus = TWILIO_STATUS.get(str(data.get("status") or ""), None) or "queued"
        meta: dict[str, Any] = {
            k: data[k] for k in ("num_segments", "num_media", "price", "price_unit") if data.get(k)
        }
        if message.attachments and not message.options.get("media_urls"):
            meta["attachments_not_sent"] = len(message.attachments)
        return SendReceipt(provider_id=sid, status=status, metadata=meta)

    async def find_sent(self, message: OutboundMessage, *, since: datetime) -> SendReceipt | None:
        """Twilio's record of ``message`` sent at or after ``since``, or None (``reconcile``).

        Twilio takes no idempotency key on Messages.json, so the outbox asks this before it
        sends again a message whose last attempt has no known outcome.
        """
        query = SentQuery.from_form(self.form(message, check_window=False), since=since)
        if query is None:
            logger.warning(
                "message %s: a template send cannot be matched at Twilio; sending it again",
                message.message_id,
            )
            return None
        url = URL(self.messages_url).with_query(query.params())
        for _ in range(RECONCILE_MAX_PAGES):
            page = await self._list_page(url)
            candidates = sorted(
                (m for m in page.messages if query.matches(m)),
                key=lambda m: m.date_created or since,
            )
            for item in candidates:
                # An identical text we already recorded is another message of ours, not this.
                if not await self._recorded(message.channel, item.sid):
                    return _reconciled(item)
            if page.next_page_uri is None:
                return None
            url = self._next_page_url(page.next_page_uri)
        logger.warning(
            "message %s: not among the recipient's latest %d pages of messages; sending it again",
            message.message_id,
            RECONCILE_MAX_PAGES,
        )
        return None

    async def _list_page(self, url: URL) -> MessagePage:
        """One page of the Messages list; any failure is retryable (asked again later)."""
        try:
            async with self.ctx.http().get(
                url,
                headers={**self._headers, "Accept": "application/json"},
                timeout=aiohttp.ClientTimeout(total=RECONCILE_TIMEOUT_S),
            ) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    err = provider_error(resp.status, body, resp.headers)
                    raise ChannelError(
                        f"cannot read Twilio's message list: {err}",
                        retryable=True,
                        code=err.code,
                        retry_after=err.retry_after,
                    )
                return parse_page(json.loads(body))
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ChannelError(f"Twilio unreachable: {err!r}", retryable=True) from err
        except ValueError as err:
            raise ChannelError(
                f"Twilio's message list is unreadable: {err}", retryable=True
            ) from err

    def _next_page_url(self, uri: str) -> URL:
        """Twilio's ``next_page_uri``, on our API base: only this account's message list,
        so the account credentials never go anywhere else."""
        parts = urlsplit(uri)
        if parts.scheme or parts.netloc or parts.path != URL(self.messages_url).path:
            raise ChannelError(f"Twilio named an unexpected next page: {uri!r}", retryable=True)
        return URL(self.api_base + uri, encoded=True)

    async def _recorded(self, channel: str, sid: str) -> bool:
        try:
            return await self.ctx.hub.sent_message_exists(channel=channel, provider_id=sid)
        except HubError as err:
            raise ChannelError(f"cannot check the sid {sid}: {err}", retryable=True) from err

    async def _after_refusal(self, message: OutboundMessage, err: ChannelError) -> None:
        if err.code != ERROR_UNSUBSCRIBED:
            return
        # The customer texted STOP (maybe before we saw it): record it so the console refuses
        # further replies instead of failing each one.
        try:
            await self.ctx.hub.set_opt_out(
                kind="phone", address=message.to, channel=message.channel, opted_out=True
            )
        except HubError as hub_err:
            logger.warning("could not record the opt-out of %s: %s", message.to, hub_err)


def _reconciled(item: ListedMessage) -> SendReceipt:
    """The receipt of a message found in the list (its status as Twilio has it now)."""
    status: DeliveryStatus = TWILIO_STATUS.get(item.status) or "queued"
    meta: dict[str, Any] = {"reconciled": True}
    if item.error_code:
        meta["error_code"] = item.error_code
    return SendReceipt(provider_id=item.sid, status=status, metadata=meta)


def _window_closed(options: Mapping[str, Any]) -> bool:
    """True when the last inbound message is known and older than WhatsApp's 24 h window."""
    raw = options.get("last_inbound_at")
    if not raw:
        return False
    try:
        last = datetime.fromisoformat(str(raw))
    except ValueError:
        return False
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)  # the hub stores UTC
    return (datetime.now(UTC) - last).total_seconds() > WHATSAPP_WINDOW_S


def create(ctx: ChannelContext) -> TwilioMessagingAdapter | None:
    """The adapter, or None when no Twilio account is configured."""
    if not ctx.settings.twilio_account_sid:
        return None
    if not ctx.settings.twilio_auth_token.get_secret_value():
        # Fail closed: with an empty key anyone can compute a valid X-Twilio-Signature.
        raise ConfigError(
            "missing setting HUB_TWILIO_AUTH_TOKEN: required when HUB_TWILIO_ACCOUNT_SID is set"
        )
    return TwilioMessagingAdapter(ctx)
