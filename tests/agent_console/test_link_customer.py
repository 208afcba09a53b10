"""The console's `link_customer`: an agent links the customer of their own conversation to an
address the caller gives; customers they cannot see do not exist for it."""

from __future__ import annotations

from typing import Any

from hub.services import Hub
from hub.web import keys
from tests import factories
from tests.agent_console.test_gateway import Console
from tests.conftest import AUTH, ClientFactory


async def test_link_customer_works_on_the_agents_own_customer_only(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    hub: Hub = client.app[keys.HUB]
    ids = await factories.two_team_floor(hub)
    offer_id = await hub.work.create_offer(ids["conv_a"], ids["ann"])
    assert offer_id is not None
    await hub.work.accept(offer_id, ids["ann"])

    async def customer(customer_id: int) -> dict[str, Any]:
        resp = await client.get(f"/api/v1/customers/{customer_id}", headers=AUTH)
        data: dict[str, Any] = await resp.json()
        return data

    before_b = await customer(ids["cust_b"])
    ann, _, _ = await Console.connect(client, await factories.login(client, "ann"))
    nia, _, _ = await Console.connect(client, await factories.login(client, "nia"))
    try:
        # Team B's customer, and for an agent of no team team A's: as if they did not exist.
        for console, customer_id in ((ann, ids["cust_b"]), (nia, ids["cust_a"])):
            answer = await console.cmd(
                "link_customer", customer_id=customer_id, address="pat@example.org"
            )
            assert (answer["type"], answer["data"]["code"]) == ("error", "not_found")
        assert await customer(ids["cust_b"]) == before_b

        # Her own conversation's customer: an address of nobody is added to it.
        added = await ann.cmd("link_customer", customer_id=ids["cust_a"], address="pat@example.org")
        assert added["type"] == "ack", added
        assert added["data"]["result"] == {"status": "added"}

        # Team B's customer's number: a question for a supervisor, and no word about whose.
        pending = await ann.cmd(
            "link_customer", customer_id=ids["cust_a"], address="(202) 555-0202"
        )
        assert pending["data"]["result"] == {"status": "pending_review"}

        bad = await ann.cmd("link_customer", customer_id=ids["cust_a"], address="next tuesday")
        assert (bad["type"], bad["data"]["code"]) == ("error", "invalid_input")
        missing = await ann.cmd("link_customer", customer_id=ids["cust_a"])
        assert (missing["type"], missing["data"]["code"]) == ("error", "invalid_input")
    finally:
        await ann.close()
        await nia.close()

    linked = await customer(ids["cust_a"])
    assert sorted(e["address"] for e in linked["endpoints"]) == ["+12025550101", "pat@example.org"]
    assert [(f["kind"], f["address"], f["other_customer_id"]) for f in linked["flags"]] == [
        ("link_request", "+12025550202", ids["cust_b"])
    ]

    # The supervisor's console reads the flag with the customer and merges the two.
    ada, _, _ = await Console.connect(client, await factories.login(client, "ada"))
    try:
        opened = await ada.cmd("open", conversation_id=ids["conv_a"])
        assert opened["data"]["result"]["customer"]["flags"] == linked["flags"]
        merged = await ada.cmd("merge_customer", customer_id=ids["cust_b"], other_id=ids["cust_a"])
        assert merged["type"] == "ack", merged
        survivor = merged["data"]["result"]["customer"]
        assert survivor["flags"] == []
        assert sorted(e["address"] for e in survivor["endpoints"]) == [
            "+12025550101",
            "+12025550202",
            "pat@example.org",
        ]
    finally:
        await ada.close()
