"""A person's own account: change the password, log out everywhere."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from hub.web import keys
from hub.web.api.openapi import parse_body, principal_of
from hub.web.api.routes import api
from hub.web.api.schemas import Model


class PasswordIn(Model):
    current: str = Field(min_length=1, max_length=1024)
    new: str = Field(min_length=8, max_length=1024)


@api.route(
    "POST",
    "/api/v1/me/password",
    access="console.self",
    summary="Change your password; every other session of yours ends",
    tag="account",
    body=PasswordIn,
    responses={204: None},
)
async def change_password(request: web.Request) -> web.Response:
    body = await parse_body(request, PasswordIn)
    await request.app[keys.HUB].users.change_password(
        principal_of(request), current=body.current, new=body.new, address=request.remote or ""
    )
    return web.Response(status=204)


@api.route(
    "POST",
    "/api/v1/me/logout-everywhere",
    access="console.self",
    summary="End every session of yours, this one too; your open consoles close",
    tag="account",
    responses={204: None},
)
async def logout_everywhere(request: web.Request) -> web.Response:
    await request.app[keys.HUB].users.logout_everywhere(
        principal_of(request), address=request.remote or ""
    )
    return web.Response(status=204)
