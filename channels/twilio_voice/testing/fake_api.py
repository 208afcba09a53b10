"""A local fake of Twilio's Voice REST API (Calls, Recordings) around the call engine.

``POST Calls.json`` starts an outbound-api leg that the engine rings, answers and runs;
``POST Calls/{sid}.json`` hangs up or redirects a live call; ``GET Recordings/{sid}`` serves
a small valid WAV (or MP3 / JSON) for every <Record> the engine made. Basic auth
(AccountSid:AuthToken) guards every route, as Twilio's does.
"""

from __future__ import annotations

import base64
import binascii
import io
import secrets
import wave
from collections import deque
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from channels.twilio_voice.testing.engine import (
    API_VERSION,
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_NUMBER,
    CallEngine,
    Clock,
    Instructions,
    Leg,
    Recording,
    TwimlError,
    parse_twiml,
)

ACCOUNT_PATH = "/" + API_VERSION + "/Accounts/{account}"
PROGRESS_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})
WAV_RATE = 8000
MAX_WAV_SECONDS = 2


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


def wav_bytes(seconds: int) -> bytes:
    """A valid mono 8 kHz 16-bit WAV of silence (at most two seconds: it is a stand-in)."""
    frames = WAV_RATE * max(min(seconds, MAX_WAV_SECONDS), 1)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(WAV_RATE)
        out.writeframes(b"\x00\x00" * frames)
    return buffer.getvalue()


