"""App user tokens: the company's server vouches for its signed-in user.

A token is ``<app>:<expires>:<signature>:<user>``, where ``signature`` is the hex
HMAC-SHA256 of ``<app>:<expires>:<user>`` under the app's secret and ``expires`` a Unix time.
The app gets it from the company's own server after its login and sends it as
``Authorization: HubApp <token>``; the secret never ships in the app.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass

_USER = re.compile(r"^[\w.@+\-=/:]{1,128}$")
_TOKEN = re.compile(r"^([a-z0-9][a-z0-9_-]{1,31}):(\d{1,12}):([0-9a-f]{64}):(.+)$")


class TokenRefused(ValueError):
    """A token that does not admit anyone; ``status`` is the HTTP answer (401 or 403)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class AppUser:
    """A signed-in user of one app."""

    app: str
    user: str
    expires: int

    @property
    def address(self) -> str:
        """The customer endpoint's address."""
        return f"{self.app}:{self.user}"


def _mac(secret: str, app: str, expires: int, user: str) -> str:
    return hmac.new(secret.encode(), f"{app}:{expires}:{user}".encode(), hashlib.sha256).hexdigest()


def sign_user(
    app: str, user: str, secret: str, *, ttl_s: int = 86400, now: float | None = None
) -> str:
    """A token for ``user`` of ``app`` (what the company's server does after its login)."""
    if not _USER.match(user):
        raise ValueError("a user id is 1-128 of letters, digits and . @ + - = / : _")
    expires = int((now if now is not None else time.time()) + ttl_s)
    return f"{app}:{expires}:{_mac(secret, app, expires, user)}:{user}"


def verify(
    header: str, secrets_by_app: dict[str, tuple[str, int]], *, now: float | None = None
) -> AppUser:
    """The user an ``Authorization`` header vouches for; TokenRefused otherwise.

    ``secrets_by_app``: app id -> (secret, longest token life in seconds).
    """
    scheme, _, token = header.strip().partition(" ")
    if scheme != "HubApp" or not token:
        raise TokenRefused(401, "send Authorization: HubApp <token>")
    found = _TOKEN.match(token.strip())
    if found is None:
        raise TokenRefused(401, "malformed token")
    app, expires_s, given, user = found.groups()
    if not _USER.match(user):
        raise TokenRefused(401, "malformed user id")
    known = secrets_by_app.get(app)
    if known is None:
        raise TokenRefused(403, "unknown app")
    secret, max_age = known
    if not hmac.compare_digest(given, _mac(secret, app, int(expires_s), user)):
        raise TokenRefused(403, "the token's signature does not verify")
    clock = now if now is not None else time.time()
    expires = int(expires_s)
    if expires <= clock:
        raise TokenRefused(401, "token expired")
    if expires > clock + max_age:
        raise TokenRefused(401, "token lives longer than this app allows")
    return AppUser(app=app, user=user, expires=expires)
