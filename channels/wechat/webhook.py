"""``GET``/``POST /webhooks/wechat``: URL verification, signature, safe mode, persist, ``success``.

Answers, following WeChat's delivery rule (no answer within 5 s, or an invalid one, and the
push is retried, three times in all):

* GET: ``echostr`` back when the signature is right (the server-URL check in the account's
  settings), else 403.
* 403: a wrong or missing ``signature`` (or ``msg_signature`` in safe mode). Nothing is read
  beyond the query, nothing stored.
* 413: a body over the limit. 400: not a WeChat push (no XML, a DTD, no sender, a ciphertext
  that does not decrypt for our AppID); WeChat never sends those, so its retry cannot matter.
* ``success`` (200): stored, or already stored (a retry), or deliberately not stored (location
  reports, unknown types). 5xx from the app's error middleware: the hub could not persist, and
  WeChat's retry is wanted.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from aiohttp import web

from channels.wechat.const import ACK, CHANNEL, ENDPOINT_KIND, MAX_BODY, WEBHOOK_PATH
from channels.wechat.crypto import CryptoError, MessageCrypto, signature_ok
from channels.wechat.payloads import MalformedPush, parse_push, parse_xml
from channels.wechat.settings import WeChatSettings
from contract.channel import HubPort
from contract.errors import InvalidInput

logger = logging.getLogger(__name__)


class WeChatWebhook:
    """The webhook bound to the account's settings and the hub port."""

    def __init__(self, *, settings: WeChatSettings, hub: HubPort, max_body: int) -> None:
        self.hub = hub
        self.token = settings.token.get_secret_value()
        self.queue = settings.queue or None
        self.max_body = min(max_body, MAX_BODY)
        # The current key first; the previous one decrypts while WeChat switches over.
        self.cryptos = [
            MessageCrypto(key.get_secret_value(), settings.app_id)
            for key in (settings.encoding_aes_key, settings.previous_encoding_aes_key)
            if key.get_secret_value()
        ]

    def routes(self) -> list[web.RouteDef]:
        return [web.get(WEBHOOK_PATH, self.verify), web.post(WEBHOOK_PATH, self.handle)]

    def _signed(self, request: web.Request) -> bool:
        q = request.query
        return bool(self.token) and signature_ok(
            q.get("signature", ""), self.token, q.get("timestamp", ""), q.get("nonce", "")
        )

    async def verify(self, request: web.Request) -> web.Response:
        """The server-URL check: echo ``echostr`` when the signature is ours."""
        if not self._signed(request):
            logger.warning("wechat URL verification with a wrong signature from %s", request.remote)
            return web.Response(status=403, text="forbidden")
        return web.Response(text=request.query.get("echostr", ""))

    async def handle(self, request: web.Request) -> web.Response:
        """Authenticate, decrypt, parse, persist, acknowledge."""
        if not self._signed(request):
            logger.warning("wechat push with a wrong signature from %s", request.remote)
            return web.Response(status=403, text="forbidden")
        if request.content_length is not None and request.content_length > self.max_body:
            return web.Response(status=413, text="body too large")
        body = await request.content.read(self.max_body + 1)
        if len(body) > self.max_body:
            return web.Response(status=413, text="body too large")
        try:
            fields = parse_xml(body)
            if "Encrypt" in fields:
                body = self._decrypt(request, fields["Encrypt"])
                fields = parse_xml(body)
            parsed = parse_push(fields, queue=self.queue)
        except _Unsigned:
            logger.warning("wechat push with a wrong msg_signature from %s", request.remote)
            return web.Response(status=403, text="forbidden")
        except (MalformedPush, CryptoError) as err:
            logger.warning("wechat push refused: %s", err)
            return web.Response(status=400, text=f"not a WeChat push: {err}")
        if parsed.consent is not None:
            await self.hub.set_opt_out(
                kind=ENDPOINT_KIND,
                address=parsed.openid,
                channel=CHANNEL,
                opted_out=not parsed.consent,
            )
        elif parsed.message is None:
            logger.info("wechat %s %s not stored: %s", parsed.msg_type, parsed.event, parsed.reason)
        else:
            try:
                result = await self.hub.ingest(replace(parsed.message, raw=body))
            except InvalidInput as err:
                logger.warning("wechat push refused by the hub: %s", err)
            else:
                if result.duplicate:
                    logger.info("wechat %s redelivered; stored once", parsed.message.provider_id)
        return web.Response(text=ACK)

    def _decrypt(self, request: web.Request, encrypted: str) -> bytes:
        if not self.cryptos:
            raise CryptoError("an encrypted push, but no EncodingAESKey is configured")
        q = request.query
        if not signature_ok(
            q.get("msg_signature", ""),
            self.token,
            q.get("timestamp", ""),
            q.get("nonce", ""),
            encrypted,
        ):
            raise _Unsigned
        error = CryptoError("no key decrypts it")
        for crypto in self.cryptos:
            try:
                return crypto.decrypt(encrypted)
            except CryptoError as err:
                error = err
        raise error


class _Unsigned(Exception):
    """The ciphertext's msg_signature is wrong."""
