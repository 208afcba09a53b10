"""Behind a load balancer: the client's address from X-Forwarded-For, believed only from
the proxies in HUB_TRUSTED_PROXIES, and only as far as the first untrusted hop."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from config.settings import unknown_variables
from hub.web.middleware import client_address
from tests.conftest import ClientFactory

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32"))


@pytest.mark.parametrize(
    ("remote", "forwarded", "client"),
    [
        ("10.0.0.5", "203.0.113.9", "203.0.113.9"),  # one proxy
        ("10.0.0.5", "203.0.113.9, 10.1.1.1", "203.0.113.9"),  # two proxies
        ("10.0.0.5", "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # a client's own claim: not it
        ("10.0.0.5", "", "10.0.0.5"),  # a proxy that said nothing
        ("10.0.0.5", "junk, 10.1.1.1", "10.1.1.1"),  # garbage stops the walk
        ("198.51.100.7", "203.0.113.9", "198.51.100.7"),  # not our proxy: its header ignored
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(
    remote: str, forwarded: str, client: str
) -> None:
    assert client_address(remote, forwarded, PROXIES) == client


async def login_status(client: TestClient[Any, Any], address: str, user: str) -> int:
    resp = await client.post(
        "/login",
        json={"username": user, "password": "wrong password"},
        headers={"X-Forwarded-For": address},
    )
    return int(resp.status)


async def test_failed_logins_are_throttled_per_client_behind_the_proxy(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client(trusted_proxies=["127.0.0.1/32"])
    statuses = [await login_status(client, "203.0.113.9", f"user{i}") for i in range(25)]
    assert statuses[0] == 401
    assert statuses[-1] == 429  # this client sprayed usernames
    assert await login_status(client, "203.0.113.10", "someone") == 401  # another is not held


async def test_without_trusted_proxies_the_header_is_not_believed(
    hub_client: ClientFactory,
) -> None:
    client = await hub_client()
    for i in range(25):
        await login_status(client, f"203.0.113.{i}", f"user{i}")
    # Every attempt came from the one peer, whatever the header claimed.
    assert await login_status(client, "203.0.113.200", "someone") == 429


def test_a_misspelled_setting_is_named() -> None:
    env = {
        "HUB_DATABSE_URL": "x",
        "HUB_DATABASE_URL": "x",
        "HUB_HTTP_PORT__X": "1",
        "HUB_CHANNELS__WEBCHAT__SITES": "{}",
        "HUB_TEST_PG_URL": "x",
        "PATH": "/bin",
    }
    assert unknown_variables(env) == ["HUB_DATABSE_URL", "HUB_HTTP_PORT__X"]
