"""A channel added with no edit outside its folder works end to end.

``tests/channels/dummy/`` is a complete channel (facts, adapter with webhooks, fake
provider) registered with one line: the registry's list plus this package. A contact
arrives over its webhook, is stored and routed, shows in the console with the badge the
folder declares, is answered, delivered by the outbox to the fake provider, and the
provider's delivery report comes back; hostile requests get 4xx and store nothing.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from channels import registry
from hub.web import keys
from server.app import create_app
from tests import factories
from tests.agent_console.test_gateway import Console
from tests.channels.dummy.testing.fake import FakeDummyProvider
from tests.conftest import make_settings

# The one line that registers the channel.
CHANNELS = (*registry.CHANNELS, "tests.channels.dummy")
SECRET = "dummy-shared-secret"
ROOT = Path(__file__).resolve().parents[3]
# The channel's name as code names a channel: a string, a module path, a TOML section, a
# CSS class (the password check's "dummy hash" is another thing).
NAMED = r"[\"']dummy[\"']|channels\.dummy|ch-dummy|__dummy__"
PRODUCTION = (
    "contract",
    "server",
    "hub",
    "channels",
    "agent_console",
    "storage",
    "config",
    "routing",
)

DummyHub = Callable[[], Awaitable[tuple[TestClient[Any, Any], FakeDummyProvider]]]


@pytest.fixture
async def dummy_hub(aiohttp_client: Any, sqlite_url: str) -> AsyncIterator[DummyHub]:
    providers: list[FakeDummyProvider] = []

    async def factory() -> tuple[TestClient[Any, Any], FakeDummyProvider]:
        fake = FakeDummyProvider("", SECRET)
        await fake.start()
        providers.append(fake)
        settings = make_settings(
            sqlite_url, channels={"dummy": {"api_base": fake.base, "secret": SECRET}}
        )
        client: TestClient[Any, Any] = await aiohttp_client(create_app(settings, channels=CHANNELS))
        fake.hub_base = str(client.make_url("")).rstrip("/")
        return client, fake

    yield factory
    for fake in providers:
        await fake.stop()


def test_nothing_outside_the_folder_names_the_dummy_channel() -> None:
    listed = subprocess.run(
        ["git", "grep", "-inE", NAMED, "--", *PRODUCTION],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode in (0, 1), listed.stderr
    # A registry line, a setting, a migration or a console table would show up here.
    assert listed.stdout.splitlines() == []


async def test_a_dummy_contact_is_routed_answered_delivered_and_reported(
    dummy_hub: DummyHub,
) -> None:
    client, fake = await dummy_hub()
    hub = client.app[keys.HUB]
    await factories.agent(hub, "ann")
    console, welcome, _ = await Console.connect(client, await factories.login(client, "ann"))
    declared = {c["name"]: c for c in welcome["data"]["channels"]}
    assert declared["dummy"]["badge"] == "DMY"
    assert declared["dummy"]["colour"] == "#b35c00"
    assert declared["dummy"]["labels"] == {"zh": "测试渠道"}
    assert (await console.cmd("set_state", state="available"))["type"] == "ack"

    status, body = await fake.post(
        "/webhooks/dummy", {"id": "in-1", "sender": "u-42", "text": "hi"}
    )
    assert status == 200, body
    offer = await console.until_event("offer.created")
    assert offer["channel"] == "dummy"
    accepted = await console.cmd("accept", offer_id=offer["payload"]["offer_id"])
    conversation_id = accepted["data"]["result"]["conversation_id"]
    # A redelivery of the same provider id is acknowledged and stored once.
    status, body = await fake.post(
        "/webhooks/dummy", {"id": "in-1", "sender": "u-42", "text": "hi"}
    )
    assert (status, '"duplicate": true' in body) == (200, True)

    reply = await console.cmd("reply", conversation_id=conversation_id, text="Hello from Ann")
    assert reply["type"] == "ack", reply
    sent = await fake.sent.get()
    assert (sent["to"], sent["text"]) == ("u-42", "Hello from Ann")
    status, _ = await fake.post("/webhooks/dummy/status", {"id": sent["id"], "status": "delivered"})
    assert status == 200
    while True:
        event = await console.until_event("message.status")
        if event["payload"].get("status") == "delivered":
            break
    await console.close()


async def test_hostile_dummy_requests_are_refused_and_store_nothing(dummy_hub: DummyHub) -> None:
    client, fake = await dummy_hub()
    hub = client.app[keys.HUB]
    before = hub.stream.last_seq
    message = {"id": "x-1", "sender": "u-1", "text": "hello"}
    assert (await fake.post("/webhooks/dummy", message, secret="wrong"))[0] == 401
    assert (await fake.post("/webhooks/dummy", {"id": "x-2"}))[0] == 400
    assert (await fake.post("/webhooks/dummy", {"id": "x-3", "sender": "a b", "text": "x"}))[
        0
    ] == 400
    assert (await fake.post("/webhooks/dummy/status", {"id": "x", "status": "gone"}))[0] == 400
    assert hub.stream.last_seq == before
