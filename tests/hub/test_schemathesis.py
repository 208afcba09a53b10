"""Schemathesis over ``/api/openapi.json``: every operation, as the admin token and as an
agent's session cookie, answers without a 5xx and within its documented responses.

The hub runs for real on 127.0.0.1 with seeded agents, queues, customers and conversations
(so small ids name real rows); the Schemathesis CLI runs in a subprocess against it. Each
caller gets a fresh database and a sequential, deterministic run, so CI sees the same cases
every time; any failure prints Schemathesis' report with a curl line per failing case.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from contract.testing import free_port
from server.app import create_app
from tests.conftest import API_TOKEN, AUTH, make_settings

AGENT = {"username": "agent1", "password": "agent1-password"}
MAX_EXAMPLES = 25
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
RUN_TIMEOUT_S = 240


async def _seed(http: aiohttp.ClientSession, base: str) -> None:
    """Agents, a supervisor, queues, customers and conversations, through the API itself."""

    async def call(method: str, path: str, body: Any) -> None:
        async with http.request(method, base + path, json=body, headers=AUTH) as resp:
            assert resp.status < 300, (path, resp.status, await resp.text())

    for name, team, steps in (
        ("support", "Support", [{"expression": ""}]),
        ("billing", "Billing", [{"expression": "billing >= 3", "timeout_s": 30}, {}]),
    ):
        await call("PUT", f"/api/v1/queues/{name}", {"team": team, "steps": steps})
    await call(
        "POST",
        "/api/v1/agents",
        {**AGENT, "team": "Support", "skills": [{"name": "billing", "proficiency": 3}]},
    )
    await call(
        "POST",
        "/api/v1/agents",
        {"username": "sup1", "password": "sup1-password", "role": "supervisor"},
    )
    senders = ("+447700900123", "bob@example.org", "+12025550143", "li.na@example.cn")
    for i, sender in enumerate(senders * 2):
        await call(
            "POST",
            "/api/v1/inbound",
            {"from": sender, "name": f"Customer {i}", "text": f"hello {i}", "external_id": f"s{i}"},
        )
    await call("POST", "/api/v1/conversations/1/messages", {"text": "on it", "note": True})


async def _agent_cookie(http: aiohttp.ClientSession, base: str) -> str:
    async with http.post(base + "/login", json=AGENT, headers={"Origin": base}) as resp:
        assert resp.status == 200, await resp.text()
        return resp.cookies["hub_session"].value


@pytest.mark.slow
@pytest.mark.parametrize("caller", ["admin_token", "agent_cookie"])
async def test_every_operation_answers_within_its_documented_responses(
    caller: str, aiohttp_server: Any, sqlite_url: str, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(make_settings(sqlite_url, public_url=base))
    await aiohttp_server(app, host="127.0.0.1", port=port)
    async with aiohttp.ClientSession() as http:
        await _seed(http, base)
        async with http.get(f"{base}/api/openapi.json") as resp:
            operations = sum(len(item) for item in (await resp.json())["paths"].values())
        if caller == "admin_token":
            headers = [f"Authorization: Bearer {API_TOKEN}"]
        else:
            # Cookie writes must come from the hub's own origin (CSRF rule); send it always.
            headers = [f"Cookie: hub_session={await _agent_cookie(http, base)}", f"Origin: {base}"]

    args = [
        *("run", f"{base}/api/openapi.json"),
        *(arg for h in headers for arg in ("-H", h)),
        *("--checks", ",".join(CHECKS)),
        # Stateful needs links the document does not declare; the other phases cover each
        # operation on its own: schema examples, boundary values, then random cases.
        *("--phases", "examples,coverage,fuzzing"),
        *("--max-examples", str(MAX_EXAMPLES)),
        "--generation-deterministic",  # implies no example database
        # Our own credentials only: random ones would just answer 401.
        *("--generation-with-security-parameters", "false"),
        # One worker: the run's writes land in a fixed order, so the run is reproducible.
        *("--workers", "1"),
        # A stalled handler fails its case instead of hanging the run.
        *("--request-timeout", "10"),
        "--continue-on-failure",
        "--no-color",
    ]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        *args,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    report = out.decode(errors="replace")
    assert proc.returncode == 0, report
    assert f"Tested: {operations}\n" in report, report
