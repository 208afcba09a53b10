"""The inbound/read API contract, on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import BaseModel

from hub.web.api.openapi import ApiRegistry
from tests.conftest import AUTH, ClientFactory


async def post(client: TestClient[Any, Any], body: Any, **kw: Any) -> Any:
    return await client.post("/api/v1/inbound", json=body, headers=kw.pop("headers", AUTH), **kw)


async def head(client: TestClient[Any, Any]) -> int:
    resp = await client.get("/api/v1/events?after=0&limit=1000", headers=AUTH)
    return int((await resp.json())["head"])


async def test_inbound_creates_customer_conversation_and_message(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    resp = await post(
        client, {"from": "+1 (202) 555-0143", "name": "Carla", "text": "hi", "external_id": "e1"}
    )
    assert resp.status == 201
    ids = await resp.json()
    assert set(ids) == {"customer_id", "conversation_id", "message_id"}

    again = await post(
        client, {"from": "+12025550143", "name": "Carla", "text": "hi", "external_id": "e1"}
    )
    assert again.status == 200
    assert await again.json() == ids

    found = await client.get("/api/v1/customers?phone=%2B12025550143", headers=AUTH)
    items = (await found.json())["items"]
    assert [c["id"] for c in items] == [ids["customer_id"]]
    assert items[0]["endpoints"] == [
        {
            "kind": "phone",
            "address": "+12025550143",
            "verified": False,
            "opted_out": [],
            "undeliverable": "",
        }
    ]
    assert items[0]["display_name"] == "Carla"

    hist = await client.get(f"/api/v1/customers/{ids['customer_id']}/history", headers=AUTH)
    page = await hist.json()
    assert [m["id"] for m in page["items"]] == [ids["message_id"]]
    msg = page["items"][0]
    assert (msg["channel"], msg["direction"], msg["text"], msg["provider_id"]) == (
        "api",
        "in",
        "hi",
        "e1",
    )
    assert page["next"] is None

    conv = await (
        await client.get(f"/api/v1/conversations/{ids['conversation_id']}", headers=AUTH)
    ).json()
    assert conv["state"] == "queued"
    assert conv["customer_id"] == ids["customer_id"]
    msgs = await (
        await client.get(f"/api/v1/conversations/{ids['conversation_id']}/messages", headers=AUTH)
    ).json()
    assert [m["id"] for m in msgs["items"]] == [ids["message_id"]]
    # created + received, and the duplicate appended nothing
    assert await head(client) == 3


async def test_bad_input_gets_4xx_and_stores_nothing(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url, max_body_bytes=2048)
    good = {"from": "+12025550143", "text": "x", "external_id": "e"}
    cases: list[tuple[Any, dict[str, str], int]] = [
        (b"{not json", AUTH, 400),
        ({"text": "no sender", "external_id": "e"}, AUTH, 400),
        ({"from": "+12025550143", "external_id": "e"}, AUTH, 400),
        ({"from": "+12025550143", "text": "x"}, AUTH, 400),
        ({**good, "surprise": 1}, AUTH, 400),
        ({**good, "from": "not a phone !!"}, AUTH, 400),
        ({**good, "text": "x" * 5000}, AUTH, 413),
        (good, {"Authorization": "Bearer wrong"}, 401),
        (good, {}, 401),
    ]
    for body, headers, status in cases:
        if isinstance(body, bytes):
            resp = await client.post(
                "/api/v1/inbound",
                data=body,
                headers={**headers, "Content-Type": "application/json"},
            )
        else:
            resp = await post(client, body, headers=headers)
        assert resp.status == status, (body, await resp.text())
        err = await resp.json()
        assert err["error"]
        assert err["detail"]
    customers = await (await client.get("/api/v1/customers?q=", headers=AUTH)).json()
    assert customers["items"] == []
    assert await head(client) == 0


async def test_history_pages_with_keyset_cursor_across_channels(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    ids = []
    for i in range(7):
        resp = await post(
            client, {"from": "alice@example.org", "text": f"m{i}", "external_id": f"h{i}"}
        )
        ids.append((await resp.json())["message_id"])
    cid = (await resp.json())["customer_id"]
    seen: list[int] = []
    cursor = None
    while True:
        url = f"/api/v1/customers/{cid}/history?limit=3" + (f"&before={cursor}" if cursor else "")
        page = await (await client.get(url, headers=AUTH)).json()
        seen += [m["id"] for m in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    bad = await client.get(f"/api/v1/customers/{cid}/history?before=zzz", headers=AUTH)
    assert bad.status == 400
    missing = await client.get("/api/v1/customers/999999/history", headers=AUTH)
    assert missing.status == 404


async def test_email_addresses_match_case_insensitively(api: TestClient[Any, Any]) -> None:
    a = await (
        await post(api, {"from": "alice@example.org", "text": "1", "external_id": "1"})
    ).json()
    b = await (
        await post(api, {"from": "ALICE@EXAMPLE.ORG", "text": "2", "external_id": "2"})
    ).json()
    assert a["customer_id"] == b["customer_id"]
    found = await (await api.get("/api/v1/customers?email=Alice@Example.org", headers=AUTH)).json()
    assert [c["id"] for c in found["items"]] == [a["customer_id"]]


async def test_openapi_document_is_valid_3_1(api: TestClient[Any, Any]) -> None:
    from openapi_spec_validator import validate

    doc = await (await api.get("/api/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    validate(doc)
    assert "/api/v1/inbound" in doc["paths"]
    assert "/api/v1/customers/{customer_id}/history" in doc["paths"]


async def test_health_readiness_and_metrics(api: TestClient[Any, Any]) -> None:
    assert (await api.get("/healthz")).status == 200
    ready = await api.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["checks"]["database"] == "ok"
    await post(api, {"from": "+12025550143", "text": "x", "external_id": "m1"})
    text = await (await api.get("/metrics")).text()
    assert 'hub_http_requests_total{method="POST",route="/api/v1/inbound",status="201"} 1.0' in text
    assert 'hub_conversations{queue="support",state="queued"} 1.0' in text


async def test_out_of_range_numbers_dates_and_bodies_get_4xx_not_5xx(
    api: TestClient[Any, Any],
) -> None:
    """Inputs Schemathesis found (or that its findings pointed at) once answered 500 or held
    the event loop; each is a clear 400 now."""
    await post(api, {"from": "+12025550143", "text": "x", "external_id": "e"})
    huge = "9" * 25
    gets = [
        "/api/v1/customers?limit=%C2%B2",  # "²".isdigit() is true, int("²") fails
        f"/api/v1/customers/{huge}",  # beyond BIGINT: the driver overflowed
        f"/api/v1/customers/{huge}/history",
        "/api/v1/customers/0",
        f"/api/v1/events?after={huge}",
        "/api/v1/events?after=%C2%B2",
        f"/api/v1/reports/summary?agent={huge}",
        "/api/v1/reports/summary?agent=%C2%B2",
        "/api/v1/reports/timeseries?from=9999-12-31T00:00&to=9999-12-31T23:00&bucket=15m",
        "/api/v1/reports/summary?from=0001-01-01&to=0001-01-02",
        # Erlang C on 2.8e9 Erlangs ran for minutes on the event loop.
        "/api/v1/reports/staffing?aht_s=1e300&arrivals_per_hour=10000000",
        "/api/v1/reports/staffing?aht_s=86400&arrivals_per_hour=1000",
        "/api/v1/reports/staffing?aht_s=100&arrivals_per_hour=1&threshold_s=-5",
    ]
    for url in gets:
        resp = await api.get(url, headers=AUTH)
        assert resp.status == 400, (url, resp.status, await resp.text())
        assert (await resp.json())["error"] == "invalid_input"
    found = await (await api.get(f"/api/v1/customers?q={huge}", headers=AUTH)).json()
    assert found["items"] == []

    writes: list[tuple[str, str, bytes]] = [
        ("POST", "/api/v1/customers/1/merge", f'{{"other_id": -{huge}}}'.encode()),
        ("POST", "/api/v1/customers/1/merge", f'{{"other_id": {huge}}}'.encode()),
        ("POST", f"/api/v1/conversations/{huge}/messages", b'{"text": "hi"}'),
        ("PUT", "/api/v1/queues/q1", b'{"priority": 99999999999}'),
        ("PUT", "/api/v1/queues/q1", b'{"steps": [{"timeout_s": 1e999}]}'),
        ("PUT", "/api/v1/queues/q1", b'{"steps": [{"timeout_s": NaN}]}'),
        ("PUT", "/api/v1/queues/q1", b'{"team": "' + b"t" * 101 + b'"}'),
        ("POST", "/api/v1/inbound", b"[" * 100_000),
    ]
    for method, url, body in writes:
        resp = await api.request(
            method, url, data=body, headers={**AUTH, "Content-Type": "application/json"}
        )
        assert resp.status == 400, (url, body[:60], resp.status, await resp.text())


async def test_openapi_documents_every_status_and_media_type_a_handler_sends(
    api: TestClient[Any, Any],
) -> None:
    doc = await (await api.get("/api/openapi.json")).json()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            assert {"400", "401", "403", "404", "409"} <= codes, (method, path)
            assert ("413" in codes) == ("requestBody" in op), (method, path)
            for name in (p["name"] for p in op.get("parameters", []) if p["in"] == "path"):
                assert name.endswith("_id") or name == "name", (path, name)
    queue = doc["paths"]["/api/v1/queues/{name}"]["put"]["parameters"][0]
    assert queue["schema"]["type"] == "string"
    summary = doc["paths"]["/api/v1/reports/summary"]["get"]["responses"]["200"]
    assert set(summary["content"]) == {"application/json", "text/csv"}


def test_two_models_of_one_name_cannot_share_a_component() -> None:
    """The phone KPIs' first ``ServiceLevel`` silently replaced the reports' one: the document
    then described the reports wrongly (Schemathesis found it). Now building it fails."""

    def one() -> type[BaseModel]:
        class Level(BaseModel):
            a: int

        return Level

    def other() -> type[BaseModel]:
        class Level(BaseModel):
            b: str

        return Level

    registry = ApiRegistry()

    async def first(request: Any) -> Any: ...

    async def second(request: Any) -> Any: ...

    registry.route("GET", "/a", summary="a", tag="t", responses={200: one()})(first)
    registry.route("GET", "/b", summary="b", tag="t", responses={200: other()})(second)
    with pytest.raises(ValueError, match="'Level'"):
        registry.openapi(title="t", version="1")
