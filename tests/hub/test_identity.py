"""One person across every channel: endpoint normalization, linking, merge and unmerge."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from contract.channel import Identifier, InboundMessage
from contract.errors import Conflict, InvalidInput
from hub.customers.identity import normalize, normalize_email, normalize_phone
from hub.web import keys
from tests.conftest import AUTH, ClientFactory


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+44 7700 900123", "US", "+447700900123"),
        ("whatsapp:+447700900123", "US", "+447700900123"),
        ("447700900123", "US", "+447700900123"),  # WaId / Telegram contact digits
        ("07700 900123", "GB", "+447700900123"),  # national format in the default region
        ("(202) 555-0143", "US", "+12025550143"),
        ("tel:+1-202-555-0143", "GB", "+12025550143"),
    ],
)
def test_every_phone_spelling_normalizes_to_one_e164(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


def test_email_is_lower_cased_and_display_name_dropped() -> None:
    assert normalize_email('"Alice A." <ALICE@Example.ORG>') == "alice@example.org"
    with pytest.raises(InvalidInput):
        normalize_email("not-an-address")
    with pytest.raises(InvalidInput):
        normalize("telegram", "12ab", default_region="US")


def msg(channel: str, endpoint_kind: Any, sender: str, pid: str, **kw: Any) -> InboundMessage:
    return InboundMessage(
        channel=channel, sender_kind=endpoint_kind, sender=sender, provider_id=pid, text="hi", **kw
    )


async def history_channels(client: TestClient[Any, Any], customer_id: int) -> list[str]:
    page = await (await client.get(f"/api/v1/customers/{customer_id}/history", headers=AUTH)).json()
    return sorted(m["channel"] for m in page["items"])


async def test_sms_whatsapp_call_and_telegram_shared_contact_are_one_customer(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    hub = client.app[keys.HUB]
    sms = await hub.ingest(msg("sms", "phone", "+44 7700 900123", "SM1"))
    wa = await hub.ingest(
        msg("whatsapp", "phone", "whatsapp:+447700900123", "SM2", display_name="Alice")
    )
    call = await hub.ingest(msg("voice", "phone", "+447700900123", "CA1", kind="event"))
    tg = await hub.ingest(
        msg(
            "telegram",
            "telegram",
            "5550001",
            "5550001:1",
            identifiers=(Identifier(kind="phone", address="+447700900123"),),
        )
    )
    assert sms.customer_id == wa.customer_id == call.customer_id == tg.customer_id
    assert sms.customer_id is not None
    email = await hub.ingest(
        msg("email", "email", "alice.other@example.org", "m1@x", display_name="Alice")
    )
    assert email.customer_id != sms.customer_id  # same first name never links
    customer = await (await client.get(f"/api/v1/customers/{sms.customer_id}", headers=AUTH)).json()
    kinds = sorted((e["kind"], e["address"]) for e in customer["endpoints"])
    assert kinds == [("phone", "+447700900123"), ("telegram", "5550001")]
    assert await history_channels(client, sms.customer_id) == [
        "sms",
        "telegram",
        "voice",
        "whatsapp",
    ]


async def test_third_party_identifier_that_is_not_verified_does_not_link(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    a = await hub.ingest(msg("sms", "phone", "+12025550143", "SMa"))
    b = await hub.ingest(
        msg(
            "telegram",
            "telegram",
            "777",
            "777:1",
            identifiers=(Identifier(kind="phone", address="+12025550143", verified=False),),
        )
    )
    assert a.customer_id != b.customer_id


async def test_verified_identifier_arriving_later_merges_the_two_customers_undoably(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    hub = client.app[keys.HUB]
    phone_owner = await hub.ingest(msg("sms", "phone", "+12025550143", "SMx"))
    tg_owner = await hub.ingest(msg("telegram", "telegram", "888", "888:1"))
    assert tg_owner.customer_id != phone_owner.customer_id  # nothing proves it yet
    again = await hub.ingest(
        msg(
            "telegram",
            "telegram",
            "888",
            "888:2",
            identifiers=(Identifier(kind="phone", address="+12025550143"),),
        )
    )
    # The Telegram user proved the phone is theirs: one person, the earlier customer kept.
    assert again.customer_id == phone_owner.customer_id
    assert again.conversation_id == tg_owner.conversation_id
    survivor = await (
        await client.get(f"/api/v1/customers/{phone_owner.customer_id}", headers=AUTH)
    ).json()
    assert survivor["flags"] == []
    assert sorted(e["kind"] for e in survivor["endpoints"]) == ["phone", "telegram"]
    assert await history_channels(client, phone_owner.customer_id) == [
        "sms",
        "telegram",
        "telegram",
    ]
    # Audited, and a person can undo it.
    events = await (await client.get("/api/v1/events?after=0&limit=200", headers=AUTH)).json()
    [merged] = [e for e in events["items"] if e["type"] == "customer.merged"]
    assert merged["payload"]["actor"] == "hub:verified-identifier"
    undo = await client.post(f"/api/v1/merges/{merged['payload']['audit_id']}/undo", headers=AUTH)
    assert undo.status == 204, await undo.text()
    assert await history_channels(client, phone_owner.customer_id) == ["sms"]


async def test_verified_identifier_with_conflicting_verified_ones_is_flagged_not_merged(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    ann = Identifier(kind="email", address="ann@example.org")
    bea = Identifier(kind="email", address="bea@example.org")
    phone_owner = await hub.ingest(msg("api", "phone", "+12025550143", "A1", identifiers=(ann,)))
    tg_owner = await hub.ingest(msg("telegram", "telegram", "888", "888:1", identifiers=(bea,)))
    again = await hub.ingest(
        msg(
            "telegram",
            "telegram",
            "888",
            "888:2",
            identifiers=(Identifier(kind="phone", address="+12025550143"),),
        )
    )
    assert again.customer_id == tg_owner.customer_id != phone_owner.customer_id
    flagged = await (
        await client.get(f"/api/v1/customers/{tg_owner.customer_id}", headers=AUTH)
    ).json()
    assert flagged["flags"][0]["other_customer_id"] == phone_owner.customer_id
    assert "different verified emails" in flagged["flags"][0]["detail"]


async def test_merge_then_unmerge_restores_both_customers_exactly(
    hub_client: ClientFactory, db_url: str
) -> None:
    client = await hub_client(database_url=db_url)
    hub = client.app[keys.HUB]
    a = await hub.ingest(msg("sms", "phone", "+12025550143", "S1", display_name="Ann"))
    await hub.ingest(msg("sms", "phone", "+12025550143", "S2"))
    b = await hub.ingest(msg("email", "email", "ann@example.org", "E1", display_name="Ann B"))
    assert a.customer_id
    assert b.customer_id
    await hub.customers.update_profile(a.customer_id, {"tags": ["loyal"]}, actor="t")
    await hub.customers.update_profile(
        b.customer_id, {"tags": ["email"], "segment": "vip"}, actor="t"
    )

    async def state() -> Any:
        out = []
        for cid in (a.customer_id, b.customer_id):
            c = await (await client.get(f"/api/v1/customers/{cid}", headers=AUTH)).json()
            h = await (await client.get(f"/api/v1/customers/{cid}/history", headers=AUTH)).json()
            convs = await (
                await client.get(f"/api/v1/customers/{cid}/conversations", headers=AUTH)
            ).json()
            out.append((c, [m["id"] for m in h["items"]], [x["id"] for x in convs["items"]]))
        return out

    before = await state()
    audit_id = await hub.customers.merge(a.customer_id, b.customer_id, actor="supervisor")
    merged = await (await client.get(f"/api/v1/customers/{a.customer_id}", headers=AUTH)).json()
    assert sorted(e["kind"] for e in merged["endpoints"]) == ["email", "phone"]
    assert merged["tags"] == ["email", "loyal"]
    assert merged["segment"] == "vip"
    assert await history_channels(client, a.customer_id) == ["email", "sms", "sms"]
    await hub.customers.unmerge(audit_id, actor="supervisor")
    assert await state() == before
    with pytest.raises(Conflict):
        await hub.customers.unmerge(audit_id, actor="supervisor")


async def test_merge_of_conflicting_verified_identifiers_is_refused_and_flagged(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    a = await hub.ingest(
        msg(
            "telegram",
            "telegram",
            "1",
            "1:1",
            identifiers=(Identifier(kind="phone", address="+12025550101"),),
        )
    )
    b = await hub.ingest(
        msg(
            "telegram",
            "telegram",
            "2",
            "2:1",
            identifiers=(Identifier(kind="phone", address="+12025550102"),),
        )
    )
    assert a.customer_id
    assert b.customer_id
    with pytest.raises(Conflict, match="different verified phones"):
        await hub.customers.merge(a.customer_id, b.customer_id, actor="x")
    c = await (await client.get(f"/api/v1/customers/{a.customer_id}", headers=AUTH)).json()
    assert c["flags"][0]["reason"] == "merge conflict"
    await hub.customers.merge(a.customer_id, b.customer_id, actor="x", force=True)