def mp3_bytes(seconds: int) -> bytes:
    """Silent MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz, mono), about ``seconds`` long.

    A frame header followed by zero side information and no main data decodes as silence,
    so no encoder is needed.
    """
    header = bytes((0xFF, 0xFB, 0x90, 0xC0))
    frame = header + bytes(144 * 128000 // 44100 - len(header))
    count = max(min(seconds, MAX_WAV_SECONDS), 1) * 39  # 1152 samples a frame at 44.1 kHz
    return frame * count


class FakeTwilioVoice(CallEngine):
    """The call engine plus Twilio's REST face; ``created`` lists every Calls.json create."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        voice_url: str,
        status_url: str | None = None,
        number: str = DEFAULT_NUMBER,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            account_sid=account_sid,
            auth_token=auth_token,
            voice_url=voice_url,
            status_url=status_url,
            number=number,
            clock=clock,
        )
        self.created: list[dict[str, list[str] | str]] = []
        self._failures: deque[tuple[int, int]] = deque()
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self.app = web.Application()
        calls = ACCOUNT_PATH + "/Calls"
        self.app.router.add_post(calls + ".json", self._create_call)
        self.app.router.add_get(calls + "/{call}.json", self._get_call)
        self.app.router.add_post(calls + "/{call}.json", self._update_call)
        self.app.router.add_get(ACCOUNT_PATH + "/Recordings/{recording}", self._recording)

    # ------------------------------------------------------------------ lifecycle
    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1:``port`` (0: any free port)."""
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        self._runner = runner
        bound = [a for a in runner.addresses if isinstance(a, tuple)]
        self._base_url = f"http://127.0.0.1:{bound[0][1] if bound else port}"
        self.api_base = self._base_url
        await self.open()

    async def stop(self) -> None:
        """End every call and stop serving."""
        await self.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: the API base the app under test is configured with."""
        if self._base_url is None:
            raise RuntimeError("the fake is not started")
        return self._base_url

    def fail_next_create(self, status: int = 500, code: int = 20500) -> None:
        """Answer the next Calls.json create with this HTTP status and Twilio error code."""
        self._failures.append((status, code))

    # ------------------------------------------------------------------ auth
    def _authorized(self, request: web.Request) -> bool:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = f"{self.account_sid}:{self.auth_token}".encode()
        return secrets.compare_digest(given, expected)

    def _denied(self, request: web.Request) -> web.Response | None:
        if not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        if request.match_info["account"] != self.account_sid:
            return _error(404, 20404, "The requested resource was not found")
        return None

    # ------------------------------------------------------------------ Calls
    def _call_json(self, leg: Leg) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{leg.sid}.json"
        now = format_datetime(datetime.now(UTC))
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": now,
            "date_updated": now,
            "direction": leg.direction,
            "duration": str(leg.duration) if leg.ended.is_set() else None,
            "end_time": now if leg.ended.is_set() else None,
            "forwarded_from": None,
            "from": leg.from_,
            "from_formatted": leg.from_,
            "group_sid": None,
            "parent_call_sid": leg.parent_sid,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": leg.sid,
            "start_time": None if leg.answered_at is None else now,
            "status": leg.status,
            "subresource_uris": {
                "recordings": uri.removesuffix(".json") + "/Recordings.json",
                "notifications": uri.removesuffix(".json") + "/Notifications.json",
            },
            "to": leg.to,
            "to_formatted": leg.to,
            "trunk_sid": None,
            "uri": uri,
        }

    @staticmethod
    def _as_created(form: MultiDictProxy[str | Any]) -> dict[str, list[str] | str]:
        record: dict[str, list[str] | str] = {}
        for key in dict.fromkeys(form.keys()):
            values = [str(v) for v in form.getall(key)]
            record[key] = values if len(values) > 1 or key == "StatusCallbackEvent" else values[0]
        return record

    async def _create_call(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        form = await request.post()
        record = self._as_created(form)
        if self._failures:
            status, code = self._failures.popleft()
            self.created.append({**record, "failed": str(status)})
            return _error(status, code, "The fake was told to fail this create")
        to, from_ = str(form.get("To", "")).strip(), str(form.get("From", "")).strip()
        url, twiml = str(form.get("Url", "")).strip(), form.get("Twiml")
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not from_:
            return _error(400, 21213, "No 'From' number is specified")
        if not url and not twiml:
            return _error(
                400,
                21205,
                "Url parameter is required. Provide a valid Url, ApplicationSid or Twiml.",
            )
        if twiml:
            try:
                parse_twiml(str(twiml), "text/xml", "Twiml")
            except TwimlError:
                return _error(400, 21205, "Twiml is not valid TwiML")
        events: set[str] = set()
        for value in form.getall("StatusCallbackEvent", []):
            events.update(str(value).split())
        unknown = events - PROGRESS_EVENTS
        if unknown:
            return _error(400, 21626, f"Invalid StatusCallbackEvent: {sorted(unknown)}")
        try:
            timeout = float(str(form.get("Timeout", DEFAULT_CALL_TIMEOUT)))
        except ValueError:
            return _error(400, 21216, "Timeout must be a number")
        instructions = Instructions(
            url=url,
            method=str(form.get("Method", "POST")),
            twiml=str(twiml) if twiml else None,
        )
        leg = self.create_call(
            to=to,
            from_=from_,
            instructions=instructions,
            status_callback=str(form.get("StatusCallback", "")).strip() or None,
            status_events=events,
            status_method=str(form.get("StatusCallbackMethod", "POST")),
            timeout=timeout,
        )
        self.created.append({**record, "sid": leg.sid})
        body = self._call_json(leg)
        body["status"] = "queued"
        return web.json_response(body, status=201)

    def _leg(self, request: web.Request) -> Leg | None:
        return self.legs.get(request.match_info["call"])

    async def _get_call(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        leg = self._leg(request)
        if leg is None:
            return _error(404, 20404, "The requested resource was not found")
        return web.json_response(self._call_json(leg))

    async def _update_call(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        leg = self._leg(request)
        if leg is None:
            return _error(404, 20404, "The requested resource was not found")
        form = await request.post()
        status = str(form.get("Status", "")).strip()
        url, twiml = str(form.get("Url", "")).strip(), form.get("Twiml")
        if status in ("completed", "canceled"):
            self.hangup(leg.sid)
        elif status:
            return _error(400, 21218, f"Invalid Status: {status}")
        elif url or twiml:
            if leg.answered_at is None:
                return _error(400, 21220, "Call is not in-progress. Cannot redirect.")
            try:
                self.redirect(
                    leg.sid,
                    Instructions(
                        url=url,
                        method=str(form.get("Method", "POST")),
                        twiml=str(twiml) if twiml else None,
                    ),
                )
            except ValueError as err:
                return _error(400, 21220, f"Unable to update record: {err}")
        else:
            return _error(400, 20001, "Nothing to update: give Status, Url or Twiml")
        return web.json_response(self._call_json(leg))

    # ------------------------------------------------------------------ Recordings
    async def _recording(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        name = request.match_info["recording"]
        sid, dot, ext = name.partition(".")
        recording = self.recordings.get(sid)
        if recording is None or ext not in ("", "wav", "mp3", "json"):
            return _error(404, 20404, "The requested resource was not found")
        if ext == "json":
            return web.json_response(self._recording_json(recording))
        if ext == "mp3":
            return web.Response(body=mp3_bytes(recording.duration), content_type="audio/mpeg")
        # Twilio answers the bare URL with a WAV, as audio/x-wav.
        content_type = "audio/x-wav" if not dot else "audio/wav"
        return web.Response(body=wav_bytes(recording.duration), content_type=content_type)

    def _recording_json(self, recording: Recording) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Recordings/{recording.sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "call_sid": recording.call_sid,
            "channels": 1,
            "date_created": format_datetime(recording.started),
            "duration": str(recording.duration),
            "sid": recording.sid,
            "source": "RecordVerb",
            "status": "completed",
            "uri": uri,
        }
