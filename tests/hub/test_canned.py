"""Canned responses and dispositions: who manages and sees which, placeholders filled but
never evaluated, search order, and a queue that requires a disposition to close."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from contract.errors import InvalidInput
from hub.web import keys
from hub.work.canned import Placeholders, expand, first_name
from storage.models import Conversation, Customer
from tests import factories
from tests.agent_console.test_gateway import Console
from tests.conftest import ClientFactory

SEEDED = {"greet", "checking", "refund", "bye"}


class Caller:
    """A logged-in person's REST calls (session cookie)."""

    def __init__(self, client: TestClient[Any, Any], jar: aiohttp.CookieJar) -> None:
        self.client = client
        self.jar = jar

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession(cookie_jar=self.jar) as session,
            session.request(method, self.client.make_url(path), json=body) as resp,
        ):
            data = await resp.json() if resp.status != 204 else None
            return resp.status, data


async def _setup(hub_client: ClientFactory) -> tuple[TestClient[Any, Any], dict[str, Any]]:
    client = await hub_client()
    ids: dict[str, Any] = dict(await factories.two_team_floor(client.app[keys.HUB]))
    for name in ("ann", "bob", "sam", "ada"):
        ids[name] = Caller(client, await factories.login(client, name))
    hub = client.app[keys.HUB]
    async with hub.sessions() as s, s.begin():
        customer = await s.get_one(Customer, ids["cust_a"])
        customer.display_name = "Li Wei"
        customer.language = "zh"
    return client, ids


def _shortcuts(data: dict[str, Any]) -> set[str]:
    return {item["shortcut"] for item in data["items"]}


async def test_an_agent_cannot_create_a_canned_response_a_supervisor_writes_for_their_team(
    hub_client: ClientFactory,
) -> None:
    _, ids = await _setup(hub_client)
    ann, sam = ids["ann"], ids["sam"]
    body = {"shortcut": "eta", "title": "ETA", "text": "It ships tomorrow, {customer.first_name}."}

    status, _ = await ann.call("POST", "/api/v1/canned-responses", body)
    assert status == 403
    status, created = await sam.call("POST", "/api/v1/canned-responses", body)
    assert status == 201, created
    assert created["team"] == "A"
    assert created["created_by"] == "sam"
    status, _ = await sam.call("POST", "/api/v1/canned-responses", {**body, "team": "B"})
    assert status == 403
    status, _ = await sam.call("POST", "/api/v1/canned-responses", {**body, "team": "nope"})
    assert status == 400

    status, edited = await sam.call(
        "PATCH", f"/api/v1/canned-responses/{created['id']}", {"text": "Tomorrow."}
    )
    assert (status, edited["text"]) == (200, "Tomorrow.")
    status, _ = await ann.call("DELETE", f"/api/v1/canned-responses/{created['id']}")
    assert status == 403
    status, _ = await sam.call("DELETE", f"/api/v1/canned-responses/{created['id']}")
    assert status == 204
    status, listed = await sam.call("GET", "/api/v1/canned-responses")
    assert "eta" not in _shortcuts(listed)


