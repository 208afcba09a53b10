"""The console is a client of the hub: it imports no storage and no SQL, its commands and the
REST API share one command log, and typing indicators go through the hub."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from channels.api.adapter import ApiChannelAdapter
from contract.channel import ChannelContext
from hub.web import keys
from tests.agent_console.test_gateway import Console, inbound, login, make_agent
from tests.conftest import AUTH, ClientFactory

CONSOLE = Path(__file__).resolve().parents[2] / "agent_console"
# Packages the console must reach only through the hub.
FORBIDDEN = ("storage", "sqlalchemy")


def forbidden_imports(source: str, name: str) -> list[str]:
    """Every import of a forbidden package in ``source`` (function-level ones included)."""
    found = []
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        found += [f"{name}: {m}" for m in modules if m.split(".")[0] in FORBIDDEN]
    return found


def test_the_console_imports_no_storage_and_no_sqlalchemy() -> None:
    files = sorted(CONSOLE.rglob("*.py"))
    assert len(files) >= 5
    found = [hit for path in files for hit in forbidden_imports(path.read_text("utf-8"), path.name)]
    assert found == []


def test_the_import_scan_sees_imports_inside_functions() -> None:
    source = "def f():\n    from storage.models import Agent\n    import sqlalchemy.orm\n"
    assert forbidden_imports(source, "x.py") == [
        "x.py: storage.models",
        "x.py: sqlalchemy.orm",
    ]
    assert forbidden_imports("from hub import queries\nimport storagebox\n", "y.py") == []


def test_console_commands_do_not_import_the_gateway() -> None:
    tree = ast.parse((CONSOLE / "commands.py").read_text("utf-8"))
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "agent_console.gateway" not in modules


async def assigned(client: Any, username: str, phone: str) -> tuple[int, int]:
    """An agent with one conversation assigned to them: (agent id, conversation id)."""
    hub = client.app[keys.HUB]
    agent_id = await make_agent(client, username)
    ids = await inbound(client, phone, "hello", f"ext-{username}")
    offer_id = await hub.work.create_offer(ids["conversation_id"], agent_id)
    assert offer_id is not None
    await hub.work.accept(offer_id, agent_id)
    return agent_id, int(ids["conversation_id"])


async def test_a_console_reply_and_a_rest_reply_with_the_same_key_store_one_message(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    _, conv = await assigned(client, "ann", "+12025550131")
    jar = await login(client, "ann")
    console, _, _ = await Console.connect(client, jar)
    cmid = "reply-1"
    await console.ws.send_json(
        {
            "v": 1,
            "type": "cmd",
            "data": {
                "client_msg_id": cmid,
                "name": "reply",
                "args": {"conversation_id": conv, "text": "on it"},
            },
        }
    )
    while (f := await console.next_frame())["type"] != "ack":
        pass
    first = f["data"]["result"]["message"]["id"]
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        resp = await session.post(
            client.make_url(f"/api/v1/conversations/{conv}/messages"),
            json={"text": "on it", "client_msg_id": cmid},
        )
        assert resp.status == 201, await resp.text()
        assert (await resp.json())["id"] == first
    page = await (await client.get(f"/api/v1/conversations/{conv}/messages", headers=AUTH)).json()
    assert [m["text"] for m in page["items"] if m["direction"] == "out"] == ["on it"]
    await console.close()


async def test_a_key_reused_for_another_command_is_refused_and_does_nothing(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    ann, conv = await assigned(client, "ann", "+12025550132")
    console, _, _ = await Console.connect(client, await login(client, "ann"))
    ack = await console_cmd(console, "k-1", "set_state", {"state": "away", "reason": "lunch"})
    assert ack["type"] == "ack"
    again = await console_cmd(console, "k-1", "set_state", {"state": "busy"})
    assert again["type"] == "ack"
    assert again["data"]["result"] == {"state": "away"}  # the first answer, not a new act
    other = await console_cmd(
        console, "k-1", "set_labels", {"conversation_id": conv, "labels": ["x"]}
    )
    assert other["type"] == "error"
    assert other["data"]["code"] == "conflict"
    board = {a["id"]: a for a in await hub.console.agents_board()}
    assert (board[ann]["state"], board[ann]["state_reason"]) == ("away", "lunch")
    await console.close()


async def console_cmd(
    console: Console, cmid: str, name: str, args: dict[str, Any]
) -> dict[str, Any]:
    await console.ws.send_json(
        {"v": 1, "type": "cmd", "data": {"client_msg_id": cmid, "name": name, "args": args}}
    )
    while True:
        f = await console.next_frame()
        if f["type"] in ("ack", "error") and f["data"]["client_msg_id"] == cmid:
            return f


class TypingApi(ApiChannelAdapter):
    """The API channel, noting each typing indicator it is asked to show."""

    def __init__(self, ctx: ChannelContext) -> None:
        super().__init__(ctx)
        self.shown: list[tuple[str, str]] = []

    async def typing(self, *, channel: str, to: str) -> None:
        self.shown.append((channel, to))


@pytest.mark.parametrize("assignee", [True, False])
async def test_typing_reaches_the_channel_through_the_hub_for_the_assignee_only(
    hub_client: ClientFactory, assignee: bool
) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    _, conv = await assigned(client, "ann", "+12025550133")
    await make_agent(client, "ben")
    real = hub.adapters["api"]
    assert isinstance(real, ApiChannelAdapter)
    recorder = TypingApi(real.ctx)
    hub.adapters["api"] = recorder
    console, _, _ = await Console.connect(client, await login(client, "ann" if assignee else "ben"))
    answer = await console_cmd(console, "t-1", "typing", {"conversation_id": conv})
    if assignee:
        assert answer["type"] == "ack"
        assert recorder.shown == [("api", "+12025550133")]
    else:
        assert answer["data"]["code"] in ("not_found", "conflict")
        assert recorder.shown == []
    await console.close()
