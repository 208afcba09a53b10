"""The audit page in Chromium: an admin reads the log, filters it and pages back; stored
values (here a hostile username from a failed login) stay text."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from hub.audit import record
from hub.uow import UnitOfWork
from hub.web import keys
from tests.browser.conftest import PageFactory
from tests.conftest import ClientFactory

pytestmark = pytest.mark.browser

PASSWORD = "audit-pass-123"
HOSTILE = "<img src=x onerror=window.pwned=1>"


async def test_an_admin_reads_filters_and_pages_the_audit_log_as_text(
    hub_client: ClientFactory, new_page: PageFactory
) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    base = str(client.make_url("/")).rstrip("/")
    await hub.users.create(username="ada", password=PASSWORD, role="admin")
    bad = await client.post("/login", json={"username": HOSTILE, "password": "whatever it is"})
    assert bad.status == 401

    async def fill(uow: UnitOfWork) -> None:
        for n in range(60):
            record(uow, actor="sue", action="test.filler", target_type="customer", target_id=n + 1)

    await hub.tx.run(fill)

    page = await new_page()
    await page.goto(f"{base}/login")
    await page.get_by_test_id("login-username").fill("ada")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(re.compile("/supervisor$"))
    await page.goto(f"{base}/admin/audit")

    rows = page.get_by_test_id("audit-row")
    await expect(rows).to_have_count(50)
    await expect(rows.first).to_contain_text("login")  # ada's own login, newest first
    await page.get_by_test_id("audit-older").click()
    await expect(rows).to_have_count(62)
    await expect(page.get_by_test_id("audit-older")).to_be_hidden()

    await page.get_by_test_id("audit-action").fill("login.failed")
    await page.get_by_test_id("audit-apply").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text(HOSTILE)
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("img").count() == 0
