"""Integration tokens API: admins create (the secret shown once), list and revoke them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import Field

from hub.web import keys
from hub.web.api.openapi import json_response, parse_body, principal_of
from hub.web.api.routes import api, path_int
from hub.web.api.schemas import Model
from storage.models import ApiToken

Scope = Literal["inbound", "read", "reports", "admin"]


class TokenIn(Model):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(min_length=1, max_length=4)


class TokenOut(Model):
    id: int
    name: str
    scopes: list[str]
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="the secret: shown this once, stored only as a hash")


class TokenList(Model):
    items: list[TokenOut]


def _out(row: ApiToken) -> TokenOut:
    return TokenOut(
        id=row.id,
        name=row.name,
        scopes=list(row.scopes),
        created_by=row.created_by,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


@api.route(
    "POST",
    "/api/v1/tokens",
    access="tokens.manage",
    summary="Create a named, scoped integration token (the secret is in this answer only)",
    tag="tokens",
    body=TokenIn,
    responses={201: TokenCreated},
)
async def create_token(request: web.Request) -> web.Response:
    hub = request.app[keys.HUB]
    body = await parse_body(request, TokenIn)
    token_id, secret = await hub.tokens.create(
        name=body.name,
        scopes=body.scopes,
        created_by=principal_of(request).name,
        ip=request.remote or "",
    )
    row = next(t for t in await hub.tokens.list() if t.id == token_id)
    created = TokenCreated(**_out(row).model_dump(), token=secret)
    return json_response(created, status=201)


@api.route(
    "GET",
    "/api/v1/tokens",
    access="tokens.manage",
    summary="Integration tokens (never their secrets), with when each was last used",
    tag="tokens",
    responses={200: TokenList},
)
async def list_tokens(request: web.Request) -> web.Response:
    rows = await request.app[keys.HUB].tokens.list()
    return json_response(TokenList(items=[_out(r) for r in rows]))


@api.route(
    "DELETE",
    "/api/v1/tokens/{token_id}",
    access="tokens.manage",
    summary="Revoke a token: its next call is refused (401)",
    tag="tokens",
    responses={200: TokenOut},
)
async def revoke_token(request: web.Request) -> web.Response:
    row = await request.app[keys.HUB].tokens.revoke(
        path_int(request, "token_id"), actor=principal_of(request).name, ip=request.remote or ""
    )
    return json_response(_out(row))
