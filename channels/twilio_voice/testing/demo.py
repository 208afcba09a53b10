"""Phone calls in ``make run``: a local Twilio (Calls API, queues, TwiML) and simulated callers.

Callers pick a language and an option, then wait; most stay until an agent answers, some
hang up, leave a voicemail or ask for a callback, so the dashboard shows calls waiting,
answered and abandoned. Agents' phones (the demo gives each a number) answer at once;
customers called back answer and talk a little.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from channels.twilio_voice.const import PATH_INCOMING, PATH_STATUS, SETTINGS_SECTION
from channels.twilio_voice.testing.engine import Callee, Caller, RealClock, Script, Speech
from channels.twilio_voice.testing.fake_api import FakeTwilioVoice
from contract.testing import free_port

ACCOUNT_SID = "AC" + "e" * 32
AUTH_TOKEN = "demo-twilio-voice-token"  # noqa: S105 - the local fake's own credential
NUMBER = "+15005550006"
# The running fake, for ``contact`` (one demo per process).
_fake: list[FakeTwilioVoice] = []


def overrides() -> dict[str, object]:
    """The phone channel's section, pointing at the local Twilio."""
    return {
        "channels": {
            SETTINGS_SECTION: {
                "account_sid": ACCOUNT_SID,
                "auth_token": AUTH_TOKEN,
                "number": NUMBER,
                "api_base": f"http://127.0.0.1:{free_port()}",
                # Nothing on this machine serves audio; Twilio would fetch the music.
                "hold_music_url": "http://127.0.0.1:9/hold-music.mp3",
                "announce_every_s": 20,
            }
        }
    }


def _public_url(settings: Any) -> str:
    return str(settings.public_url).rstrip("/")


@asynccontextmanager
async def provider(settings: Any) -> AsyncIterator[None]:
    """The local Twilio for as long as the demo runs."""
    section = settings.channels[SETTINGS_SECTION]
    public = _public_url(settings)
    fake = FakeTwilioVoice(
        account_sid=section["account_sid"],
        auth_token=section["auth_token"],
        voice_url=public + PATH_INCOMING,
        status_url=public + PATH_STATUS,
        number=section["number"],
        clock=RealClock(),
    )
    # Real time: each announcement and each turn of hold music takes a while.
    fake.say_s = 3.0
    fake.play_s = 20.0
    fake.callee = _callee
    await fake.start(port=urlsplit(section["api_base"]).port or 0)
    _fake.append(fake)
    try:
        yield
    finally:
        _fake.remove(fake)
        await fake.stop()


def _callee(number: str) -> Callee:
    """Agents' phones answer and stay on; customers called back talk for a minute or so."""
    if number.startswith("+1555"):
        return Callee()
    rng = random.Random()  # noqa: S311 - demo behaviour
    if rng.random() < 0.2:
        return Callee(answer="no-answer")
    return Callee(talk_s=rng.uniform(20, 90), ring_s=rng.uniform(2, 8))


def script(rng: random.Random) -> Script:
    """One caller's behaviour: menus, then stay, hang up, voicemail or callback."""
    language = rng.choice(["1", "1", "1", "2"])
    options: list[str | Speech] = ["1", "2", "3", Speech("billing"), Speech("invoice")]
    option = rng.choice(options)
    roll = rng.random()
    if roll < 0.55:
        return Script(inputs=[language, option], talk_s=rng.uniform(30, 150))
    if roll < 0.8:
        return Script(inputs=[language, option], abandon_after_s=rng.uniform(15, 120))
    if roll < 0.9:
        return Script(
            inputs=[language, option],
            press_in_queue=(rng.uniform(10, 40), "1"),
            record_s=rng.uniform(5, 20),
            transcript=rng.choice(
                [
                    "Hi, this is about my last invoice, please call me back.",
                    "My router stopped working this morning, can someone help?",
                    "I would like to change my delivery address.",
                ]
            ),
        )
    return Script(inputs=[language, option], press_in_queue=(rng.uniform(10, 40), "2"))


async def contact(
    session: aiohttp.ClientSession, settings: Any, rng: random.Random, known: Sequence[str]
) -> None:
    """One simulated call: a known customer's number half the time, so the agent sees
    their texts and mails next to the call."""
    if not _fake:
        return
    phones = [k for k in known if k.startswith("+")]
    if phones and rng.random() < 0.5:
        number = rng.choice(phones)
    else:
        number = f"+4477009{rng.randrange(10**5):05d}"
    await _fake[0].place_call(Caller(number=number, script=script(rng)))
