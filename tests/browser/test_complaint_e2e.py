"""A complaint from opening to resolution in the console: an SMS customer complains; the
agent records it (category, severity, responsible team), the conversation moves to that
team's queue and gets the complaint label; it is escalated; the agent resolves it and the
customer receives the resolution by SMS (at the fake Twilio API)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from hub.web import keys
from storage.models import Complaint, Conversation, Event
from tests.browser.conftest import PageFactory
from tests.browser.test_console_e2e import (
    CUSTOMER_PHONE,
    Stage,
    go_available,
    login,
    shot,
    stage,
)
from tests.conftest import AUTH
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser
__all__ = ["stage"]  # the fixture, imported for this module's test


async def test_a_complaint_is_recorded_escalated_and_resolved_with_the_customer_told(
    stage: Stage, new_page: PageFactory, artifacts: Path
) -> None:
    client = stage.client
    hub = client.app[keys.HUB]
    resp = await client.post("/api/v1/teams", json={"name": "Billing"}, headers=AUTH)
    assert resp.status == 201, await resp.text()
    resp = await client.put(
        "/api/v1/queues/billing-escalations", json={"team": "Billing"}, headers=AUTH
    )
    assert resp.status == 200, await resp.text()

    ann = await new_page()
    await login(ann, stage.base, "ann")
    await go_available(ann)
    await stage.sms_from_customer("You charged me twice. This is unacceptable!")
    await expect(ann.get_by_test_id("offer")).to_be_visible()
    await ann.keyboard.press("a")
    await expect(ann.get_by_test_id("conversation-title")).to_be_visible()

    await ann.get_by_test_id("complaint-button").click()
    dialog = ann.get_by_test_id("complaint-dialog")
    await expect(dialog).to_be_visible()
    await ann.get_by_test_id("complaint-category").fill("billing")
    await ann.get_by_test_id("complaint-severity").select_option("high")
    await ann.get_by_test_id("complaint-team").select_option("Billing")
    await ann.get_by_test_id("complaint-summary").fill("Charged twice for March")
    await ann.get_by_test_id("complaint-confirm").click()
    await expect(dialog).to_be_hidden()
    box = ann.get_by_test_id("complaint-box")
    await expect(box.get_by_test_id("complaint-title")).to_have_text(
        "Complaint #1 · billing · High"
    )
    await expect(box.get_by_test_id("complaint-state")).to_have_text("open")
    await expect(ann.get_by_test_id("complaint-button")).to_be_hidden()
    # The live events bring the label and the new queue to the header.
    await expect(ann.get_by_test_id("conversation-label")).to_have_text("complaint")
    await expect(ann.get_by_test_id("conversation-queue")).to_have_text("Queue billing-escalations")

    # A note on the customer record for every team, and a follow-up for Ann.
    await ann.get_by_test_id("note-text").fill("Charged twice: <b>bank statement</b> seen")
    await ann.get_by_test_id("note-add").click()
    note = ann.get_by_test_id("customer-note")
    await expect(note).to_have_count(1)
    await expect(note).to_contain_text("Charged twice: <b>bank statement</b> seen")
    await ann.get_by_test_id("follow-up-title").fill("Check the refund reached the card")
    await ann.get_by_test_id("follow-up-due").fill("2030-01-15T10:00")
    await ann.get_by_test_id("follow-up-add").click()
    task = ann.get_by_test_id("follow-up")
    await expect(task).to_have_count(1)
    await expect(task).to_contain_text("Check the refund reached the card")

    ann.once("dialog", lambda d: d.accept("customer called again"))
    await box.get_by_test_id("complaint-escalate").click()
    await expect(box.get_by_test_id("complaint-state")).to_have_text("escalated (level 1)")
    await shot(ann, artifacts, "complaint-01-escalated.png")

    await box.get_by_test_id("complaint-resolve").click()
    await ann.get_by_test_id("resolve-text").fill("We refunded the second charge of 25 EUR.")
    await ann.get_by_test_id("resolve-confirm").click()
    await expect(box.get_by_test_id("complaint-state")).to_have_text("resolved")
    await expect(box.get_by_test_id("complaint-notified")).to_have_text("Customer notified")
    await shot(ann, artifacts, "complaint-02-resolved.png")
    await task.get_by_test_id("follow-up-done").click()
    await expect(ann.get_by_test_id("follow-up")).to_have_count(0)

    sent = await stage.provider_received(
        "Update on your complaint #1: it has been resolved. "
        "We refunded the second charge of 25 EUR."
    )
    assert sent["To"] == CUSTOMER_PHONE
    async with hub.sessions() as s:
        complaint = await s.get_one(Complaint, 1)
        conv = await s.get_one(Conversation, complaint.conversation_id)
        kinds = (
            await s.scalars(
                select(Event.type)
                .where(Event.conversation_id == conv.id, Event.type.like("complaint.%"))
                .order_by(Event.seq)
            )
        ).all()
    assert (complaint.state, complaint.escalation_level) == ("resolved", 1)

    # The supervisor's dashboard counts it by category and severity, with its CSV export.
    resp = await client.post(
        "/api/v1/agents",
        json={"username": "sam", "password": PASSWORD, "role": "supervisor"},
        headers=AUTH,
    )
    assert resp.status == 201, await resp.text()
    sam = await new_page()
    await sam.goto(f"{stage.base}/login")
    await sam.get_by_test_id("login-username").fill("sam")
    await sam.get_by_test_id("login-password").fill(PASSWORD)
    await sam.get_by_test_id("login-submit").click()
    await sam.wait_for_url(re.compile(r"/supervisor$"))
    row = sam.get_by_test_id("wf-complaints-row")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("billing")
    await expect(row.locator("td")).to_have_text(["billing", "high", "1", "1", "1"])
    href = await sam.get_by_test_id("export-workflow").get_attribute("href")
    assert href is not None
    assert href.startswith("/api/v1/reports/workflow?")
    await sam.get_by_test_id("workflow-kpis").scroll_into_view_if_needed()
    await shot(sam, artifacts, "complaint-03-dashboard.png")
    assert conv.queue == "billing-escalations"
    assert kinds == ["complaint.opened", "complaint.escalated", "complaint.resolved"]
