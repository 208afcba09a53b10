"""Who is calling: the admin bearer token or a logged-in user's session cookie."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from aiohttp import web

from hub import keys

SESSION_COOKIE = "hub_session"


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """An authenticated caller; ``agent_id`` is None for the admin token."""

    role: str  # admin / supervisor / agent
    agent_id: int | None = None
    name: str = "admin-token"
    display_name: str = "Admin token"


def token_hash(token: str) -> str:
    """Sessions are stored by hash, so a leaked table does not leak live cookies."""
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_ok(request: web.Request) -> bool:
    """True when the request carries the admin bearer token."""
    expected = request.app[keys.SETTINGS].api_token_value()
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not expected:
        return False
    return hmac.compare_digest(value.strip().encode(), expected.encode())


async def authenticate(request: web.Request) -> Principal | None:
    """The caller, or None."""
    if bearer_ok(request):
        return Principal(role="admin")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        hub = request.app[keys.HUB]
        return await hub.users.principal_for(token_hash(cookie))
    return None


async def require(request: web.Request, *roles: str) -> Principal:
    """The caller if authenticated with one of ``roles`` (any role when none given)."""
    principal = await authenticate(request)
    if principal is None:
        raise web.HTTPUnauthorized(
            text='{"error":"unauthorized","detail":"bearer token or login session required"}',
            content_type="application/json",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if roles and principal.role not in roles and principal.role != "admin":
        raise web.HTTPForbidden(
            text='{"error":"forbidden","detail":"your role may not do this"}',
            content_type="application/json",
        )
    return principal
