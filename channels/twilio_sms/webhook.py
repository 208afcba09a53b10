"""Twilio messaging webhooks: signature check, inbound messages (TwiML answer), status reports."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from channels.twilio_sms.const import (
    ERROR_MESSAGES,
    ERROR_UNSUBSCRIBED,
    FORM_CONTENT_TYPE,
    MEDIA_TIMEOUT_S,
    PATH_INBOUND,
    PATH_STATUS,
    SIGNATURE_HEADER,
    TWILIO_STATUS,
)
from channels.twilio_sms.media import Fetched, MediaFetcher
from channels.twilio_sms.payloads import (
    InboundPayload,
    MalformedPayload,
    parse_inbound,
    parse_status,
)
from contract.channel import HubPort, InboundMessage, StatusUpdate

logger = logging.getLogger(__name__)


_EMPTY_TWIML = str(MessagingResponse())


def twiml(reply: str | None = None) -> web.Response:
    """A TwiML answer: empty ``<Response/>`` (send nothing) or one ``<Message>``."""
    if not reply:
        return web.Response(text=_EMPTY_TWIML, content_type="text/xml")
    response = MessagingResponse()
    response.message(reply)
    return web.Response(text=str(response), content_type="text/xml")


def inbound_message(
    payload: InboundPayload, fetched: Sequence[Fetched], *, queue: str | None
) -> InboundMessage:
    """The channel-neutral message for one parsed Twilio inbound body."""
    metadata: dict[str, Any] = dict(payload.extra)
    if fetched:
        metadata["media"] = [f.note for f in fetched]
    text = payload.body
    if payload.location is not None:
        loc = payload.location
        metadata["location"] = {
            "latitude": loc.latitude,
            "longitude": loc.longitude,
            "address": loc.address,
            "label": loc.label,
        }
        # A shared location has no Body; give the agent something readable.
        text = text or loc.describe()
    if payload.button is not None:
        metadata["button"] = {
            "payload": payload.button.payload,
            "text": payload.button.text,
            "type": payload.button.type,
        }
        if payload.button.handoff:
            metadata["handoff"] = True
        text = text or payload.button.text or ""
    keyword = payload.keyword
    if keyword is not None:
        metadata["opt_out"] = keyword
    return InboundMessage(
        channel=payload.channel,
        sender_kind="phone",
        sender=payload.sender,
        provider_id=payload.message_sid,
        text=text,
        display_name=payload.profile_name,
        recipient=payload.to or None,
        thread_refs=(payload.replied_to_sid,) if payload.replied_to_sid else (),
        attachments=tuple(f.attachment for f in fetched),
        queue=queue,
        metadata=metadata,
    )


class TwilioWebhook:
    """The two messaging webhooks, bound to the hub port and the shared HTTP client."""

    def __init__(
        self, *, settings: Any, hub: HubPort, http: Callable[[], aiohttp.ClientSession]
    ) -> None:
        self.hub = hub
        self.http = http
        self.public_url: str = str(settings.public_url).rstrip("/")
        self.account_sid: str = settings.twilio_account_sid
        self.max_body_bytes: int = settings.max_body_bytes
        self.auto_reply: str = settings.twilio_auto_reply
        self.queue: str | None = settings.twilio_queue or None
        token = settings.twilio_auth_token.get_secret_value()
        self.validator = RequestValidator(token)
        self.media = MediaFetcher(
            account_sid=self.account_sid,
            auth_token=token,
            api_base=settings.twilio_api_base,
            max_bytes=settings.attachment_max_bytes,
            timeout_s=MEDIA_TIMEOUT_S,
        )

    def routes(self) -> list[web.RouteDef]:
        return [web.post(PATH_INBOUND, self.inbound), web.post(PATH_STATUS, self.status)]

    # ------------------------------------------------------------------ authentication
    async def authentic_form(self, request: web.Request) -> dict[str, str]:
        """The request's parameters once size, signature and account check out (else 4xx)."""
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise web.HTTPRequestEntityTooLarge(max_size=self.max_body_bytes, actual_size=length)
        if request.content_type != FORM_CONTENT_TYPE:
            raise MalformedPayload(f"expected {FORM_CONTENT_TYPE}, got {request.content_type!r}")
        try:
            posted = await request.post()
        except (ValueError, UnicodeDecodeError) as err:
            raise MalformedPayload(f"unreadable form body: {err}") from None
        form: MultiDict[str] = MultiDict((k, v) for k, v in posted.items() if isinstance(v, str))
        signature = request.headers.get(SIGNATURE_HEADER, "")
        # Twilio signs the URL it called (our public URL), not what a proxy handed us.
        url = self.public_url + request.raw_path
        if not signature:
            logger.warning("Twilio webhook %s without %s: 403", request.path, SIGNATURE_HEADER)
            raise web.HTTPForbidden(reason="missing signature")
        if not self.validator.validate(url, MultiDictProxy(form), signature):
            logger.warning("Twilio webhook %s with a wrong signature: 403", request.path)
            raise web.HTTPForbidden(reason="bad signature")
        account = form.get("AccountSid", "")
        if account != self.account_sid:
            logger.warning("Twilio webhook %s for another account %r: 403", request.path, account)
            raise web.HTTPForbidden(reason="wrong account")
        flat: dict[str, str] = {}
        for key, value in form.items():
            flat.setdefault(key, value)
        return flat

    # ------------------------------------------------------------------ inbound
    async def inbound(self, request: web.Request) -> web.Response:
        """``POST /webhooks/twilio/messaging``: store the message, answer TwiML."""
        form = await self.authentic_form(request)
        payload = parse_inbound(form)
        return twiml(await self.handle_inbound(payload))

    async def handle_inbound(self, payload: InboundPayload) -> str | None:
        """Persist one inbound message; the TwiML reply text, if any."""
        keyword = payload.keyword
        fetched = await self.media.fetch_all(self.http(), payload.media)
        result = await self.hub.ingest(inbound_message(payload, fetched, queue=self.queue))
        if keyword in ("stop", "start"):
            # Also on a redelivery: if we crashed between ingest and this call, Twilio's retry
            # (a duplicate for ingest) must still record the opt-out. Setting it twice is a no-op.
            await self.hub.set_opt_out(
                kind="phone",
                address=payload.sender,
                channel=payload.channel,
                opted_out=keyword == "stop",
            )
        if result.duplicate:
            logger.info("Twilio redelivered %s; already stored", payload.message_sid)
            return None
        if keyword is not None:
            # Twilio (Advanced Opt-Out) or the carrier confirms keywords; never add a reply.
            return None
        if not self.auto_reply or not result.opened or result.conversation_id is None:
            return None
        recorded = await self.hub.record_auto_reply(
            conversation_id=result.conversation_id, text=self.auto_reply, send=False
        )
        return self.auto_reply if recorded else None

    # ------------------------------------------------------------------ status
    async def status(self, request: web.Request) -> web.Response:
        """``POST /webhooks/twilio/messaging/status``: move the delivery status forward."""
        form = await self.authentic_form(request)
        await self.handle_status(form)
        return web.Response(status=204)

    async def handle_status(self, form: Mapping[str, str]) -> None:
        """Apply one delivery report (the hub keeps statuses from moving backwards)."""
        payload = parse_status(form)
        status = TWILIO_STATUS.get(payload.status)
        if status is None:
            logger.info("Twilio status %r for %s ignored", payload.status, payload.message_sid)
            return
        error_message = payload.error_message
        if payload.error_code and not error_message:
            error_message = ERROR_MESSAGES.get(payload.error_code)
        if payload.status == "canceled" and not error_message:
            error_message = "scheduled message canceled"
        metadata = {k: v for k, v in payload.extra.items() if k not in ("AccountSid",)}
        await self.hub.update_status(
            StatusUpdate(
                channel=payload.channel,
                provider_id=payload.message_sid,
                status=status,
                error_code=payload.error_code,
                error_message=error_message,
                metadata=metadata,
            )
        )
        if payload.error_code == ERROR_UNSUBSCRIBED and payload.to:
            # Twilio refuses this recipient until they text START; the console should too.
            await self.hub.set_opt_out(
                kind="phone", address=payload.to, channel=payload.channel, opted_out=True
            )
