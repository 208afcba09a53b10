"""The voice webhooks: every request signed by Twilio, every answer TwiML.

``incoming`` (the number's Voice URL) greets and runs the menus; ``gather`` takes menu input
(``?menu=lang|main|queue``); ``queue-wait`` is the Enqueue wait loop; ``enqueue-action`` says
how the caller left the queue; ``queue-whisper`` runs on the caller's leg as an agent is
connected; ``agent-dial-action`` ends an agent's leg; ``voicemail`` and ``transcription``
take the recording; ``status`` takes status callbacks (the number's, and ``?leg=agent`` for
the legs we place). What the hub must know goes to it as facts (``contract.voice``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from twilio.request_validator import RequestValidator

from channels.twilio_voice.const import (
    CALL_SID_PATTERN,
    CHANNEL_CALLBACK,
    CHANNEL_VOICE,
    CHANNEL_VOICEMAIL,
    FORM_CONTENT_TYPE,
    LANGUAGE_NAMES,
    MENU_TRIES,
    MENUS,
    PATH_AGENT_DIAL_ACTION,
    PATH_ENQUEUE_ACTION,
    PATH_GATHER,
    PATH_INCOMING,
    PATH_QUEUE_WAIT,
    PATH_QUEUE_WHISPER,
    PATH_STATUS,
    PATH_TRANSCRIPTION,
    PATH_VOICEMAIL,
    SIGNATURE_HEADER,
)
from channels.twilio_voice.settings import VoiceSettings
from channels.twilio_voice.twiml import Flow
from contract.channel import Attachment, HubPort, InboundMessage
from contract.voice import CallFact, CallPort, EnqueueRequest

logger = logging.getLogger(__name__)

_CALL_SID = re.compile(CALL_SID_PATTERN)
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# Our own callback keys ("cb…") as well as Twilio's call sids.
_CALL_REF = re.compile(rf"^(?:{CALL_SID_PATTERN}|cb\d{{1,18}}x\d{{1,6}})$")


class VoiceHub(HubPort, CallPort, Protocol):
    """The hub as the voice adapter sees it (both ports)."""


def twiml(document: str) -> web.Response:
    return web.Response(text=document, content_type="text/xml")


def _int(value: str | None) -> int | None:
    try:
        return max(0, int(value)) if value not in (None, "") else None
    except ValueError:
        return None


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class VoiceWebhooks:
    """The flow's handlers, bound to the hub and the channel's settings."""

    def __init__(
        self, *, settings: VoiceSettings, hub: VoiceHub, public_url: str, max_body_bytes: int
    ) -> None:
        self.settings = settings
        self.hub = hub
        self.public_url = public_url.rstrip("/")
        self.max_body_bytes = max_body_bytes
        self.validator = RequestValidator(settings.auth_token.get_secret_value())
        self.flow = Flow(settings, public_url)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(PATH_INCOMING, self.incoming),
            web.post(PATH_STATUS, self.status),
            web.post(PATH_GATHER, self.gather),
            web.post(PATH_QUEUE_WAIT, self.queue_wait),
            web.post(PATH_ENQUEUE_ACTION, self.enqueue_action),
            web.post(PATH_QUEUE_WHISPER, self.queue_whisper),
            web.post(PATH_AGENT_DIAL_ACTION, self.agent_dial_action),
            web.post(PATH_VOICEMAIL, self.voicemail),
            web.post(PATH_TRANSCRIPTION, self.transcription),
        ]

    # ------------------------------------------------------------------ authentication
    async def form(self, request: web.Request) -> dict[str, str]:
        """The signed parameters (403 unsigned or for another account, 400 malformed)."""
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise web.HTTPRequestEntityTooLarge(max_size=self.max_body_bytes, actual_size=length)
        if request.content_type != FORM_CONTENT_TYPE:
            raise web.HTTPBadRequest(text=f"expected {FORM_CONTENT_TYPE}")
        try:
            posted = await request.post()
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPBadRequest(text="unreadable form body") from None
        form: MultiDict[str] = MultiDict((k, v) for k, v in posted.items() if isinstance(v, str))
        signature = request.headers.get(SIGNATURE_HEADER, "")
        url = self.public_url + request.raw_path  # what Twilio called and signed
        if not signature or not self.validator.validate(url, MultiDictProxy(form), signature):
            logger.warning("Twilio voice webhook %s: missing or wrong signature", request.path)
            raise web.HTTPForbidden(reason="bad signature")
        if form.get("AccountSid", "") != self.settings.account_sid:
            raise web.HTTPForbidden(reason="wrong account")
        flat: dict[str, str] = {}
        for key, value in form.items():
            flat.setdefault(key, value)
        if not _CALL_SID.match(flat.get("CallSid", "")):
            raise web.HTTPBadRequest(text="missing or malformed CallSid")
        return flat

    def language(self, request: web.Request) -> str:
        lang = request.query.get("lang", "")
        return lang if lang in self.settings.languages else self.settings.languages[0]

    @staticmethod
    def call_ref(request: web.Request) -> str:
        ref = request.query.get("call", "")
        if not _CALL_REF.match(ref):
            raise web.HTTPBadRequest(text="missing or malformed call reference")
        return ref

    # ------------------------------------------------------------------ menus
    async def incoming(self, request: web.Request) -> web.Response:
        """``incoming``: who calls; greet; language or main menu (or voicemail when closed)."""
        form = await self.form(request)
        caller = await self.hub.call_started(
            channel=CHANNEL_VOICE,
            call_sid=form["CallSid"],
            from_number=form.get("From", ""),
            to_number=form.get("To", ""),
        )
        languages = self.settings.languages
        known_language = caller.language if caller.language in languages else ""
        language = known_language or languages[0]
        return twiml(
            self.flow.greeting(
                name=caller.name if caller.known else "",
                language=language,
                open_now=self.settings.is_open(datetime.now(UTC)),
                choose_language=len(languages) > 1 and not known_language,
            )
        )

    async def gather(self, request: web.Request) -> web.Response:
        """``gather?menu=…``: a menu answer (digits or speech)."""
        form = await self.form(request)
        menu = request.query.get("menu", "")
        if menu not in MENUS:
            raise web.HTTPBadRequest(text=f"unknown menu {menu[:20]!r}")
        tries = _int(request.query.get("tries")) or 0
        digits = form.get("Digits", "")
        speech = form.get("SpeechResult", "")
        if menu == "lang":
            return twiml(await self._language_answer(form, digits, speech, tries))
        language = self.language(request)
        if menu == "main":
            return twiml(await self._main_answer(form, language, digits, speech, tries))
        if menu == "survey":
            return twiml(await self._survey_answer(form, language, digits))
        return twiml(await self._queue_keys(form, language, digits))

    async def _survey_answer(self, form: Mapping[str, str], language: str, digits: str) -> str:
        """The caller's rating after the agent hung up: stored as the call's CSAT (once per
        call: Twilio's retry of this request is the same provider id)."""
        if digits not in ("1", "2", "3", "4", "5"):
            return self.flow.say_and_hang_up(language, "goodbye")
        await self.hub.ingest(
            InboundMessage(
                channel=CHANNEL_VOICE,
                sender_kind="phone",
                sender=form.get("From", ""),
                provider_id=f"{form['CallSid']}:csat",
                text=f"CSAT {digits}/5",
                kind="csat",
                metadata={"score": int(digits), "how": "phone"},
            )
        )
        return self.flow.say_and_hang_up(language, "survey_thanks")

    async def _language_answer(
        self, form: Mapping[str, str], digits: str, speech: str, tries: int
    ) -> str:
        languages = self.settings.languages
        chosen = ""
        if digits.isdecimal() and 1 <= int(digits) <= len(languages):
            chosen = languages[int(digits) - 1]
        elif speech:
            text = speech.casefold()
            chosen = next(
                (
                    lang
                    for lang in languages
                    if lang in text or LANGUAGE_NAMES.get(lang, "\0").casefold() in text
                ),
                "",
            )
        if not chosen and tries + 1 < MENU_TRIES:
            return self.flow.language_menu(tries=tries + 1, sorry=True)
        return self.flow.main_menu(chosen or languages[0], tries=0, sorry=False)

    async def _main_answer(
        self, form: Mapping[str, str], language: str, digits: str, speech: str, tries: int
    ) -> str:
        option = self.settings.option(digits[:1]) if digits else None
        if option is None and speech:
            option = next((o for o in self.settings.options if o.heard(speech)), None)
        if option is None and tries + 1 < MENU_TRIES:
            return self.flow.main_menu(language, tries=tries + 1, sorry=True)
        option = option or self.settings.options[0]
        choices = (
            *((_language_label(language),) if len(self.settings.languages) > 1 else ()),
            option.label("en"),
        )
        await self.hub.call_enqueued(
            EnqueueRequest(
                channel=CHANNEL_VOICE,
                call_sid=form["CallSid"],
                from_number=form.get("From", ""),
                to_number=form.get("To", ""),
                queue=option.queue,
                language=language,
                choices=choices,
                priority=option.priority,
                callback_channel=CHANNEL_CALLBACK,
            )
        )
        return self.flow.enqueue(form["CallSid"], language)

    async def _queue_keys(self, form: Mapping[str, str], language: str, digits: str) -> str:
        """A key pressed while waiting (wait context: Leave, Redirect, Say only)."""
        wanted = {
            self.settings.voicemail_key: "voicemail",
            self.settings.callback_key: "callback",
        }.get(digits[:1], "")
        if wanted == "callback" and not _E164.match(form.get("From", "")):
            wanted = ""  # a withheld number cannot be called back
        if not wanted:
            return self.flow.back_to_waiting(language, sorry=bool(digits))
        view = await self.hub.call_fact(
            CallFact(channel=CHANNEL_VOICE, call_sid=form["CallSid"], kind="exit", result=wanted)
        )
        if view.exit != wanted:  # no longer waiting (being connected): keep the caller on
            return self.flow.back_to_waiting(language, sorry=False)
        return self.flow.leave(language)

    # ------------------------------------------------------------------ queue
    async def queue_wait(self, request: web.Request) -> web.Response:
        """``queue-wait``: announce the position and expected wait, then hold music."""
        form = await self.form(request)
        place = await self.hub.queue_place(channel=CHANNEL_VOICE, call_sid=form["CallSid"])
        can_call_back = bool(_E164.match(form.get("From", "")))
        return twiml(self.flow.wait(place, self.language(request), can_call_back=can_call_back))

    async def enqueue_action(self, request: web.Request) -> web.Response:
        """``enqueue-action``: the caller left the queue; what follows depends on why."""
        form = await self.form(request)
        language = self.language(request)
        result = form.get("QueueResult", "")
        view = await self.hub.call_fact(
            CallFact(
                channel=CHANNEL_VOICE,
                call_sid=form["CallSid"],
                kind="queue_result",
                result=result,
                wait_s=_int(form.get("QueueTime")),
            )
        )
        if result == "bridged":
            # The agent hung up first and the caller is still here: ask for a rating.
            if self.settings.survey:
                return twiml(self.flow.survey(language))
            return twiml(self.flow.say_and_hang_up(language, "goodbye"))
        if result == "leave" and view.exit == "voicemail":
            return twiml(self.flow.voicemail(language))
        if result == "leave" and view.exit == "callback":
            return twiml(self.flow.say_and_hang_up(language, "callback"))
        if result in ("error", "system-error", "queue-full"):
            return twiml(self.flow.voicemail(language))
        return twiml(self.flow.empty())

    async def queue_whisper(self, request: web.Request) -> web.Response:
        """``queue-whisper``: the caller is being connected to the agent who dialed them."""
        form = await self.form(request)
        await self.hub.call_fact(
            CallFact(
                channel=CHANNEL_VOICE,
                call_sid=form["CallSid"],
                kind="connecting",
                wait_s=_int(form.get("QueueTime")),
                leg_sid=form.get("DequeingCallSid", "")[:64],
            )
        )
        place = await self.hub.queue_place(channel=CHANNEL_VOICE, call_sid=form["CallSid"])
        return twiml(self.flow.whisper(place.agent_name, self.language(request)))

    async def agent_dial_action(self, request: web.Request) -> web.Response:
        """``agent-dial-action?call=…``: the agent's dial ended (talk time, or no answer)."""
        form = await self.form(request)
        bridged = form.get("DialBridged")
        await self.hub.call_fact(
            CallFact(
                channel=CHANNEL_VOICE,
                call_sid=self.call_ref(request),
                kind="dial_result",
                leg="agent",
                leg_sid=form["CallSid"],
                result=form.get("DialCallStatus", ""),
                talk_s=_int(form.get("DialCallDuration")),
                bridged=None if bridged is None else bridged == "true",
            )
        )
        return twiml(self.flow.hang_up())

    # ------------------------------------------------------------------ voicemail
    async def voicemail(self, request: web.Request) -> web.Response:
        """``voicemail``: a recording finished; it becomes a message others can answer."""
        form = await self.form(request)
        language = self.language(request)
        sid = form.get("RecordingSid", "")
        url = form.get("RecordingUrl", "")
        duration = _int(form.get("RecordingDuration")) or 0
        if not re.fullmatch(r"RE[0-9a-f]{32}", sid) or not url or duration <= 0:
            return twiml(self.flow.say_and_hang_up(language, "goodbye"))
        view = await self.hub.call_fact(
            CallFact(
                channel=CHANNEL_VOICE,
                call_sid=form["CallSid"],
                kind="recording",
                recording_sid=sid,
                recording_duration_s=duration,
            )
        )
        await self.hub.ingest(
            InboundMessage(
                channel=CHANNEL_VOICEMAIL,
                sender_kind="phone" if _E164.match(form.get("From", "")) else "withheld",
                sender=form.get("From", "") or form["CallSid"],
                provider_id=sid,
                text=f"Voicemail, {duration} s (transcribing…)",
                recipient=form.get("To") or None,
                threading="explicit",
                queue=view.queue or None,
                language=view.language or language,
                attachments=(
                    Attachment(
                        filename=f"voicemail-{sid}.wav",
                        content_type="audio/wav",
                        state="pending",
                        source=url,
                    ),
                ),
                metadata={"call": {"sid": form["CallSid"], "recording_duration_s": duration}},
            )
        )
        return twiml(self.flow.say_and_hang_up(language, "goodbye"))

    async def transcription(self, request: web.Request) -> web.Response:
        """``transcription``: the voicemail's text replaces its placeholder."""
        form = await self.form(request)
        sid = form.get("RecordingSid", "")
        if not re.fullmatch(r"RE[0-9a-f]{32}", sid):
            raise web.HTTPBadRequest(text="missing or malformed RecordingSid")
        status = form.get("TranscriptionStatus", "")
        text = form.get("TranscriptionText", "").strip()
        if status == "completed" and text:
            body = f"Voicemail: {text}"
        else:
            body = "Voicemail (no transcription: listen to the recording)"
        await self.hub.ingest(
            InboundMessage(
                channel=CHANNEL_VOICEMAIL,
                sender_kind="phone",
                sender=form.get("From", "") or form["CallSid"],
                provider_id=sid,
                text=body,
                kind="edit",
            )
        )
        return twiml(self.flow.empty())

    # ------------------------------------------------------------------ status
    async def status(self, request: web.Request) -> web.Response:
        """``status``: call progress of the caller's leg, or ``?leg=agent&call=…`` ours."""
        form = await self.form(request)
        agent_leg = request.query.get("leg") == "agent"
        fact: dict[str, Any] = {
            "channel": CHANNEL_VOICE,
            "kind": "status",
            "status": form.get("CallStatus", "")[:20],
            "duration_s": _int(form.get("CallDuration")),
            "sequence": _int(form.get("SequenceNumber")),
            "occurred_at": _when(form.get("Timestamp")),
        }
        if agent_leg:
            fact.update(call_sid=self.call_ref(request), leg="agent", leg_sid=form["CallSid"])
        else:
            fact.update(call_sid=form["CallSid"])
        await self.hub.call_fact(CallFact(**fact))
        return twiml(self.flow.empty())


def _language_label(language: str) -> str:
    return LANGUAGE_NAMES.get(language, language)
