"""Who may see and do what: every route and console command against every kind of caller,
and team visibility over REST and the console in the order work really moves."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from agent_console.commands import COMMAND_PERMISSIONS, COMMANDS
from contract.channel import InboundMessage
from hub.access import PERMISSIONS, allowed
from hub.accounts.principal import BOOTSTRAP, Principal, token_hash
from hub.web import keys
from hub.web.api.routes import api
from tests import factories
from tests.agent_console.test_gateway import Console
from tests.conftest import AUTH, ClientFactory

MISSING = 999_999  # ids for writes: the permission is decided before the row is looked up

# Routes that are not API operations, with who may use them and how they authenticate.
# A route in neither the API registry nor this table fails the test: every route has a rule.
NON_API = {
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/metrics"): "public (HUB_METRICS_TOKEN when set)",
    ("GET", "/api/openapi.json"): "public",
    ("GET", "/login"): "public",
    ("POST", "/login"): "public (throttled)",
    ("POST", "/logout"): "session",
    ("GET", "/console"): "session (redirects to /login)",
    ("GET", "/supervisor"): "supervisor session (redirects)",
    ("GET", "/admin"): "supervisor or admin session (redirects)",
    ("GET", "/admin/audit"): "admin session (redirects)",
    ("GET", "/admin/canned"): "supervisor or admin session (redirects)",
    ("GET", "/api/v1/me"): "session",
    ("GET", "/"): "public redirect",
    ("GET", "/ws/agent"): "session, same origin",
    ("GET", "/ws/supervisor"): "supervisor session, same origin",
    ("GET", "/csat/{token}"): "public: the survey link's random token",
    ("POST", "/csat/{token}"): "public: the survey link's random token (first answer counts)",
}
# Provider webhooks authenticate by the provider's signature or secret, never by our users.
WEBHOOK = re.compile(r"^/webhooks/")
STATIC = re.compile(r"^/static")


@dataclass
class Caller:
    name: str
    principal: Principal | None
    headers: dict[str, str]
    jar: aiohttp.CookieJar | None = None


async def _callers(client: TestClient[Any, Any]) -> list[Caller]:
    hub = client.app[keys.HUB]
    callers = [Caller("nobody", None, {}), Caller("bootstrap", BOOTSTRAP, dict(AUTH))]
    for scope in ("inbound", "read", "reports", "admin"):
        _, secret = await hub.tokens.create(name=f"t-{scope}", scopes=[scope], created_by="test")
        principal = await hub.tokens.principal_for(secret)
        callers.append(Caller(f"token:{scope}", principal, {"Authorization": f"Bearer {secret}"}))
    for username in ("ann", "bob", "nia", "sam", "ada"):
        jar = await factories.login(client, username)
        cookie = next(c.value for c in jar if c.key == "hub_session")
        principal = await hub.users.principal_for(token_hash(cookie))
        callers.append(Caller(username, principal, {}, jar))
    return callers


def _fill(path: str, ids: dict[str, int], method: str) -> str:
    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "name":
            return "qa"
        if method != "GET":
            return str(MISSING)
        return str({"customer_id": ids["cust_a"], "conversation_id": ids["conv_a"]}.get(name, 1))

    return re.sub(r"{(\w+)}", value, path)


async def _status(client: TestClient[Any, Any], caller: Caller, method: str, path: str) -> int:
    kwargs: dict[str, Any] = {"headers": caller.headers}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    async with (
        aiohttp.ClientSession(cookie_jar=caller.jar) as session,
        session.request(method, client.make_url(path), **kwargs) as resp,
    ):
        await resp.read()
        return resp.status


async def test_every_route_has_a_rule_and_every_caller_gets_what_the_rule_says(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    ids = await factories.two_team_floor(client.app[keys.HUB])
    callers = await _callers(client)
    checked = 0
    # Ending one's sessions goes last: the callers' logins serve every other route first.
    routes = sorted(
        client.app.router.routes(),
        key=lambda r: r.resource is not None and r.resource.canonical.endswith("everywhere"),
    )
    for route in routes:
        resource = route.resource
        assert resource is not None
        path, method = resource.canonical, route.method
        if method == "HEAD" or WEBHOOK.match(path) or STATIC.match(path):
            continue
        op = api.operation(method, path)
        if op is None:
            assert (method, path) in NON_API, f"{method} {path} has no access rule"
            continue
        assert op.access in PERMISSIONS, f"{method} {path}: no permission named"
        for caller in callers:
            status = await _status(client, caller, method, _fill(path, ids, method))
            if caller.principal is None:
                assert status == 401, (caller.name, method, path, status)
            elif allowed(caller.principal, op.access):
                assert status not in (401, 403), (caller.name, method, path, status)
            else:
                assert status == 403, (caller.name, method, path, status)
            checked += 1
    mounted = {(op.method, op.path) for op in api.operations}
    assert checked == len(mounted) * len(callers)
    assert len(mounted) >= 25


async def test_every_console_command_has_a_rule_and_every_role_gets_what_it_says(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    await factories.two_team_floor(client.app[keys.HUB])
    callers = [c for c in await _callers(client) if c.jar is not None]
    assert set(COMMANDS) == set(COMMAND_PERMISSIONS), "a console command has no rule"
    for caller in callers:
        assert caller.principal is not None
        assert caller.jar is not None
        console, _, _ = await Console.connect(client, caller.jar)
        try:
            for name in COMMANDS:
                answer = await console.cmd(name)  # no arguments: never does anything
                forbidden = answer["type"] == "error" and answer["data"]["code"] == "forbidden"
                expected = not allowed(caller.principal, COMMAND_PERMISSIONS[name])
                assert forbidden == expected, (caller.name, name, answer)
        finally:
            await console.close()


async def _visible_texts(client: TestClient[Any, Any], jar: aiohttp.CookieJar) -> dict[str, Any]:
    """What one person can find over REST: search results, and a getter for any path."""

    async def get(path: str) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession(cookie_jar=jar) as session,
            session.get(client.make_url(path)) as resp,
        ):
            return resp.status, await resp.json()

    _, found = await get("/api/v1/customers?q=%2B1202555")
    return {"search": sorted(c["id"] for c in found["items"]), "get": get}


async def test_team_a_cannot_see_team_b_until_b_transfers_it_to_a(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    hub = client.app[keys.HUB]
    ids = await factories.two_team_floor(client.app[keys.HUB])
    ann = await factories.login(client, "ann")
    view = await _visible_texts(client, ann)
    get = view["get"]
    assert view["search"] == [ids["cust_a"]]
    assert (await get(f"/api/v1/conversations/{ids['conv_a']}"))[0] == 200
    for path in (
        f"/api/v1/conversations/{ids['conv_b']}",
        f"/api/v1/conversations/{ids['conv_b']}/messages",
        f"/api/v1/customers/{ids['cust_b']}",
        f"/api/v1/customers/{ids['cust_b']}/history",
        f"/api/v1/customers/{ids['cust_b']}/conversations",
    ):
        status, body = await get(path)
        assert status == 404, (path, body)  # not even a hint that it exists
    # The console says the same, and team B's traffic never reaches ann's socket.
    console, _, _snapshot = await Console.connect(client, ann)
    opened = await console.cmd("open", conversation_id=ids["conv_b"])
    assert opened["data"]["code"] == "not_found"
    history = await console.cmd("history", customer_id=ids["cust_b"])
    assert history["data"]["code"] == "not_found"
    await hub.ingest(
        InboundMessage(
            channel="api",
            sender_kind="phone",
            sender="+12025550202",
            provider_id="b-more",
            text="more secrets of qb",
        )
    )
    # Team B's supervisor-free floor: bob is offered and accepts it, then transfers it to A.
    bob = await hub.users.principal_for(
        token_hash(
            next(c.value for c in await factories.login(client, "bob") if c.key == "hub_session")
        )
    )
    assert bob is not None
    assert bob.agent_id is not None
    offer = await hub.work.create_offer(ids["conv_b"], bob.agent_id)
    assert offer is not None
    await hub.work.accept(offer, bob.agent_id)
    await hub.work.transfer(ids["conv_b"], by=bob.agent_id, to_queue="qa")
    # Now team A sees it, its history, and its customer; the socket follows new content.
    status, body = await get(f"/api/v1/conversations/{ids['conv_b']}/messages")
    assert status == 200
    assert "more secrets of qb" in [m["text"] for m in body["items"]]
    assert (await get(f"/api/v1/customers/{ids['cust_b']}"))[0] == 200
    assert sorted(c["id"] for c in (await get("/api/v1/customers?q=%2B1202555"))[1]["items"]) == (
        sorted([ids["cust_a"], ids["cust_b"]])
    )
    opened = await console.cmd("open", conversation_id=ids["conv_b"])
    assert opened["type"] == "ack"
    assert "more secrets of qb" in [m["text"] for m in opened["data"]["result"]["history"]["items"]]
    leaked = [e for e in console.events if e.get("conversation_id") == ids["conv_b"]]
    assert not any(e["type"] == "message.received" for e in leaked), leaked
    await console.close()
    # Team B keeps what it worked on; an agent of no team never saw either.
    nia = await _visible_texts(client, await factories.login(client, "nia"))
    assert nia["search"] == []
    assert (await nia["get"](f"/api/v1/conversations/{ids['conv_a']}"))[0] == 404


async def test_people_never_post_as_customers_and_tokens_only_do_their_scope(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    await factories.two_team_floor(client.app[keys.HUB])
    callers = {c.name: c for c in await _callers(client)}
    body = {"from": "+12025550303", "text": "forged", "external_id": "x1"}
    for name in ("ann", "sam", "ada"):
        caller = callers[name]
        async with aiohttp.ClientSession(cookie_jar=caller.jar) as session:
            resp = await session.post(client.make_url("/api/v1/inbound"), json=body)
            assert resp.status == 403, name
    inbound = callers["token:inbound"]
    resp = await client.post("/api/v1/inbound", json=body, headers=inbound.headers)
    assert resp.status == 201
    # The inbound token reads nothing; the read token writes nothing.
    conv = (await resp.json())["conversation_id"]
    read = await client.get(f"/api/v1/conversations/{conv}", headers=inbound.headers)
    assert read.status == 403
    reader = callers["token:read"]
    assert (await client.get(f"/api/v1/conversations/{conv}", headers=reader.headers)).status == 200
    wrote = await client.post(
        f"/api/v1/conversations/{conv}/messages", json={"text": "x"}, headers=reader.headers
    )
    assert wrote.status == 403


@pytest.mark.parametrize("scope", ["bogus", ""])
async def test_unknown_scopes_are_refused(hub_client: ClientFactory, scope: str) -> None:
    client = await hub_client()
    with pytest.raises(Exception, match="scopes must be"):
        await client.app[keys.HUB].tokens.create(name="x", scopes=[scope], created_by="t")


async def test_serving_a_customer_shows_their_whole_history_across_teams(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    ids = await factories.two_team_floor(client.app[keys.HUB])
    # The customer of team B's conversation now writes on another channel into team A's queue.
    again = await hub.ingest(
        InboundMessage(
            channel="sms",
            sender_kind="phone",
            sender="+12025550202",
            provider_id="SM-later",
            text="hello again, by SMS",
            queue="qa",
        )
    )
    assert again.customer_id == ids["cust_b"]
    assert again.conversation_id != ids["conv_b"]
    view = await _visible_texts(client, await factories.login(client, "ann"))
    status, page = await view["get"](f"/api/v1/customers/{ids['cust_b']}/history")
    assert status == 200
    assert {m["text"] for m in page["items"]} >= {"secret of qb", "hello again, by SMS"}


async def test_a_note_for_the_team_is_read_only_by_that_team(hub_client: ClientFactory) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    ids = await factories.two_team_floor(client.app[keys.HUB])
    conv = ids["conv_a"]
    ann, bob = await factories.login(client, "ann"), await factories.login(client, "bob")
    # Team A hands the conversation to bob of team B; both teams may now read it.
    await hub.work.transfer(conv, by=None, to_agent=ids["bob"])
    bob_console, _, _ = await Console.connect(client, bob)
    opened = await bob_console.cmd("open", conversation_id=conv)
    assert opened["type"] == "ack"
    async with aiohttp.ClientSession(cookie_jar=ann) as session:
        for text, visibility in (("billing dispute, ask Ben", "team"), ("called back", "all")):
            resp = await session.post(
                client.make_url(f"/api/v1/conversations/{conv}/messages"),
                json={"text": text, "note": True, "visibility": visibility},
            )
            assert resp.status == 201, await resp.text()
    # bob's console gets the note for everyone, not team A's.
    seen = await bob_console.until_event("note.added")
    assert seen["payload"]["text"] == "called back"
    assert all(e["payload"].get("text") != "billing dispute, ask Ben" for e in bob_console.events)
    await bob_console.close()

    async def notes(jar: aiohttp.CookieJar | None, headers: dict[str, str]) -> set[str]:
        async with (
            aiohttp.ClientSession(cookie_jar=jar) as session,
            session.get(
                client.make_url(f"/api/v1/conversations/{conv}/messages"), headers=headers
            ) as resp,
        ):
            assert resp.status == 200
            items = (await resp.json())["items"]
            return {m["text"] for m in items if m["direction"] == "note"}

    both = {"billing dispute, ask Ben", "called back"}
    assert await notes(bob, {}) == {"called back"}
    assert await notes(ann, {}) == both
    assert await notes(await factories.login(client, "sam"), {}) == both  # team A's supervisor
    assert await notes(None, AUTH) == both
    # An agent of no team cannot write a team note.
    nia = await factories.login(client, "nia")
    await hub.work.transfer(conv, by=None, to_agent=ids["nia"])
    async with aiohttp.ClientSession(cookie_jar=nia) as session:
        resp = await session.post(
            client.make_url(f"/api/v1/conversations/{conv}/messages"),
            json={"text": "x", "note": True, "visibility": "team"},
        )
        assert resp.status == 400
