"""Report API on SQLite and PostgreSQL: the database rollups give the pure fold's figures."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from hub import reports as r
from hub.reports import rollup
from hub.web import keys
from hub.web.api import reports as _reports  # noqa: F401 - registers the report routes
from hub.work.offers import abandon_conversation
from storage.models import Agent, Event, StreamHead
from tests.conftest import AUTH, ClientFactory
from tests.reports.sequences import (
    AGENT_1,
    AGENT_2,
    BOT,
    BOTS,
    HOURS,
    T0,
    Log,
    business_day,
    known_day,
)

Client = TestClient[Any, Any]
RANGE = {"from": (T0 - timedelta(hours=1)).isoformat(), "to": (T0 + timedelta(hours=2)).isoformat()}
SPEC = r.ReportSpec(start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=2))


async def seed_agents(client: Client) -> None:
    async with client.app[keys.HUB].sessions() as s, s.begin():
        s.add_all(
            [
                Agent(id=AGENT_1, username="ann", display_name="Ann", role="agent"),
                Agent(id=AGENT_2, username="bob", display_name="Bob", role="agent"),
                Agent(id=BOT, username="helper-bot", display_name="Bot", role="bot"),
            ]
        )


async def store(client: Client, events: list[r.EventRecord]) -> list[r.EventRecord]:
    """Append events after the stream head, as the hub would; returns them with their seqs."""
    stored = []
    async with client.app[keys.HUB].sessions() as s, s.begin():
        head = int(await s.scalar(select(StreamHead.seq).where(StreamHead.id == 1)) or 0)
        for i, e in enumerate(events, 1):
            s.add(
                Event(
                    seq=head + i,
                    type=e.type,
                    created_at=e.at,
                    conversation_id=e.conversation_id,
                    agent_id=e.agent_id,
                    queue=e.queue,
                    channel=e.channel,
                    payload=dict(e.payload),
                )
            )
            stored.append(
                r.EventRecord(
                    seq=head + i,
                    type=e.type,
                    at=e.at,
                    conversation_id=e.conversation_id,
                    agent_id=e.agent_id,
                    queue=e.queue,
                    channel=e.channel,
                    payload=e.payload,
                )
            )
        await s.execute(update(StreamHead).where(StreamHead.id == 1).values(seq=head + len(events)))
    return stored


async def get_json(client: Client, path: str, **params: Any) -> dict[str, Any]:
    resp = await client.get(path, params={**RANGE, **params}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def figures(report: dict[str, Any]) -> dict[str, Any]:
    return {k: report[k] for k in ("total", "out_of_hours", "by_channel", "rows")}


def pure_summary(events: list[r.EventRecord], spec: r.ReportSpec = SPEC) -> dict[str, Any]:
    report = r.report_events(events, spec, bots=BOTS)
    return figures(report.model_dump(mode="json"))


async def test_summary_from_the_database_equals_the_pure_fold(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    await seed_agents(client)
    events = await store(client, known_day())

    body = await get_json(client, "/api/v1/reports/summary", thresholds="20")

    total = body["total"]
    assert (total["contacts"], total["answered"], total["abandoned"]) == (10, 8, 2)
    assert total["asa_s"] == 15.125
    assert total["abandonment_rate"] == 0.2
    assert total["service_levels"] == [
        {"threshold_s": 20.0, "counting_abandons": 0.7, "answered_only": 0.75}
    ]
    assert figures(body) == pure_summary(events)
    assert body["as_of_seq"] == events[-1].seq


async def test_rollup_catches_up_incrementally_across_open_contacts(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    await seed_agents(client)
    day = known_day()
    first = await store(client, day[:45])  # contacts and agent holds are mid-way here
    assert figures(await get_json(client, "/api/v1/reports/summary")) == pure_summary(first)
    rest = await store(client, day[45:])
    for group_by in ("queue", "agent", "channel"):
        spec = r.ReportSpec(start=SPEC.start, end=SPEC.end, group_by=group_by)
        body = await get_json(client, "/api/v1/reports/summary", group_by=group_by)
        assert figures(body) == pure_summary(first + rest, spec)
    # Rebuilding in tiny batches folds to the same rollups.
    async with client.app[keys.HUB].sessions() as s:
        await rollup.rebuild(s)
        assert await rollup.catch_up(s, batch=7) == rest[-1].seq
    assert figures(await get_json(client, "/api/v1/reports/summary")) == pure_summary(first + rest)


async def test_concurrent_catch_ups_with_readers_fold_each_event_once(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    await seed_agents(client)
    events = await store(client, known_day())
    hub = client.app[keys.HUB]
    async with hub.sessions() as s:
        await rollup.rebuild(s)

    async def fold() -> int:
        # reads on a connection of their own, claims and writes on the writer's: the two
        # race for every batch and the loser of each claim drops what it read
        async with hub.sessions() as session, hub.read_sessions() as reader:
            return await rollup.catch_up(session, batch=3, reader=reader)

    assert list(await asyncio.gather(fold(), fold())) == [events[-1].seq] * 2
    assert figures(await get_json(client, "/api/v1/reports/summary")) == pure_summary(events)


async def test_timeseries_and_its_csv_export(hub_client: ClientFactory, db_url: str) -> None:
    client = await hub_client(database_url=db_url)
    await seed_agents(client)
    events = await store(client, known_day())
    spec = r.ReportSpec(start=SPEC.start, end=SPEC.end, bucket="hour")
    ctx = r.ReportContext()
    pure = r.timeseries(
        r.contact_partials(r.fold(events, bots=BOTS).contacts, spec, ctx), spec, ctx
    )

    body = await get_json(client, "/api/v1/reports/timeseries", bucket="hour")
    assert body["points"] == pure.model_dump(mode="json")["points"]
    assert [p["contacts"] for p in body["points"]] == [0, 6, 4]

    resp = await client.get(
        "/api/v1/reports/timeseries",
        params={**RANGE, "bucket": "hour", "format": "csv", "thresholds": "20,30"},
        headers=AUTH,
    )
    assert resp.status == 200
    assert resp.content_type == "text/csv"
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="timeseries-')
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert len(rows) == 3
    assert rows[2]["contacts"] == "4"
    assert rows[2]["sl_20_counting_abandons"] == "0.25"
    assert rows[2]["sl_30_counting_abandons"] == "0.75"  # 21 s answer and 30 s abandon count
    assert rows[1]["asa_s"] == str(round(55 / 6, 3))


async def test_agents_report_matches_the_pure_fold(hub_client: ClientFactory, db_url: str) -> None:
    client = await hub_client(database_url=db_url)
    await seed_agents(client)
    events = await store(client, known_day())
    facts = r.fold(events, bots=BOTS)
    spec = r.ReportSpec(start=SPEC.start, end=SPEC.end, group_by="agent")
    ctx = r.ReportContext()
    now = (T0 + timedelta(days=1)).timestamp()  # the range is in the past: clipped to its end
    pure = r.agents_report(
        r.contact_partials(facts.contacts, spec, ctx),
        r.agent_work(facts.handles, facts.intervals, spec, now=now),
        spec,
        people={AGENT_1: ("Ann", ""), AGENT_2: ("Bob", "")},
    )

    body = await get_json(client, "/api/v1/reports/agents")
    assert body["items"] == pure.model_dump(mode="json")["items"]
    ann = body["items"][0]
    assert (ann["name"], ann["handled"], ann["aht_s"], ann["occupancy"]) == (
        "Ann",
        5,
        108.0,
        round(660 / 5600, 6),
    )

    resp = await client.get(
        "/api/v1/reports/agents", params={**RANGE, "format": "csv"}, headers=AUTH
    )
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert [row["name"] for row in rows] == ["Ann", "Bob"]
    assert rows[1]["state_offline_s"] == "5200.0"


async def test_wait_distribution_and_staffing(hub_client: ClientFactory, db_url: str) -> None:
    client = await hub_client(database_url=db_url)
    await seed_agents(client)
    await store(client, known_day())

    dist = await get_json(client, "/api/v1/reports/wait-distribution", edges="5,10,20,30,60")
    assert [b["answered"] for b in dist["bins"]] == [3, 0, 3, 1, 1, 0]
    assert [b["abandoned"] for b in dist["bins"]] == [0, 1, 0, 1, 0, 0]
    resp = await client.get(
        "/api/v1/reports/wait-distribution", params={**RANGE, "format": "csv"}, headers=AUTH
    )
    lines = (await resp.text()).splitlines()
    assert lines[0] == "low_s,high_s,answered,abandoned"

    plan = await get_json(
        client,
        "/api/v1/reports/staffing",
        arrivals_per_hour="200",
        aht_s="180",
        target_sl="0.8",
        threshold_s="20",
    )
    assert plan["rows"][0]["agents"] == 14
    assert not plan["arrivals_from_history"]
    by_c = {row["agents"]: row for row in plan["around"]}
    assert round(by_c[13]["service_level"], 4) == 0.7956

    # From history: 10 arrivals over 3 hours, AHT 105 s + 30 s after-contact work.
    history = await get_json(client, "/api/v1/reports/staffing", target_sl="0.8")
    assert history["arrivals_from_history"]
    assert history["aht_from_history"]
    assert history["rows"][0]["arrivals_per_hour"] == round(10 / 3, 3)
    assert history["aht_s"] == 135.0
    assert history["rows"][0]["agents"] >= 1


async def test_business_hours_of_a_queue_split_the_summary(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    resp = await client.put(
        "/api/v1/queues/sales", json={"team": "retail", "options": HOURS}, headers=AUTH
    )
    assert resp.status in (200, 201), await resp.text()
    await seed_agents(client)
    await store(client, business_day())
    wide = {
        "from": (T0 - timedelta(days=1)).isoformat(),
        "to": (T0 + timedelta(days=7)).isoformat(),
    }

    body = await get_json(client, "/api/v1/reports/summary", **wide, group_by="team")
    assert (body["total"]["contacts"], body["total"]["asa_s"]) == (2, 10.0)
    assert (body["out_of_hours"]["contacts"], body["out_of_hours"]["asa_s"]) == (2, 305.0)
    assert [(row["key"], row["out_of_hours_contacts"]) for row in body["rows"]] == [("retail", 2)]
    team = await get_json(client, "/api/v1/reports/summary", **wide, team="retail")
    assert team["total"]["contacts"] == 2
    series = await get_json(
        client, "/api/v1/reports/timeseries", **wide, bucket="day", tz="Europe/Paris"
    )
    by_day = {
        p["start"][:10]: (p["contacts"], p["out_of_hours_contacts"]) for p in series["points"]
    }
    assert by_day["2026-03-02"] == (2, 1)
    assert by_day["2026-03-07"] == (0, 1)


async def test_contacts_through_the_hub_are_reported(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    hub = client.app[keys.HUB]
    agent = await hub.users.create(username="agent1", password="long enough pw", role="agent")
    conversations = []
    for i in range(3):
        resp = await client.post(
            "/api/v1/inbound",
            json={"from": f"+1555000{i:04d}", "text": f"help {i}", "external_id": f"r-{i}"},
            headers=AUTH,
        )
        assert resp.status == 201, await resp.text()
        conversations.append((await resp.json())["conversation_id"])
    for conv in conversations[:2]:
        offer = await hub.work.create_offer(conv, agent)
        assert offer is not None
        await hub.work.accept(offer, agent)
        await hub.conversations.reply(conv, text="On it", author_id=agent)
        await hub.conversations.reply(conv, text="internal", author_id=agent, note=True)
        await hub.work.wrap_up(conv, agent_id=agent)
        await hub.conversations.close(conv, agent_id=agent, disposition="complaint")
    assert await abandon_conversation(hub.tx, conversations[2], "customer left")

    body = await get_json(client, "/api/v1/reports/summary", **{"from": "", "to": ""})
    total = body["total"]
    assert (total["contacts"], total["answered"], total["abandoned"]) == (3, 2, 1)
    assert (total["first_responses"], total["handled"], total["closed"]) == (2, 2, 2)
    assert total["complaints"] == 2
    assert total["service_levels"][0]["answered_only"] == 1.0
    assert body["by_channel"] == [{"channel": "api", "contacts": 3, "out_of_hours_contacts": 0}]


async def test_reports_require_a_supervisor_and_valid_parameters(api: Client) -> None:
    hub = api.app[keys.HUB]
    await hub.users.create(username="agent1", password="long enough pw", role="agent")
    resp = await api.get("/api/v1/reports/summary")
    assert resp.status == 401
    login = await api.post("/login", json={"username": "agent1", "password": "long enough pw"})
    assert login.status == 200
    resp = await api.get("/api/v1/reports/summary")
    assert resp.status == 403
    api.session.cookie_jar.clear()
    for params in (
        {"from": "yesterday"},
        {"from": "2026-03-02T10:00:00+00:00", "to": "2026-03-02T09:00:00+00:00"},
        {"tz": "Mars/Base"},
        {"thresholds": "20,abc"},
        {"group_by": "planet"},
        {"format": "xml"},
        {"agent": "ann"},
        {"from": "2026-01-01T00:00:00+00:00", "to": "2026-03-02T00:00:00+00:00", "bucket": "15m"},
    ):
        path = "/api/v1/reports/timeseries" if "bucket" in params else "/api/v1/reports/summary"
        resp = await api.get(path, params=params, headers=AUTH)
        assert resp.status == 400, (params, await resp.text())
        assert (await resp.json())["error"] == "invalid_input"
    # A "+hh:mm" offset typed unescaped in a URL arrives as a space; it is still understood.
    resp = await api.get(
        "/api/v1/reports/summary?from=2026-03-02T08:00:00+01:00&to=2026-03-02T09:00:00+01:00",
        headers=AUTH,
    )
    assert resp.status == 200
    assert (await resp.json())["start"] == "2026-03-02T08:00:00+01:00"
    resp = await api.get("/api/v1/reports/summary", params={"team": "nobody"}, headers=AUTH)
    assert resp.status == 404
    resp = await api.get("/api/v1/reports/staffing", params={"target_sl": "2"}, headers=AUTH)
    assert resp.status == 400


async def test_report_operations_are_in_a_valid_openapi_document(api: Client) -> None:
    from openapi_spec_validator import validate

    doc = await (await api.get("/api/openapi.json")).json()
    validate(doc)
    for name in ("summary", "timeseries", "agents", "wait-distribution", "staffing"):
        op = doc["paths"][f"/api/v1/reports/{name}"]["get"]
        assert op["tags"] == ["reports"]
        assert "format" in {p["name"] for p in op["parameters"]}
        assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]


@pytest.mark.parametrize("path", ["/api/v1/reports/summary", "/api/v1/reports/agents"])
async def test_an_empty_database_reports_zeros(api: Client, path: str) -> None:
    resp = await api.get(path, headers=AUTH)
    assert resp.status == 200
    body = await resp.json()
    if "total" in body:
        assert body["total"]["contacts"] == 0
        assert body["total"]["asa_s"] is None
    else:
        assert body["items"] == []


async def test_prometheus_exposes_live_queue_figures(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    hub = client.app[keys.HUB]
    agent = await hub.users.create(username="agent1", password="long enough pw", role="agent")
    conversations = []
    for i in range(3):
        resp = await client.post(
            "/api/v1/inbound",
            json={"from": f"+1555100{i:04d}", "text": "hello", "external_id": f"m-{i}"},
            headers=AUTH,
        )
        conversations.append((await resp.json())["conversation_id"])
    offer = await hub.work.create_offer(conversations[0], agent)
    assert offer is not None
    await hub.work.accept(offer, agent)

    text = await (await client.get("/metrics")).text()
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("hub_queue_")
    }
    assert samples['hub_queue_waiting{queue="support"}'] == 2
    assert samples['hub_queue_longest_wait_seconds{queue="support"}'] >= 0
    assert samples['hub_queue_contacts_today{queue="support"}'] == 3
    key = 'hub_queue_service_level_today{mode="answered_only",queue="support",threshold_s="20"}'
    assert samples[key] == 1.0
    assert samples['hub_queue_abandonment_rate_today{queue="support"}'] == 0.0


async def test_business_hours_in_sql_follow_daylight_saving(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    resp = await client.put("/api/v1/queues/sales", json={"options": HOURS}, headers=AUTH)
    assert resp.status in (200, 201), await resp.text()
    paris = ZoneInfo("Europe/Paris")  # summer time from 2026-03-29
    log = Log()
    arrivals = [
        datetime(2026, 3, 27, 7, 50, tzinfo=paris),  # Friday, winter: closed
        datetime(2026, 3, 27, 8, 0, tzinfo=paris),  # open
        datetime(2026, 3, 30, 7, 45, tzinfo=paris),  # Monday, summer: closed
        datetime(2026, 3, 30, 17, 45, tzinfo=paris),  # open
        datetime(2026, 3, 30, 18, 0, tzinfo=paris),  # closed
    ]
    for conv, when in enumerate(arrivals, 1):
        log.add("conversation.created", (when - T0).total_seconds(), conv, queue="sales")
    events = await store(client, log.sorted())
    wide = {"from": "2026-03-26T00:00:00+00:00", "to": "2026-04-01T00:00:00+00:00"}
    body = await get_json(client, "/api/v1/reports/summary", **wide)
    assert (body["total"]["contacts"], body["out_of_hours"]["contacts"]) == (2, 3)
    hours = r.parse_business_hours(HOURS)
    assert hours is not None
    ctx = r.ReportContext(hours={"sales": hours})
    spec = r.ReportSpec(
        start=datetime(2026, 3, 26, tzinfo=UTC), end=datetime(2026, 4, 1, tzinfo=UTC)
    )
    pure = r.summary(r.contact_partials(r.fold(events).contacts, spec, ctx), spec, ctx)
    assert figures(body) == figures(pure.model_dump(mode="json"))
