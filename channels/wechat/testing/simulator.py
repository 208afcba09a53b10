"""Followers writing to an Official Account: real-shaped XML pushes, signed (and, in safe
mode, encrypted) as WeChat sends them. Used by the tests and by ``make run``."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Mapping
from urllib.parse import urlencode

import aiohttp

from channels.wechat.const import WEBHOOK_PATH
from channels.wechat.crypto import MessageCrypto, signature

ACCOUNT = "gh_0123456789ab"


def push_xml(fields: Mapping[str, str | int]) -> bytes:
    """One push: strings in CDATA, numbers bare, like WeChat's own."""
    parts = ["<xml>"]
    for name, value in fields.items():
        if isinstance(value, int):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            parts.append(f"<{name}><![CDATA[{value.replace(']]>', ']]]]><![CDATA[>')}]]></{name}>")
    parts.append("</xml>")
    return "".join(parts).encode()


def text_push(openid: str, text: str, msg_id: int, *, at: int | None = None) -> bytes:
    return push_xml(
        {
            "ToUserName": ACCOUNT,
            "FromUserName": openid,
            "CreateTime": at or int(time.time()),
            "MsgType": "text",
            "Content": text,
            "MsgId": msg_id,
        }
    )


def signed_query(
    token: str, *, timestamp: str | None = None, nonce: str | None = None
) -> dict[str, str]:
    ts = timestamp or str(int(time.time()))
    n = nonce or str(secrets.randbelow(10**10))
    return {"signature": signature(token, ts, n), "timestamp": ts, "nonce": n}


def encrypted(
    xml: bytes, *, token: str, crypto: MessageCrypto, query: dict[str, str]
) -> tuple[bytes, dict[str, str]]:
    """The safe-mode body and query for ``xml``."""
    cipher = crypto.encrypt(xml)
    body = push_xml({"ToUserName": ACCOUNT, "Encrypt": cipher})
    q = dict(query)
    q["encrypt_type"] = "aes"
    q["msg_signature"] = signature(token, q["timestamp"], q["nonce"], cipher)
    return body, q


async def post_push(
    session: aiohttp.ClientSession,
    base_url: str,
    xml: bytes,
    *,
    token: str,
    crypto: MessageCrypto | None = None,
) -> tuple[int, str]:
    """Post one push as WeChat would; (status, body)."""
    query = signed_query(token)
    body = xml
    if crypto is not None:
        body, query = encrypted(xml, token=token, crypto=crypto, query=query)
    url = f"{base_url.rstrip('/')}{WEBHOOK_PATH}?{urlencode(query)}"
    async with session.post(url, data=body, headers={"Content-Type": "text/xml"}) as resp:
        return resp.status, await resp.text()


FOLLOWERS = (
    ("oWx1a2b3c4d5e6f7g8h9i0jk", "我的订单什么时候发货？"),
    ("oWx9z8y7x6w5v4u3t2s1r0qp", "请问怎么申请退款"),
    ("oWxAbCdEfGhIjKlMnOpQrStU", "Hello, is the store open on Sunday?"),
)


async def wechat_inbound(
    session: aiohttp.ClientSession, base_url: str, token: str, rng: random.Random
) -> None:
    """One message from a demo follower."""
    openid, text = rng.choice(FOLLOWERS)
    await post_push(
        session, base_url, text_push(openid, text, rng.randrange(10**15, 10**16)), token=token
    )
