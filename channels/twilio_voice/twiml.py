"""The call flow's TwiML, one builder per step; no I/O here (the webhooks decide, these say).

Each builder answers only with verbs Twilio allows where the document runs: a queue's wait
music (``waitUrl``) may use Play, Say, Pause, Redirect, Leave, Hangup and Gather; the
whisper played to a caller being connected only Play, Say, Pause and Redirect.
"""

from __future__ import annotations

from urllib.parse import urlencode

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from channels.twilio_voice.const import (
    LANGUAGE_NAMES,
    PATH_AGENT_DIAL_ACTION,
    PATH_ENQUEUE_ACTION,
    PATH_GATHER,
    PATH_QUEUE_WAIT,
    PATH_QUEUE_WHISPER,
    PATH_TRANSCRIPTION,
    PATH_VOICEMAIL,
    PROMPTS,
    QUEUE_PREFIX,
    SAY_LANGUAGE,
)
from channels.twilio_voice.settings import VoiceSettings
from contract.voice import CallOrder, QueuePlace

# Verbs allowed per context (channels.md §2.3), checked by the tests on every answer.
WAIT_VERBS = frozenset({"Play", "Say", "Pause", "Hangup", "Redirect", "Leave", "Gather"})
WHISPER_VERBS = frozenset({"Play", "Say", "Pause", "Redirect"})


def queue_name(call_sid: str) -> str:
    """The provider queue holding one caller."""
    return QUEUE_PREFIX + call_sid


