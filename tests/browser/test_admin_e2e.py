"""The admin area in Chromium: an admin creates a team, a queue with two routing steps and
an agent with skills; the agent logs in and gets a conversation routed by those steps; the
admin checks the channel page's webhook URLs; then the same pages in Chinese."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import PageFactory
from tests.conftest import AUTH, ClientFactory

pytestmark = pytest.mark.browser

PASSWORD = "admin-pass-123"
PUBLIC = "http://hub.example.test"


async def _login(page: Page, base: str, username: str, password: str, landing: str) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(re.compile(f"{landing}$"))


async def test_admin_builds_a_team_queue_and_agent_who_then_gets_routed_work(
    hub_client: ClientFactory, new_page: PageFactory, artifacts: Path
) -> None:
    client = await hub_client(
        public_url=PUBLIC,
        offer_timeout_s=30,
        telegram_bot_token="7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
        telegram_secret_token="hub-secret_0123456789",
        telegram_api_base="http://127.0.0.1:9",
        channels={
            "wechat": {
                "app_id": "wx5823bf96d3bd56c7",
                "app_secret": "s" * 32,
                "token": "QDG6eK",
                "api_base": "http://127.0.0.1:9",
            }
        },
    )
    base = str(client.make_url("/")).rstrip("/")
    resp = await client.post(
        "/api/v1/agents",
        json={"username": "ada", "password": PASSWORD, "role": "admin"},
        headers=AUTH,
    )
    assert resp.status == 201, await resp.text()
    admin = await new_page()
    await _login(admin, base, "ada", PASSWORD, "/supervisor")
    await admin.get_by_test_id("admin-link").click()
    await admin.wait_for_url(re.compile("/admin$"))

    # A team (department).
    await admin.get_by_role("link", name="Teams & queues").click()
    await admin.get_by_test_id("team-name").fill("Care")
    await admin.get_by_test_id("team-add").click()
    await expect(admin.locator('[data-testid="team-row"][data-team="Care"]')).to_be_visible()

    # A queue with two steps: experts first for 3 s, then anyone with the skill.
    await admin.get_by_test_id("queue-new").click()
    await admin.get_by_test_id("queue-name").fill("support")
    await admin.get_by_test_id("queue-team").select_option("Care")
    steps = admin.get_by_test_id("step-row")
    await steps.nth(0).get_by_test_id("step-expression").fill("billing >=")
    await expect(steps.nth(0).get_by_test_id("step-check")).to_contain_text("✗")
    await steps.nth(0).get_by_test_id("step-expression").fill("billing >= 4")
    await expect(steps.nth(0).get_by_test_id("step-check")).to_have_text(
        "✓ valid — nobody qualifies now"
    )
    await steps.nth(0).get_by_test_id("step-timeout").fill("3")
    await admin.get_by_test_id("step-add").click()
    await steps.nth(1).get_by_test_id("step-expression").fill("billing >= 1")
    await admin.get_by_test_id("queue-save").click()
    await expect(admin.get_by_test_id("admin-status")).to_contain_text("Queue support saved")
    row = admin.locator('[data-testid="queue-row"][data-queue="support"]')
    await expect(row).to_contain_text("billing >= 4 (3s) → billing >= 1")

    # An agent with skills, in that team.
    await admin.get_by_role("link", name="People").click()
    await admin.get_by_test_id("person-new").click()
    await admin.get_by_test_id("person-username").fill("nina")
    await admin.get_by_test_id("person-display_name").fill("Nina Chen")
    await admin.get_by_test_id("person-team").fill("Care")
    await admin.get_by_test_id("person-skills").fill("billing:2, lang.zh:5")
    await admin.get_by_test_id("person-password").fill("nina-pass-123")
    await admin.get_by_test_id("person-save").click()
    nina_row = admin.locator('[data-testid="person-row"][data-username="nina"]')
    await expect(nina_row).to_contain_text("billing 2")
    await expect(nina_row).to_contain_text("Care")
    await expect(admin.get_by_test_id("secret-value")).to_have_text("nina-pass-123")
    await admin.screenshot(path=artifacts / "admin-01-people.png", full_page=True)

    # The queue's live preview now names her on the second step only.
    await admin.get_by_role("link", name="Teams & queues").click()
    await row.get_by_test_id("queue-edit").click()
    checks = admin.get_by_test_id("step-check")
    await expect(checks.nth(0)).to_have_text("✓ valid — nobody qualifies now")
    await expect(checks.nth(1)).to_have_text("✓ valid — 1 qualify now (0 available): Nina Chen")
    await admin.screenshot(path=artifacts / "admin-02-queue-steps.png", full_page=True)

    # She logs in, goes available, and gets the customer once the first step relaxes.
    nina = await new_page()
    await _login(nina, base, "nina", "nina-pass-123", "/console")
    await expect(nina.get_by_test_id("conn-status")).to_have_attribute("data-state", "open")
    await nina.get_by_test_id("state-select").select_option("available|")
    resp = await client.post(
        "/api/v1/inbound",
        json={
            "from": "+12025550177",
            "name": "Maria Gonzalez",
            "text": "My invoice is wrong",
            "external_id": "admin-1",
        },
        headers=AUTH,
    )
    assert resp.status == 201, await resp.text()
    await expect(nina.get_by_test_id("offer")).to_be_visible(timeout=15_000)
    await expect(nina.get_by_test_id("offer-customer")).to_have_text("Maria Gonzalez")
    await nina.screenshot(path=artifacts / "admin-03-agent-offer.png")

    # The channel page: each enabled channel's webhook URL from HUB_PUBLIC_URL.
    await admin.get_by_role("link", name="Channels").click()
    telegram = admin.locator('[data-testid="channel-card"][data-channel="telegram"]')
    await expect(telegram.get_by_test_id("channel-webhook")).to_have_text(
        f"{PUBLIC}/webhooks/telegram"
    )
    await expect(telegram.get_by_test_id("channel-state")).to_have_text("enabled")
    wechat = admin.locator('[data-testid="channel-card"][data-channel="wechat"]')
    await expect(wechat.get_by_test_id("channel-webhook")).to_have_text(f"{PUBLIC}/webhooks/wechat")
    sms = admin.locator('[data-testid="channel-card"][data-channel="sms"]')
    await expect(sms.get_by_test_id("channel-state")).to_have_text("not configured")
    await expect(admin.locator("body")).not_to_contain_text("hub-secret_0123456789")
    await admin.screenshot(path=artifacts / "admin-04-channels.png", full_page=True)

    # The same in Chinese.
    await admin.get_by_test_id("lang-select").select_option("zh-CN")
    await expect(telegram.get_by_test_id("channel-state")).to_have_text("已启用")
    await expect(admin.get_by_role("link", name="团队与队列")).to_be_visible()
    await admin.screenshot(path=artifacts / "admin-05-channels-zh.png", full_page=True)
    await admin.get_by_role("link", name="团队与队列").click()
    await row.get_by_test_id("queue-edit").click()
    await expect(admin.get_by_test_id("step-check").nth(1)).to_have_text(
        "✓ 有效 — 当前 1 人符合（1 人空闲）：Nina Chen"
    )
    await admin.get_by_role("link", name="人员").click()
    await expect(nina_row).to_contain_text("坐席")
    await admin.screenshot(path=artifacts / "admin-06-people-zh.png", full_page=True)


async def test_an_agent_is_sent_away_and_a_supervisor_cannot_create_people(
    hub_client: ClientFactory, new_page: PageFactory
) -> None:
    client = await hub_client()
    base = str(client.make_url("/")).rstrip("/")
    for username, role in (("ann", "agent"), ("sue", "supervisor")):
        resp = await client.post(
            "/api/v1/agents",
            json={"username": username, "password": PASSWORD, "role": role, "team": "Care"},
            headers=AUTH,
        )
        assert resp.status == 201, await resp.text()
    ann = await new_page()
    await _login(ann, base, "ann", PASSWORD, "/console")
    await ann.goto(f"{base}/admin")
    await ann.wait_for_url(re.compile("/console$"))
    sue = await new_page()
    await _login(sue, base, "sue", PASSWORD, "/supervisor")
    await sue.goto(f"{base}/admin")
    await expect(sue.locator('[data-testid="person-row"][data-username="ann"]')).to_be_visible()
    await expect(sue.get_by_test_id("person-new")).to_have_count(0)
    await expect(sue.get_by_role("link", name="Channels")).to_be_hidden()


async def test_admin_creates_an_integration_token_that_works_until_revoked(
    hub_client: ClientFactory, new_page: PageFactory, artifacts: Path
) -> None:
    client = await hub_client()
    base = str(client.make_url("/")).rstrip("/")
    resp = await client.post(
        "/api/v1/agents",
        json={"username": "ada", "password": PASSWORD, "role": "admin"},
        headers=AUTH,
    )
    assert resp.status == 201, await resp.text()
    admin = await new_page()
    await _login(admin, base, "ada", PASSWORD, "/supervisor")
    await admin.goto(f"{base}/admin#tokens")
    await admin.get_by_test_id("token-name").fill("crm-sync")
    await admin.get_by_test_id("token-scope-inbound").check()
    await admin.get_by_test_id("token-create").click()
    secret = await admin.get_by_test_id("token-value").text_content()
    assert secret
    body = {"from": "+12025550177", "text": "from the CRM", "external_id": "crm-1"}
    bearer = {"Authorization": f"Bearer {secret}"}
    async with client.post("/api/v1/inbound", json=body, headers=bearer) as resp:
        assert resp.status == 201
    row = admin.locator('[data-testid="token-row"][data-token="crm-sync"]')
    await expect(row).to_contain_text("inbound")
    await admin.screenshot(path=artifacts / "admin-07-tokens.png", full_page=True)
    await row.get_by_test_id("token-revoke").click()
    await expect(row).to_contain_text("revoked")
    async with client.post(
        "/api/v1/inbound", json={**body, "external_id": "crm-2"}, headers=bearer
    ) as resp:
        assert resp.status == 401
