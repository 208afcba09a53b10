"""The audit log: one append-only writer, account and token events with who and from where,
an admin API with filters and a cursor, and an admins-only page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contract.errors import Forbidden, InvalidInput
from hub.accounts.principal import BOOTSTRAP, Principal
from hub.accounts.users import check_agent_change, record_agent_change
from hub.audit import record
from hub.uow import UnitOfWork
from hub.web import keys
from storage.models import AuditEntry
from tests.agent_console.test_gateway import PASSWORD, login, make_agent
from tests.conftest import AUTH, ClientFactory

ROOT = Path(__file__).resolve().parents[2]
SUE = Principal(role="supervisor", agent_id=2, name="sue")
ADA = Principal(role="admin", agent_id=3, name="ada")
ANN = Principal(role="agent", agent_id=4, name="ann")
READER = Principal(role="token", name="token:bi", scopes=frozenset({"read"}), token_id=1)


async def _entries(s: AsyncSession) -> list[AuditEntry]:
    return list((await s.scalars(select(AuditEntry).order_by(AuditEntry.id))).all())


async def test_record_appends_in_the_callers_transaction_or_not_at_all(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    tx = client.app[keys.HUB].tx

    async def kept(uow: UnitOfWork) -> None:
        record(uow, actor="x" * 300, action="test.kept", target_type="thing", ip="10.0.0.1")
        record(uow.session, actor="ada", action="test.session", target_type="thing", target_id=7)

    class Boom(Exception):
        pass

    async def rolled_back(uow: UnitOfWork) -> None:
        record(uow, actor="ada", action="test.lost", target_type="thing")
        await uow.session.flush()
        raise Boom

    await tx.run(kept)
    with pytest.raises(Boom):
        await tx.run(rolled_back)
    rows = await tx.read(_entries)
    assert [(e.actor, e.action, e.target_id, e.details, e.ip) for e in rows] == [
        ("x" * 100, "test.kept", None, {}, "10.0.0.1"),
        ("ada", "test.session", 7, {}, ""),
    ]


def test_nothing_in_the_hub_updates_or_deletes_audit_entries() -> None:
    # The one known exception is hub/customers/profiles.py's unmerge, which marks its merge entry
    # "undone" by assigning to ``details`` (an attribute write, not a statement this scan sees).
    statement = re.compile(
        r"\b(update|delete)\(\s*AuditEntry\b|AuditEntry\.__table__\.(update|delete)"
        r"|\b(UPDATE|DELETE\s+FROM)\s+audit\b"
    )
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("hub", "agent_console", "channels", "storage", "routing")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "migrations" not in path.parts
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if statement.search(line)
    ]
    assert offenders == []


async def test_account_and_token_events_name_who_and_where_and_never_a_password(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    ann = await make_agent(client, "ann")
    await make_agent(client, "ada", role="admin")
    assert (
        await client.post("/login", json={"username": "ann", "password": "wrong horse"})
    ).status == 401
    jar = await login(client, "ann")
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        changed = await session.post(
            client.make_url("/api/v1/me/password"),
            json={"current": PASSWORD, "new": "new battery staple"},
        )
        assert changed.status == 204
        ended = await session.post(client.make_url("/api/v1/me/logout-everywhere"))
        assert ended.status == 204
    async with aiohttp.ClientSession(cookie_jar=await login(client, "ada")) as session:
        made = await session.post(
            client.make_url("/api/v1/tokens"), json={"name": "crm", "scopes": ["inbound"]}
        )
        token_id = (await made.json())["id"]
        await session.delete(client.make_url(f"/api/v1/tokens/{token_id}"))
        page = await (await session.get(client.make_url("/api/v1/audit?limit=500"))).json()

    rows = [(e["actor"], e["action"], e["target_type"], e["target_id"]) for e in page["items"]]
    assert rows[::-1] == [
        ("ann", "login.failed", "agent", None),
        ("ann", "login", "agent", ann),
        ("ann", "password.change", "agent", ann),
        ("ann", "logout.everywhere", "agent", ann),
        ("ada", "login", "agent", ann + 1),
        ("ada", "token.create", "token", token_id),
        ("ada", "token.revoke", "token", token_id),
    ]
    assert {e["ip"] for e in page["items"]} == {"127.0.0.1"}
    text = str(page)
    assert all(word not in text for word in ("wrong horse", PASSWORD, "new battery staple"))


async def test_the_audit_api_filters_and_pages_newest_first_for_admins_only(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    tx = client.app[keys.HUB].tx

    async def fill(uow: UnitOfWork) -> None:
        for n in range(12):
            record(
                uow,
                actor="ada" if n % 2 else "sue",
                action="test.even" if n % 2 == 0 else "test.odd",
                target_type="customer",
                target_id=n % 3 + 1,
            )

    await tx.run(fill)

    async def get(query: str, headers: dict[str, str] = AUTH) -> Any:
        resp = await client.get(f"/api/v1/audit?{query}", headers=headers)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    seen: list[int] = []
    cursor: int | None = None
    while True:
        page = await get(f"limit=5&before={cursor}" if cursor else "limit=5")
        seen += [e["id"] for e in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == len(set(seen)) == 12
    mine = await get("actor=ada&action=test.odd&target_type=customer&target_id=2")
    assert {(e["actor"], e["action"], e["target_id"]) for e in mine["items"]} == {
        ("ada", "test.odd", 2)
    }
    assert len(mine["items"]) == 2  # n = 1 and n = 7
    assert (await client.get("/api/v1/audit?before=0", headers=AUTH)).status == 400
    assert (await client.get("/api/v1/audit?limit=501", headers=AUTH)).status == 400

    _, reader = await client.app[keys.HUB].tokens.create(
        name="bi", scopes=["read"], created_by="test"
    )
    refused = await client.get("/api/v1/audit", headers={"Authorization": f"Bearer {reader}"})
    assert refused.status == 403


async def test_record_agent_change_writes_one_entry_per_real_change(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    tx = client.app[keys.HUB].tx

    async def work(uow: UnitOfWork) -> None:
        record_agent_change(
            uow,
            actor=SUE,
            agent_id=9,
            ip="10.1.1.1",
            role=("agent", "supervisor"),
            team=("north", "north"),
            active=(True, False),
        )
        record_agent_change(uow, actor=BOOTSTRAP, agent_id=9, ip="", active=(False, True))

    await tx.run(work)
    rows = await tx.read(_entries)
    assert [(e.actor, e.action, e.target_id, e.details, e.ip) for e in rows] == [
        ("sue", "agent.role", 9, {"from": "agent", "to": "supervisor"}, "10.1.1.1"),
        ("sue", "agent.deactivate", 9, {}, "10.1.1.1"),
        ("admin-token", "agent.activate", 9, {}, ""),
    ]


@pytest.mark.parametrize(
    ("actor", "target_role", "new_role", "deactivate", "refused"),
    [
        (SUE, "agent", None, True, None),
        (SUE, "agent", "supervisor", False, None),
        (SUE, "supervisor", "agent", True, None),
        (SUE, "admin", None, False, None),  # e.g. a display name: not a role or activity
        (SUE, "admin", None, True, Forbidden),
        (SUE, "admin", "supervisor", False, Forbidden),
        (SUE, "agent", "admin", False, Forbidden),
        (SUE, "supervisor", "admin", False, Forbidden),
        (ADA, "admin", "agent", True, None),
        (ADA, "agent", "admin", False, None),
        (BOOTSTRAP, "admin", None, True, None),
        (ANN, "agent", None, True, Forbidden),
        (READER, "agent", None, True, Forbidden),
        (ADA, "agent", "root", False, InvalidInput),
    ],
)
def test_check_agent_change_keeps_admin_accounts_to_admins(
    actor: Principal,
    target_role: str,
    new_role: str | None,
    deactivate: bool,
    refused: type[Exception] | None,
) -> None:
    if refused is None:
        check_agent_change(actor, target_role, new_role, deactivate)
    else:
        with pytest.raises(refused):
            check_agent_change(actor, target_role, new_role, deactivate)


async def test_the_audit_page_is_for_admins_and_renders_text_only(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    for name, role in (("ann", "agent"), ("sue", "supervisor"), ("ada", "admin")):
        await make_agent(client, name, role=role)
    anonymous = await client.get("/admin/audit", allow_redirects=False)
    assert (anonymous.status, anonymous.headers["Location"]) == (302, "/login")
    for who in ("ann", "sue"):
        async with (
            aiohttp.ClientSession(cookie_jar=await login(client, who)) as session,
            session.get(client.make_url("/admin/audit"), allow_redirects=False) as resp,
        ):
            assert (who, resp.status, resp.headers["Location"]) == (who, 302, "/console")
    async with (
        aiohttp.ClientSession(cookie_jar=await login(client, "ada")) as session,
        session.get(client.make_url("/admin/audit")) as page,
    ):
        assert page.status == 200
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert '<script type="module" src="/static/audit.js">' in await page.text()
    script = await client.get("/static/audit.js")
    assert script.status == 200
    source = await script.text()
    assert "/api/v1/audit" in source
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", source)
