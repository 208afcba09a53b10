"""Login, logout, the console and supervisor pages, and the static files behind them."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from contract.errors import Throttled
from hub.accounts.principal import Principal
from hub.accounts.users import SESSION_TTL
from hub.web import keys
from hub.web.api.openapi import error_response
from hub.web.auth import SESSION_COOKIE, authenticate, same_origin

STATIC = Path(__file__).with_name("static")
PAGE_HEADERS = {
    # Message content is rendered as text by the UI; the CSP is a second wall.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _page(name: str) -> web.FileResponse:
    return web.FileResponse(STATIC / name, headers=PAGE_HEADERS)


async def login_page(request: web.Request) -> web.StreamResponse:
    return _page("login.html")


async def login(request: web.Request) -> web.Response:
    """Check credentials; set an HttpOnly, SameSite session cookie."""
    # A JSON body only (the CSRF middleware refuses anything else): a cross-site form cannot
    # log a victim into an attacker's account.
    try:
        data = json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return error_response(400, "invalid_input", "body is not valid JSON")
    username = data.get("username") if isinstance(data, dict) else None
    password = data.get("password") if isinstance(data, dict) else None
    if not isinstance(username, str) or not isinstance(password, str):
        return error_response(400, "invalid_input", "username and password are required")
    hub = request.app[keys.HUB]
    try:
        found = await hub.users.login(
            username.strip()[:200], password[:1024], address=request.remote or "-"
        )
    except Throttled as err:
        resp = error_response(429, "throttled", str(err))
        resp.headers["Retry-After"] = str(int(err.retry_after))
        return resp
    if found is None:
        return error_response(401, "unauthorized", "wrong username or password")
    token, agent = found
    settings = request.app[keys.SETTINGS]
    redirect = "/supervisor" if agent.role in ("supervisor", "admin") else "/console"
    resp = web.json_response({"ok": True, "role": agent.role, "redirect": redirect})
    resp.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        secure=settings.public_url.startswith("https://"),
        max_age=int(SESSION_TTL.total_seconds()),
        path="/",
    )
    return resp


async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await request.app[keys.HUB].users.logout(token, address=request.remote or "-")
    resp = web.json_response({"ok": True})
    resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


async def _page_for(request: web.Request, name: str, *roles: str) -> web.StreamResponse:
    principal = await authenticate(request)
    if principal is None or principal.agent_id is None:
        raise web.HTTPFound("/login")
    if roles and principal.role not in roles:
        raise web.HTTPFound("/console")
    return _page(name)


async def console_page(request: web.Request) -> web.StreamResponse:
    return await _page_for(request, "console.html")


async def supervisor_page(request: web.Request) -> web.StreamResponse:
    return await _page_for(request, "supervisor.html", "supervisor", "admin")


async def admin_canned_page(request: web.Request) -> web.StreamResponse:
    return await _page_for(request, "admin-canned.html", "supervisor", "admin")


async def admin_page(request: web.Request) -> web.StreamResponse:
    return await _page_for(request, "admin.html", "supervisor", "admin")


async def admin_audit_page(request: web.Request) -> web.StreamResponse:
    return await _page_for(request, "audit.html", "admin")


async def me(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    if principal is None:
        return error_response(401, "unauthorized", "not logged in")
    return web.json_response(
        {"id": principal.agent_id, "username": principal.name, "role": principal.role}
    )


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/login", login_page),
        web.post("/login", login),
        web.post("/logout", logout),
        web.get("/console", console_page),
        web.get("/supervisor", supervisor_page),
        web.get("/admin", admin_page),
        web.get("/admin/canned", admin_canned_page),
        web.get("/admin/audit", admin_audit_page),
        web.get("/api/v1/me", me),
        web.get("/", root),
        web.static("/static", STATIC, show_index=False),
    ]


async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console")


__all__ = ["Principal", "routes", "same_origin"]