class Flow:
    """Builds the flow's documents for one configuration and public URL."""

    def __init__(self, settings: VoiceSettings, public_url: str) -> None:
        self.settings = settings
        self.public_url = public_url.rstrip("/")

    # ------------------------------------------------------------------ helpers
    def url(self, path: str, **query: str) -> str:
        """An absolute URL of ours (Twilio signs exactly what it calls)."""
        qs = urlencode(sorted((k, v) for k, v in query.items() if v != ""))
        return f"{self.public_url}{path}{'?' + qs if qs else ''}"

    def text(self, language: str, prompt: str, **values: object) -> str:
        prompts = PROMPTS.get(language) or PROMPTS["en"]
        return prompts[prompt].format(**values)

    def say(
        self, node: VoiceResponse | Gather, language: str, prompt: str, **values: object
    ) -> None:
        node.say(
            self.text(language, prompt, **values), language=SAY_LANGUAGE.get(language, "en-US")
        )

    def _gather(self, response: VoiceResponse, *, action: str, language: str, hints: str) -> Gather:
        return response.gather(
            input="dtmf speech" if hints else "dtmf",
            num_digits=1,
            timeout=5,
            action=action,
            method="POST",
            action_on_empty_result=True,
            language=SAY_LANGUAGE.get(language, "en-US"),
            hints=hints or None,
        )

    # ------------------------------------------------------------------ menus
    def greeting(self, *, name: str, language: str, open_now: bool, choose_language: bool) -> str:
        """The first answer: welcome, then the language menu, the main menu or (closed)
        straight to voicemail."""
        response = VoiceResponse()
        if name:
            self.say(response, language, "welcome_back", name=name)
        else:
            self.say(response, language, "welcome")
        if not open_now:
            self.say(response, language, "closed")
            self._record(response, language)
            return str(response)
        if choose_language:
            self._language_menu(response, tries=0)
        else:
            self._main_menu(response, language, tries=0)
        return str(response)

    def language_menu(self, *, tries: int, sorry: bool) -> str:
        response = VoiceResponse()
        if sorry:
            self.say(response, self.settings.languages[0], "sorry")
        self._language_menu(response, tries=tries)
        return str(response)

    def _language_menu(self, response: VoiceResponse, *, tries: int) -> None:
        gather = self._gather(
            response,
            action=self.url(PATH_GATHER, menu="lang", tries=str(tries)),
            language=self.settings.languages[0],
            hints=", ".join(LANGUAGE_NAMES.get(lang, lang) for lang in self.settings.languages),
        )
        for i, lang in enumerate(self.settings.languages, start=1):
            self.say(gather, lang, "choose_language", key=i)

    def main_menu(self, language: str, *, tries: int, sorry: bool) -> str:
        response = VoiceResponse()
        if sorry:
            self.say(response, language, "sorry")
        self._main_menu(response, language, tries=tries)
        return str(response)

    def _main_menu(self, response: VoiceResponse, language: str, *, tries: int) -> None:
        options = self.settings.options
        hints = ", ".join(w for o in options for w in (*o.words, o.label(language)))
        gather = self._gather(
            response,
            action=self.url(PATH_GATHER, menu="main", lang=language, tries=str(tries)),
            language=language,
            hints=hints,
        )
        for option in options:
            label = option.label(language)
            self.say(gather, language, "option", label=label, key=option.key, word=label)

    # ------------------------------------------------------------------ queue
    def enqueue(self, call_sid: str, language: str) -> str:
        """Into the caller's own provider queue, with our wait loop and outcome URL."""
        response = VoiceResponse()
        response.enqueue(
            queue_name(call_sid),
            action=self.url(PATH_ENQUEUE_ACTION, lang=language),
            method="POST",
            wait_url=self.url(PATH_QUEUE_WAIT, lang=language),
            wait_url_method="POST",
        )
        return str(response)

    def wait(self, place: QueuePlace, language: str, *, can_call_back: bool) -> str:
        """One turn of the wait loop (Twilio asks again when it runs out): position and
        expected wait, the keys that leave the queue, then hold music."""
        response = VoiceResponse()
        if place.state in ("connecting", "talking"):
            self.say(response, language, "connecting")
            response.pause(length=2)
            return str(response)
        if place.state == "closed":
            # Someone closed the call's conversation: never leave the caller on hold music.
            self.say(response, language, "error")
            response.hangup()
            return str(response)
        gather = response.gather(
            input="dtmf",
            num_digits=1,
            timeout=1,
            action=self.url(PATH_GATHER, menu="queue", lang=language),
            method="POST",
        )
        if place.position > 0:
            self.say(
                gather, language, "position", position=place.position, ahead=place.position - 1
            )
        if place.expected_wait_s is not None and place.expected_wait_s >= 90:
            minutes = round(place.expected_wait_s / 60)
            self.say(gather, language, "wait_minutes", minutes=minutes)
        elif place.expected_wait_s is not None:
            self.say(gather, language, "wait_short")
        keys = {"voicemail": self.settings.voicemail_key, "callback": self.settings.callback_key}
        self.say(
            gather, language, "queue_options" if can_call_back else "queue_voicemail_only", **keys
        )
        if self.settings.hold_music_url:
            gather.play(self.settings.hold_music_url)
        else:
            gather.pause(length=self.settings.announce_every_s)
        return str(response)

    def back_to_waiting(self, language: str, *, sorry: bool) -> str:
        """A key pressed while waiting that means nothing: keep waiting (wait context)."""
        response = VoiceResponse()
        if sorry:
            self.say(response, language, "sorry")
        response.redirect(self.url(PATH_QUEUE_WAIT, lang=language), method="POST")
        return str(response)

    def leave(self, language: str) -> str:
        """Out of the queue (wait context); the Enqueue action decides what follows."""
        response = VoiceResponse()
        response.leave()
        return str(response)

    def whisper(self, agent_name: str, language: str) -> str:
        """Played to the caller just before the agent is connected."""
        response = VoiceResponse()
        if agent_name:
            self.say(response, language, "connecting_to", agent=agent_name.split()[0])
        else:
            self.say(response, language, "connecting")
        return str(response)

    # ------------------------------------------------------------------ endings
    def survey(self, language: str) -> str:
        """The post-call survey: one key, 1-5; no key is a goodbye."""
        response = VoiceResponse()
        gather = self._gather(
            response,
            action=self.url(PATH_GATHER, menu="survey", lang=language),
            language=language,
            hints="",
        )
        self.say(gather, language, "survey")
        return str(response)

    def voicemail(self, language: str) -> str:
        response = VoiceResponse()
        self.say(response, language, "voicemail")
        self._record(response, language)
        return str(response)

    def _record(self, response: VoiceResponse, language: str) -> None:
        response.record(
            action=self.url(PATH_VOICEMAIL, lang=language),
            method="POST",
            max_length=self.settings.voicemail_max_s,
            finish_on_key="#",
            play_beep=True,
            transcribe=True,
            transcribe_callback=self.url(PATH_TRANSCRIPTION, lang=language),
        )
        # Nothing recorded (silence): Twilio continues here.
        self.say(response, language, "goodbye")
        response.hangup()

    def say_and_hang_up(self, language: str, prompt: str) -> str:
        response = VoiceResponse()
        self.say(response, language, prompt)
        response.hangup()
        return str(response)

    @staticmethod
    def hang_up() -> str:
        response = VoiceResponse()
        response.hangup()
        return str(response)

    @staticmethod
    def empty() -> str:
        return str(VoiceResponse())

    # ------------------------------------------------------------------ agent legs
    def agent_leg(self, order: CallOrder) -> str:
        """The TwiML run on the agent's phone once they pick up: who is calling, then
        connect to the waiting caller's queue, or dial the customer back."""
        response = VoiceResponse()
        language = order.language if order.language in PROMPTS else "en"
        action = self.url(PATH_AGENT_DIAL_ACTION, call=order.call_sid)
        if order.kind == "queued":
            response.say(order.announce, language=SAY_LANGUAGE.get(language, "en-US"))
            dial = Dial(action=action, method="POST", timeout=15)
            dial.queue(
                queue_name(order.call_sid),
                url=self.url(PATH_QUEUE_WHISPER, lang=language),
                method="POST",
            )
        else:
            self.say(response, language, "announce_callback", name=order.customer_name)
            dial = Dial(action=action, method="POST", timeout=30, caller_id=self.settings.number)
            dial.number(order.customer_number)
        response.append(dial)
        return str(response)