async def test_agents_see_their_teams_and_all_team_responses_never_another_teams(
    hub_client: ClientFactory,
) -> None:
    _, ids = await _setup(hub_client)
    ann, bob, sam, ada = ids["ann"], ids["bob"], ids["sam"], ids["ada"]
    status, a_row = await sam.call(
        "POST", "/api/v1/canned-responses", {"shortcut": "a-only", "text": "for team A"}
    )
    assert status == 201
    status, b_row = await ada.call(
        "POST", "/api/v1/canned-responses", {"shortcut": "b-only", "text": "B", "team": "B"}
    )
    assert status == 201
    assert b_row["team"] == "B"

    _, seen_by_ann = await ann.call("GET", "/api/v1/canned-responses")
    assert _shortcuts(seen_by_ann) == SEEDED | {"a-only"}
    _, seen_by_bob = await bob.call("GET", "/api/v1/canned-responses")
    assert _shortcuts(seen_by_bob) == SEEDED | {"b-only"}
    _, searched = await ann.call("GET", "/api/v1/canned-responses?q=only")
    assert _shortcuts(searched) == {"a-only"}
    _, seen_by_ada = await ada.call("GET", "/api/v1/canned-responses")
    assert _shortcuts(seen_by_ada) == SEEDED | {"a-only", "b-only"}

    # Another team's is not there for a supervisor (404); an all-team one is the admins'.
    status, _ = await sam.call("PATCH", f"/api/v1/canned-responses/{b_row['id']}", {"text": "x"})
    assert status == 404
    greet = next(i for i in seen_by_ann["items"] if i["shortcut"] == "greet")
    status, _ = await sam.call("PATCH", f"/api/v1/canned-responses/{greet['id']}", {"text": "x"})
    assert status == 403
    status, _ = await sam.call("PATCH", f"/api/v1/canned-responses/{a_row['id']}", {"team": "B"})
    assert status == 403
    status, moved = await ada.call(
        "PATCH", f"/api/v1/canned-responses/{a_row['id']}", {"team": None}
    )
    assert (status, moved["team"]) == (200, None)
    _, seen_by_bob = await bob.call("GET", "/api/v1/canned-responses")
    assert "a-only" in _shortcuts(seen_by_bob)


async def test_search_fills_placeholders_for_the_conversation_customer_language_first(
    hub_client: ClientFactory,
) -> None:
    _, ids = await _setup(hub_client)
    ann, ada, bob = ids["ann"], ids["ada"], ids["bob"]
    await ada.call(
        "POST",
        "/api/v1/canned-responses",
        {"shortcut": "refund-zh", "text": "{customer.first_name}，退款已开始。", "language": "zh"},
    )
    conv = ids["conv_a"]

    status, found = await ann.call("GET", f"/api/v1/canned-responses?q=ref&conversation_id={conv}")
    assert status == 200
    assert [i["shortcut"] for i in found["items"]] == ["refund-zh", "refund"]  # customer is zh
    assert found["items"][0]["expanded"] == "Li，退款已开始。"
    assert found["items"][1]["expanded"].startswith("Thanks Li, I've started your refund")
    assert found["items"][1]["text"].startswith("Thanks {customer.first_name},")

    _, greet = await ann.call("GET", f"/api/v1/canned-responses?q=greet&conversation_id={conv}")
    assert greet["items"][0]["expanded"] == "Hi Li, this is ann. How can I help?"
    # Filling needs sight of the conversation: another team's is a 404.
    status, _ = await bob.call("GET", f"/api/v1/canned-responses?q=ref&conversation_id={conv}")
    assert status == 404


def test_placeholders_are_looked_up_never_evaluated() -> None:
    values = Placeholders(
        customer_name="Li Wei", customer_first_name="Li", agent_name="Ann", conversation_id=7
    ).table()
    hostile = (
        "{customer.__class__} {0.__init__} {customer.first_name.__globals__} "
        "{agent.name!r} {conversation.id:>10} {{customer.name}} {customer.first_name} "
        "{agent.name} #{conversation.id} {customer.name} {customer.unknown} {customer_name}"
    )
    assert expand(hostile, values) == (
        "{customer.__class__} {0.__init__} {customer.first_name.__globals__} "
        "{agent.name!r} {conversation.id:>10} {Li Wei} Li "
        "Ann #7 Li Wei {customer.unknown} Li Wei"
    )
    # A value is inserted as it is, never expanded again.
    assert expand("{customer.name}", {"customer.name": "{agent.name}"}) == "{agent.name}"


@pytest.mark.parametrize(
    ("display_name", "attributes", "expected"),
    [
        ("Li Wei", {}, "Li"),
        ("", {}, ""),
        ("+12025550101", {}, ""),
        ("ann@example.com", {}, ""),
        ("Wei Li", {"first_name": "Wei"}, "Wei"),
    ],
)
def test_first_name_is_the_first_word_of_a_real_name(
    display_name: str, attributes: dict[str, Any], expected: str
) -> None:
    assert first_name(Customer(display_name=display_name, attributes=attributes)) == expected


async def test_dispositions_per_queue_managed_by_the_queues_supervisor(
    hub_client: ClientFactory,
) -> None:
    _, ids = await _setup(hub_client)
    ann, sam, ada = ids["ann"], ids["sam"], ids["ada"]
    new = {"queue": "qa", "code": "refund_issued", "label": "Refund issued", "sort_order": -1}

    assert (await ann.call("POST", "/api/v1/dispositions", new))[0] == 403
    status, row = await sam.call("POST", "/api/v1/dispositions", new)
    assert status == 201, row
    assert (await sam.call("POST", "/api/v1/dispositions", new))[0] == 409
    assert (await sam.call("POST", "/api/v1/dispositions", {**new, "queue": "qb"}))[0] == 403
    assert (await sam.call("POST", "/api/v1/dispositions", {**new, "queue": ""}))[0] == 403
    assert (await sam.call("POST", "/api/v1/dispositions", {**new, "queue": "zz"}))[0] == 404
    assert (await ada.call("POST", "/api/v1/dispositions", {**new, "queue": "qb"}))[0] == 201

    _, qa = await ann.call("GET", "/api/v1/dispositions?queue=qa")
    codes = [i["code"] for i in qa["items"]]
    assert codes[0] == "refund_issued"
    assert set(codes) == {"refund_issued", "resolved", "follow_up", "escalated"} | {
        "no_response",
        "spam",
        "duplicate",
    }
    assert qa["queues"] == [{"name": "qa", "team": "A", "required": False}]

    status, patched = await sam.call(
        "PATCH", f"/api/v1/dispositions/{row['id']}", {"active": False, "label": "Refunded"}
    )
    assert (status, patched["active"], patched["label"]) == (200, False, "Refunded")
    _, qa = await ann.call("GET", "/api/v1/dispositions?queue=qa")
    assert "refund_issued" not in {i["code"] for i in qa["items"]}
    assert (await sam.call("DELETE", f"/api/v1/dispositions/{row['id']}"))[0] == 204


async def test_a_queue_that_requires_a_disposition_refuses_to_close_without_one(
    hub_client: ClientFactory,
) -> None:
    client, ids = await _setup(hub_client)
    hub = client.app[keys.HUB]
    sam = ids["sam"]
    path = "/api/v1/queues/{}/disposition-required"
    assert (await ids["ann"].call("PUT", path.format("qa"), {"required": True}))[0] == 403
    assert (await sam.call("PUT", path.format("qb"), {"required": True}))[0] == 403
    status, flag = await sam.call("PUT", path.format("qa"), {"required": True})
    assert (status, flag) == (200, {"name": "qa", "team": "A", "required": True})

    console, _, _ = await Console.connect(client, ids["ann"].jar)
    try:
        answer = await console.cmd("dispositions", conversation_id=ids["conv_a"])
        assert answer["type"] == "ack", answer
        assert answer["data"]["result"]["required"] is True
        assert {"code": "resolved", "label": "Resolved"} in answer["data"]["result"]["items"]
        refused = await console.cmd("dispositions", conversation_id=ids["conv_b"])
        assert refused["data"]["code"] == "not_found"
    finally:
        await console.close()

    conv_a = ids["conv_a"]
    with pytest.raises(InvalidInput, match="requires a disposition"):
        await hub.conversations.close(conv_a, agent_id=None)
    with pytest.raises(InvalidInput, match="not a disposition"):
        await hub.conversations.close(conv_a, agent_id=None, disposition="whatever")
    async with hub.sessions() as s:
        assert (await s.get_one(Conversation, conv_a)).state != "closed"
    await hub.conversations.close(conv_a, agent_id=None, disposition="resolved")
    # A queue that does not require one still closes without.
    await hub.conversations.close(ids["conv_b"], agent_id=None)
    async with hub.sessions() as s:
        closed_a = await s.get_one(Conversation, conv_a)
        closed_b = await s.get_one(Conversation, ids["conv_b"])
        assert (closed_a.state, closed_a.disposition) == ("closed", "resolved")
        assert (closed_b.state, closed_b.disposition) == ("closed", "")
