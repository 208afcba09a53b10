"""Link requests: an agent's word that an unknown caller is the customer with an address.

Nobody's address becomes the caller's (unverified); another customer's is flagged for a
supervisor, whose merge answers it; the answer to the agent never says who that is."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from contract.errors import InvalidInput, NotFound
from hub.services import Hub
from hub.web import keys
from tests import factories
from tests.conftest import AUTH, ClientFactory

CALLER = "+447700900456"
JANE = "jane@example.org"


async def get(client: TestClient[Any, Any], path: str) -> Any:
    resp = await client.get(path, headers=AUTH)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def customer(client: TestClient[Any, Any], customer_id: int) -> dict[str, Any]:
    data: dict[str, Any] = await get(client, f"/api/v1/customers/{customer_id}")
    return data


async def endpoints(client: TestClient[Any, Any], customer_id: int) -> list[tuple[str, str, bool]]:
    eps = (await customer(client, customer_id))["endpoints"]
    return sorted((e["kind"], e["address"], e["verified"]) for e in eps)


async def link_audit(client: TestClient[Any, Any]) -> list[dict[str, Any]]:
    page = await get(client, "/api/v1/audit?action=customer.link")
    items: list[dict[str, Any]] = page["items"]
    return items


async def events_of(client: TestClient[Any, Any], type_: str) -> list[dict[str, Any]]:
    page = await get(client, "/api/v1/events?after=0&limit=500")
    return [e for e in page["items"] if e["type"] == type_]


async def new_caller(hub: Hub) -> int:
    """A call from a number the hub has never seen: a customer with that number only."""
    result = await factories.contact(hub, CALLER, "Incoming call", channel="voice")
    assert result.customer_id is not None
    return result.customer_id


async def jane(hub: Hub) -> int:
    """Jane emailed last week."""
    result = await factories.contact(
        hub,
        JANE,
        "Where is my order 5521?",
        channel="email",
        sender_kind="email",
        display_name="Jane Doe",
    )
    assert result.customer_id is not None
    return result.customer_id


async def test_an_address_nobody_has_is_added_unverified_and_later_contacts_land_there(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url, default_phone_region="GB")
    hub: Hub = client.app[keys.HUB]
    caller = await new_caller(hub)

    out = await hub.customers.link_request(
        caller, "  Jane Doe <Jane@Example.ORG> ", actor="ann", region="GB"
    )
    assert out == {"status": "added"}
    # A national number is read in the hub's region, as ingest reads it.
    out = await hub.customers.link_request(caller, "07700 900789", actor="ann", region="GB")
    assert out == {"status": "added"}
    assert await endpoints(client, caller) == [
        ("email", JANE, False),
        ("phone", "+447700900456", False),
        ("phone", "+447700900789", False),
    ]
    assert (await customer(client, caller))["flags"] == []
    added = await events_of(client, "customer.endpoint_added")
    assert [(e["customer_id"], e["payload"]) for e in added] == [
        (caller, {"endpoint": f"email:{JANE}", "verified": False}),
        (caller, {"endpoint": "phone:+447700900789", "verified": False}),
    ]
    audit = await link_audit(client)
    assert sorted((e["actor"], e["target_id"], e["details"]["outcome"]) for e in audit) == [
        ("ann", caller, "added"),
        ("ann", caller, "added"),
    ]
    assert {e["details"]["endpoint"] for e in audit} == {f"email:{JANE}", "phone:+447700900789"}

    # Her next email lands on the caller's customer, and asking again changes nothing.
    later = await factories.contact(
        hub, JANE, "It arrived, thanks", channel="email", sender_kind="email"
    )
    assert later.customer_id == caller
    assert await hub.customers.link_request(caller, JANE, actor="ann", region="GB") == {
        "status": "already"
    }
    assert len(await link_audit(client)) == 2


async def test_another_customers_address_is_flagged_for_a_supervisor_without_naming_them(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    hub: Hub = client.app[keys.HUB]
    jane_id = await jane(hub)
    caller = await new_caller(hub)

    out = await hub.customers.link_request(caller, "JANE@example.org", actor="ann", region="US")
    assert out == {"status": "pending_review"}  # nothing about whose address it is

    flagged = await customer(client, caller)
    assert flagged["flags"] == [
        {
            "kind": "link_request",
            "address": JANE,
            "endpoint_kind": "email",
            "other_customer_id": jane_id,
            "by": "ann",
            "reason": "ann says the caller is the customer with this address",
        }
    ]
    assert "Jane Doe" not in json.dumps(flagged)
    # Nothing moved: the address stays Jane's until a supervisor merges.
    assert await endpoints(client, caller) == [("phone", CALLER, False)]
    assert await endpoints(client, jane_id) == [("email", JANE, False)]
    [conflict] = await events_of(client, "customer.conflict")
    assert conflict["customer_id"] == caller
    assert conflict["payload"] == {"flag": flagged["flags"][0]}
    [entry] = await link_audit(client)
    assert (entry["actor"], entry["target_type"], entry["target_id"]) == ("ann", "customer", caller)
    assert entry["details"] == {
        "endpoint": f"email:{JANE}",
        "other_customer_id": jane_id,
        "outcome": "pending_review",
    }

    # Asking again is the same question: one flag, one audit entry, one event.
    again = await hub.customers.link_request(caller, JANE, actor="bob", region="US")
    assert again == {"status": "pending_review"}
    assert len((await customer(client, caller))["flags"]) == 1
    assert len(await link_audit(client)) == 1
    assert len(await events_of(client, "customer.conflict")) == 1


@pytest.mark.parametrize(
    "address",
    [
        "",
        "   ",
        "Jane from last week",
        "jane@",
        "@example.org",
        "12345",  # a short code, no person's number
        "x" * 250 + "@example.org",
        "+1 202 555 0143 " * 20,
    ],
)
async def test_an_address_that_is_no_email_or_phone_is_refused_and_nothing_is_stored(
    hub_client: ClientFactory, db_url: str, address: str
) -> None:
    client = await hub_client(database_url=db_url)
    hub: Hub = client.app[keys.HUB]
    caller = await new_caller(hub)
    before = await customer(client, caller)
    head = len((await get(client, "/api/v1/events?after=0&limit=500"))["items"])

    with pytest.raises(InvalidInput):
        await hub.customers.link_request(caller, address, actor="ann", region="US")

    assert await customer(client, caller) == before
    assert await link_audit(client) == []
    assert len((await get(client, "/api/v1/events?after=0&limit=500"))["items"]) == head


async def test_a_customer_that_does_not_exist_is_not_found(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    hub: Hub = client.app[keys.HUB]
    with pytest.raises(NotFound):
        await hub.customers.link_request(4242, JANE, actor="ann", region="US")
    assert await link_audit(client) == []


async def test_a_supervisors_merge_either_way_answers_the_request(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    hub: Hub = client.app[keys.HUB]
    jane_id = await jane(hub)
    caller = await new_caller(hub)
    # A second claim about a third customer is another question, still open after the merge.
    third = await factories.contact(
        hub, "bo@example.org", "hi", channel="email", sender_kind="email", display_name="Bo"
    )
    assert third.customer_id is not None
    for address in (JANE, "bo@example.org"):
        out = await hub.customers.link_request(caller, address, actor="ann", region="US")
        assert out == {"status": "pending_review"}

    # The caller into Jane (what the console's "Merge with customer #N" does).
    audit_id = await hub.customers.merge(jane_id, caller, actor="sam")
    merged = await customer(client, jane_id)
    assert [(f["address"], f["other_customer_id"]) for f in merged["flags"]] == [
        ("bo@example.org", third.customer_id)
    ]
    assert await endpoints(client, jane_id) == [
        ("email", JANE, False),
        ("phone", CALLER, False),
    ]
    history = await get(client, f"/api/v1/customers/{jane_id}/history")
    assert sorted(m["text"] for m in history["items"]) == [
        "Incoming call",
        "Where is my order 5521?",
    ]
    # Undone, the question is open again where it was asked.
    await hub.customers.unmerge(audit_id, actor="sam")
    assert len((await customer(client, caller))["flags"]) == 2
    assert (await customer(client, jane_id))["flags"] == []

    # Jane into the caller: the flag about Jane is answered there too.
    await hub.customers.merge(caller, jane_id, actor="sam")
    assert [f["other_customer_id"] for f in (await customer(client, caller))["flags"]] == [
        third.customer_id
    ]
