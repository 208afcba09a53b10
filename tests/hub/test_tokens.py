"""Integration tokens: created by admins (the secret shown once), scoped, revocable, audited."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contract.testing import free_port
from hub.web import keys
from storage.models import ApiToken, AuditEntry
from tests.agent_console.test_gateway import login, make_agent
from tests.conftest import AUTH, ClientFactory
from tests.hub.test_cli_serve import HUB, hub_env


async def _token(client: Any, name: str, *scopes: str) -> tuple[int, dict[str, str]]:
    made = await client.post("/api/v1/tokens", json={"name": name, "scopes": scopes}, headers=AUTH)
    assert made.status == 201, await made.text()
    body = await made.json()
    assert body["name"] == name
    assert body["scopes"] == sorted(scopes)
    return body["id"], {"Authorization": f"Bearer {body['token']}"}


async def _rows(s: AsyncSession) -> tuple[list[ApiToken], list[AuditEntry]]:
    tokens = (await s.scalars(select(ApiToken).order_by(ApiToken.id))).all()
    audit = (await s.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    return list(tokens), list(audit)


async def test_revoked_token_is_refused_on_its_next_call_and_revoking_is_audited_once(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    token_id, bearer = await _token(client, "reporting", "read")
    assert (await client.get("/api/v1/customers", headers=bearer)).status == 200

    assert (await client.delete(f"/api/v1/tokens/{token_id}", headers=AUTH)).status == 200
    refused = await client.get("/api/v1/customers", headers=bearer)
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    again = await client.delete(f"/api/v1/tokens/{token_id}", headers=AUTH)
    assert again.status == 200  # harmless, and not a second audit entry
    assert (await client.delete("/api/v1/tokens/999", headers=AUTH)).status == 404

    listed = (await (await client.get("/api/v1/tokens", headers=AUTH)).json())["items"]
    assert [(t["id"], t["revoked_at"] is not None) for t in listed] == [(token_id, True)]
    assert listed[0]["last_used_at"] is not None
    assert "token" not in listed[0]

    secret = bearer["Authorization"].removeprefix("Bearer ")
    tokens, audit = await client.app[keys.HUB].tx.read(_rows)
    assert secret not in repr([(t.name, t.token_hash, t.scopes, t.created_by) for t in tokens])
    assert [(e.action, e.actor, e.target_id, e.details, e.ip) for e in audit] == [
        (
            "token.create",
            "admin-token",
            token_id,
            {"name": "reporting", "scopes": ["read"]},
            "127.0.0.1",
        ),
        ("token.revoke", "admin-token", token_id, {"name": "reporting"}, "127.0.0.1"),
    ]


async def test_a_token_does_only_what_its_scopes_allow(hub_client: ClientFactory) -> None:
    client = await hub_client()
    _, reader = await _token(client, "bi", "read")
    _, feeder = await _token(client, "crm", "inbound")
    _, root = await _token(client, "ops", "admin")
    message = {"from": "+12025550181", "text": "hello", "external_id": "scoped-1"}

    assert (await client.get("/api/v1/customers", headers=reader)).status == 200
    assert (await client.post("/api/v1/inbound", json=message, headers=reader)).status == 403
    assert (await client.get("/api/v1/tokens", headers=reader)).status == 403

    assert (await client.post("/api/v1/inbound", json=message, headers=feeder)).status == 201
    assert (await client.get("/api/v1/customers", headers=feeder)).status == 403

    # An admin-scoped token manages tokens; the audit names it.
    made = await client.post(
        "/api/v1/tokens", json={"name": "child", "scopes": ["reports"]}, headers=root
    )
    assert made.status == 201
    audit = await (await client.get("/api/v1/audit?action=token.create", headers=AUTH)).json()
    assert audit["items"][0]["actor"] == "token:ops"


async def test_only_admins_manage_tokens_and_bad_requests_are_refused(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    await make_agent(client, "ann")
    await make_agent(client, "sue", role="supervisor")
    await make_agent(client, "ada", role="admin")
    body = {"name": "zap", "scopes": ["inbound"]}
    assert (await client.get("/api/v1/tokens")).status == 401
    for who in ("ann", "sue"):
        async with aiohttp.ClientSession(cookie_jar=await login(client, who)) as session:
            listed = await session.get(client.make_url("/api/v1/tokens"))
            made = await session.post(client.make_url("/api/v1/tokens"), json=body)
            assert (who, listed.status, made.status) == (who, 403, 403)
    async with aiohttp.ClientSession(cookie_jar=await login(client, "ada")) as session:
        made = await session.post(client.make_url("/api/v1/tokens"), json=body)
        assert made.status == 201
        assert (await made.json())["token"].startswith("hub_")
        twice = await session.post(client.make_url("/api/v1/tokens"), json=body)
        assert twice.status == 409
        for bad in (
            {"name": "x", "scopes": ["everything"]},
            {"name": "x", "scopes": []},
            {"name": "", "scopes": ["read"]},
        ):
            assert (await session.post(client.make_url("/api/v1/tokens"), json=bad)).status == 400


async def test_a_wrong_bearer_is_refused_even_with_an_admins_session_cookie(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    await make_agent(client, "ada", role="admin")
    token_id, bearer = await _token(client, "old", "admin")
    await client.delete(f"/api/v1/tokens/{token_id}", headers=AUTH)
    async with aiohttp.ClientSession(cookie_jar=await login(client, "ada")) as session:
        assert (await session.get(client.make_url("/api/v1/tokens"))).status == 200
        revoked = await session.get(client.make_url("/api/v1/tokens"), headers=bearer)
        assert revoked.status == 401


def test_hub_token_cli_prints_the_secret_once_and_is_audited(tmp_path: Path) -> None:
    env = hub_env(f"sqlite+aiosqlite:///{tmp_path}/hub.db", free_port())

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*HUB, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    assert run("migrate").returncode == 0
    made = run("token", "create", "crm", "--scope", "inbound", "--scope", "read")
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines()[0] == "token 1 'crm' (inbound, read):"
    secret = made.stdout.splitlines()[1]
    assert "not shown again" in made.stdout
    listed = run("token", "list")
    assert listed.stdout.startswith("1\tcrm\tinbound,read\tactive\tused never")
    assert secret not in listed.stdout
    assert run("token", "revoke", "1").returncode == 0
    unknown = run("token", "revoke", "7")
    assert unknown.returncode == 2
    assert "not found" in unknown.stderr
    wrong = run("token", "create", "bad", "--scope", "root")
    assert wrong.returncode == 2
    with sqlite3.connect(tmp_path / "hub.db") as db:
        audit = db.execute("SELECT actor, action, target_id FROM audit ORDER BY id").fetchall()
    assert audit == [("cli", "token.create", 1), ("cli", "token.revoke", 1)]
