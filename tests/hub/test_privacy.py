"""Data protection: export then erase a customer through the API (audited, reports unchanged),
the retention purge of old closed conversations, and secrets kept out of error messages."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from config.settings import load_settings, redact_url
from contract.errors import ConfigError
from hub.customers.privacy import purge_closed_before
from hub.reports import rollup
from hub.web import keys
from storage.models import AuditEntry, Conversation, Event, Message, MessageAttachment, utcnow
from tests import factories
from tests.conftest import AUTH, ClientFactory

Client = TestClient[Any, Any]
PHONE = "+15550001234"
EMAIL = "ada@example.org"
NAME = "Ada Lovelace"
SECRETS = (
    "my card 4111 is lost",
    "call me at home",
    "Ada called about card 4111",
    "Lovelace",
    "5550001234",
    EMAIL,
    "passport",
)
PNG = b"\x89PNG\r\n\x1a\n" + b"scan" * 100
EVERYTHING = {"from": "", "to": ""}


async def inbound(client: Client, sender: str, text: str, external_id: str, **extra: Any) -> Any:
    body = {"from": sender, "text": text, "external_id": external_id, **extra}
    resp = await client.post("/api/v1/inbound", json=body, headers=AUTH)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def get(client: Client, path: str, **params: str) -> Any:
    resp = await client.get(path, params=params, headers=AUTH)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def summary(client: Client) -> dict[str, Any]:
    body = await get(client, "/api/v1/reports/summary", **EVERYTHING)
    return {k: body[k] for k in ("total", "by_channel", "rows")}


async def test_export_then_erase_keeps_reports_and_leaves_no_personal_data(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    hub = client.app[keys.HUB]
    agent = await hub.users.create(username="agent1", password="long enough pw", role="agent")
    # Ada writes twice from her phone, once from her email (a second customer until merged);
    # Bob, who is not erased, writes once.
    first = await inbound(client, PHONE, "my card 4111 is lost", "ada-1", name=NAME)
    await inbound(client, PHONE, "call me at home", "ada-2")
    by_mail = await inbound(client, EMAIL, "passport question", "ada-3", name=NAME)
    bob = await inbound(client, "+15550009999", "bob's own words", "bob-1", name="Bob")
    ada, conv = first["customer_id"], first["conversation_id"]
    offer = await hub.work.create_offer(conv, agent)
    assert offer is not None
    await hub.work.accept(offer, agent)
    await hub.conversations.reply(conv, text="On it, Ada", author_id=agent)
    await hub.conversations.reply(
        conv, text="Ada called about card 4111", author_id=agent, note=True
    )
    await hub.work.wrap_up(conv, agent_id=agent)
    await hub.conversations.close(conv, agent_id=agent, disposition="resolved")
    resp = await client.post(
        f"/api/v1/customers/{ada}/merge", json={"other_id": by_mail["customer_id"]}, headers=AUTH
    )
    assert resp.status == 200, await resp.text()
    async with hub.sessions() as s, s.begin():
        att = MessageAttachment(
            message_id=first["message_id"],
            filename="../passport scan.png",
            content_type="image/png",
            size=len(PNG),
            data=PNG,
        )
        s.add(att)
        await s.flush()
        attachment_id = att.id
    before = await summary(client)
    assert before["total"]["contacts"] == 3
    assert before["total"]["answered"] == 1

    # Export: one ZIP with the profile, every conversation with its messages, and the files.
    resp = await client.get(f"/api/v1/customers/{ada}/export", headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    path = f"attachments/{attachment_id}-passport_scan.png"
    assert sorted(archive.namelist()) == sorted(["customer.json", "conversations.json", path])
    assert archive.read(path) == PNG
    profile = json.loads(archive.read("customer.json"))
    assert profile["display_name"] == NAME
    assert {(e["kind"], e["address"]) for e in profile["endpoints"]} == {
        ("phone", PHONE),
        ("email", EMAIL),
    }
    assert [c["id"] for c in profile["merged_customers"]] == [by_mail["customer_id"]]
    assert [m["action"] for m in profile["merges"]] == ["customer.merge"]
    conversations = json.loads(archive.read("conversations.json"))
    texts = {m["text"]: m for c in conversations for m in c["messages"]}
    assert {"my card 4111 is lost", "call me at home", "passport question"} <= set(texts)
    assert texts["On it, Ada"]["direction"] == "out"
    assert texts["Ada called about card 4111"]["direction"] == "note"
    assert texts["my card 4111 is lost"]["attachments"][0]["id"] == attachment_id
    assert any(c["state"] == "closed" for c in conversations)
    assert "bob's own words" not in texts
    as_json = await get(client, f"/api/v1/customers/{ada}/export", format="json")
    assert as_json["customer"]["display_name"] == NAME

    # A customer merged away is erased through the one it was merged into.
    resp = await client.post(f"/api/v1/customers/{by_mail['customer_id']}/erase", headers=AUTH)
    assert resp.status == 409
    resp = await client.post(f"/api/v1/customers/{ada}/erase", headers=AUTH)
    assert resp.status == 200, await resp.text()
    erased = await resp.json()
    assert erased["customers"] == [ada, by_mail["customer_id"]]
    assert erased["messages"] == 5
    assert erased["attachments"] == 1

    # The customer is a tombstone; history keeps the messages without what they said.
    customer = await get(client, f"/api/v1/customers/{ada}")
    assert customer["display_name"] == ""
    assert (customer["tags"], customer["attributes"], customer["flags"]) == ([], {}, [])
    assert all(e["address"].startswith("erased:") for e in customer["endpoints"])
    history = await get(client, f"/api/v1/customers/{ada}/history")
    assert len(history["items"]) == 5
    assert all(m["text"] == "" and m["metadata"] == {} for m in history["items"])
    files = [a for m in history["items"] for a in m["attachments"]]
    assert [(a["filename"], a["url"]) for a in files] == [("", None)]
    resp = await client.get(f"/api/v1/attachments/{attachment_id}", headers=AUTH)
    assert resp.status == 404
    for params in ({"phone": PHONE}, {"email": EMAIL}, {"q": "Lovelace"}, {"q": "0001234"}):
        assert (await get(client, "/api/v1/customers", **params))["items"] == []
    assert (await get(client, f"/api/v1/customers/{bob['customer_id']}"))["display_name"] == "Bob"

    # Nothing of what Ada said or who she is stays in the event log or the export.
    log = json.dumps(await get(client, "/api/v1/events", limit="1000"))
    for secret in SECRETS:
        assert secret not in log, secret
    assert "bob's own words" in log
    again = await client.get(f"/api/v1/customers/{ada}/export", headers=AUTH)
    leftover = zipfile.ZipFile(io.BytesIO(await again.read()))
    assert leftover.namelist() == ["customer.json", "conversations.json"]
    dump = b"".join(leftover.read(n) for n in leftover.namelist()).decode()
    for secret in (*SECRETS, "On it, Ada"):
        assert secret not in dump, secret

    # Audited, with who and from where.
    async with hub.sessions() as s:
        entries = (await s.scalars(select(AuditEntry).where(AuditEntry.target_id == ada))).all()
    actions = [(a.action, a.actor, a.ip) for a in entries if a.action != "customer.merge"]
    assert actions == [
        ("customer.export", "admin-token", "127.0.0.1"),
        ("customer.export", "admin-token", "127.0.0.1"),
        ("customer.erase", "admin-token", "127.0.0.1"),
        ("customer.export", "admin-token", "127.0.0.1"),
    ]
    merge = next(a for a in entries if a.action == "customer.merge")
    assert merge.details["survivor_before"]["display_name"] == ""

    # Reports count Ada's contacts as before, also when folded again from the scrubbed log.
    assert await summary(client) == before
    async with hub.sessions() as s:
        await rollup.rebuild(s)
        await rollup.catch_up(s)
    assert await summary(client) == before

    # Her phone number is free: writing again makes a new customer.
    again_in = await inbound(client, PHONE, "hello again", "ada-4")
    assert again_in["customer_id"] not in (ada, by_mail["customer_id"])


async def test_a_team_supervisor_exports_the_whole_customer_they_see(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    ids = await factories.two_team_floor(client.app[keys.HUB])
    # Team B's customer merged into team A's: one person, whose whole history A may read.
    await client.app[keys.HUB].customers.merge(ids["cust_a"], ids["cust_b"], actor="test")
    jar = await factories.login(client, "sam")  # supervisor of team A
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        url = client.make_url(f"/api/v1/customers/{ids['cust_a']}/export")
        async with session.get(url, params={"format": "json"}) as resp:
            assert resp.status == 200
            body = await resp.json()
        async with session.get(client.make_url("/api/v1/customers/999999/export")) as resp:
            assert resp.status == 404
    assert {c["id"] for c in body["conversations"]} == {ids["conv_a"], ids["conv_b"]}
    # The absorbed customer's export names the merge, not the survivor's saved profile.
    absorbed = await get(client, f"/api/v1/customers/{ids['cust_b']}/export", format="json")
    (merge,) = absorbed["customer"]["merges"]
    assert merge["details"]["absorbed_id"] == ids["cust_b"]
    assert "survivor_before" not in merge["details"]


async def test_export_and_erase_are_documented(api: Client) -> None:
    doc = await (await api.get("/api/openapi.json")).json()
    export = doc["paths"]["/api/v1/customers/{customer_id}/export"]["get"]
    assert set(export["responses"]["200"]["content"]) == {"application/json", "application/zip"}
    erase = doc["paths"]["/api/v1/customers/{customer_id}/erase"]["post"]
    assert "409" in erase["responses"]


async def _close_at(client: Client, conversation_id: int, days_ago: float) -> None:
    hub = client.app[keys.HUB]
    await hub.conversations.close(conversation_id, agent_id=None, disposition="done")
    async with hub.sessions() as s, s.begin():
        await s.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(closed_at=utcnow() - timedelta(days=days_ago))
        )


async def test_retention_purges_the_content_of_conversations_closed_long_ago(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    hub = client.app[keys.HUB]
    old = await inbound(client, "+15550002000", "old secret", "r-1", name="Olga")
    recent = await inbound(client, "+15550003000", "recent words", "r-2")
    still_open = await inbound(client, "+15550004000", "open words", "r-3")
    async with hub.sessions() as s, s.begin():
        s.add(MessageAttachment(message_id=old["message_id"], filename="old.pdf", data=b"%PDF"))
    await _close_at(client, old["conversation_id"], days_ago=40)
    await _close_at(client, recent["conversation_id"], days_ago=5)
    before = await summary(client)

    counts = await purge_closed_before(hub.tx, utcnow() - timedelta(days=30))

    assert (counts.conversations, counts.messages, counts.attachments) == (1, 1, 1)
    async with hub.sessions() as s:
        texts = dict((await s.execute(select(Message.conversation_id, Message.text))).all())
        events = (
            await s.scalars(select(Event).where(Event.conversation_id == old["conversation_id"]))
        ).all()
        entries = (
            await s.scalars(select(AuditEntry).where(AuditEntry.action == "retention.purge"))
        ).all()
    assert texts == {
        old["conversation_id"]: "",
        recent["conversation_id"]: "recent words",
        still_open["conversation_id"]: "open words",
    }
    assert events
    assert all("old secret" not in json.dumps(e.payload) for e in events)
    assert len(entries) == 1
    assert entries[0].actor == "retention"
    assert entries[0].details["conversations"] == 1
    # The customer stays who they are; only the content went. Reports are unchanged.
    assert (await get(client, f"/api/v1/customers/{old['customer_id']}"))["display_name"] == "Olga"
    assert await summary(client) == before
    # A second run finds nothing left to purge and writes no audit entry.
    assert (await purge_closed_before(hub.tx, utcnow() - timedelta(days=30))).conversations == 0
    async with hub.sessions() as s:
        assert len((await s.scalars(select(AuditEntry))).all()) == 1


async def test_the_retention_task_purges_at_start(
    hub_client: ClientFactory, sqlite_url: str
) -> None:
    client = await hub_client()
    old = await inbound(client, "+15550002000", "old secret", "r-1")
    await _close_at(client, old["conversation_id"], days_ago=10)
    await client.close()

    client = await hub_client(database_url=sqlite_url, retention_days=7)
    hub = client.app[keys.HUB]
    for _ in range(100):
        async with hub.sessions() as s:
            text = await s.scalar(select(Message.text).where(Message.id == old["message_id"]))
        if text == "":
            break
        await asyncio.sleep(0.05)
    assert text == ""


def test_config_errors_never_show_passwords_or_secrets() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(database_url="mysql://hub:hunter2@db.internal/hub", api_token="t")
    message = str(err.value)
    assert "hunter2" not in message
    assert "mysql://hub:***@db.internal/hub" in message
    assert message.startswith("invalid setting HUB_DATABASE_URL:")
    with pytest.raises(ConfigError) as err:
        load_settings(telegram_bot_token=["123:do-not-print"], api_token="t")
    assert "do-not-print" not in str(err.value)
    assert "HUB_TELEGRAM_BOT_TOKEN" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_settings(redis_url="http://:s3cret@cache:6379/0", api_token="t")
    assert "s3cret" not in str(err.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://user:p@ss@host/db", "postgresql://user:***@host/db"),
        ("postgresql+asyncpg://user@host/db", "postgresql+asyncpg://user@host/db"),
        ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
        ("sqlite+aiosqlite:///var/hub.db", "sqlite+aiosqlite:///var/hub.db"),
        ("postgresql://host/db?user=u&password=pw", "postgresql://host/db?user=u&password=***"),
    ],
)
def test_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown
