"""Who is calling: the admin bearer token or a logged-in user's session cookie."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from aiohttp import web

from hub.access import allowed
from hub.accounts.principal import BOOTSTRAP, Principal, token_hash
from hub.web import keys

SESSION_COOKIE = "hub_session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def bearer(request: web.Request) -> str | None:
    """The bearer token of the request, if it sends one."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def bearer_matches(request: web.Request, expected: str) -> bool:
    """True when the request's bearer token is ``expected`` (constant time; '' never)."""
    given = bearer(request)
    return (
        bool(expected)
        and given is not None
        and hmac.compare_digest(given.encode(), expected.encode())
    )


def bearer_ok(request: web.Request) -> bool:
    """True when the request carries the admin bearer token."""
    return bearer_matches(request, request.app[keys.SETTINGS].api_token_value())


async def authenticate(request: web.Request) -> Principal | None:
    """The caller, or None: a bearer token (bootstrap or named) wins over a session cookie."""
    if bearer_ok(request):
        return BOOTSTRAP
    hub = request.app[keys.HUB]
    token = bearer(request)
    if token is not None:
        # A wrong bearer is a wrong caller: never fall back to an ambient cookie.
        return await hub.tokens.principal_for(token)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return await hub.users.principal_for(token_hash(cookie))
    return None


def _origins(request: web.Request) -> set[str]:
    public = urlsplit(request.app[keys.SETTINGS].public_url)
    return {f"{public.scheme}://{public.netloc}", f"{request.scheme}://{request.host}"}


def same_origin(request: web.Request) -> bool:
    """Websocket upgrades must come from the hub's own pages (no cross-site hijacking)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # non-browser clients (load tools) send none; the cookie still rules
    return origin.rstrip("/") in _origins(request)


def cross_site_problem(request: web.Request) -> str | None:
    """Why a cookie-authenticated write (or a login) may be a cross-site forgery, else None.

    Browsers send ``Origin`` on every cross-site POST (and ``Sec-Fetch-Site``); a page on
    another site can only send a "simple" body (form or ``text/plain``) without a CORS
    preflight we never grant. So: a browser's write must be same-origin, and any body must
    be JSON. A client that sends neither header is no browser and cannot be forged into
    sending our cookie.
    """
    origin = request.headers.get("Origin")
    if origin is not None and origin.rstrip("/") not in _origins(request):
        return f"cross-origin request from {origin[:100]!r} refused"
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"cross-site request ({fetch_site[:20]}) refused"
    if origin is None and fetch_site is None:
        referer = request.headers.get("Referer")
        if referer:
            parts = urlsplit(referer)
            if f"{parts.scheme}://{parts.netloc}" not in _origins(request):
                return "cross-origin referer refused"
    has_body = bool(request.content_length) or request.headers.get("Transfer-Encoding")
    if has_body and request.content_type != "application/json":
        return "a write with a session cookie must send Content-Type: application/json"
    return None


async def authorize(request: web.Request, permission: str) -> Principal:
    """The caller if it may use ``permission``; 401 without credentials, 403 without right."""
    principal = await authenticate(request)
    if principal is None:
        raise web.HTTPUnauthorized(
            text='{"error":"unauthorized","detail":"bearer token or login session required"}',
            content_type="application/json",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not allowed(principal, permission):
        raise web.HTTPForbidden(
            text='{"error":"forbidden","detail":"your role or token scope may not do this"}',
            content_type="application/json",
        )
    return principal
