"""A new caller says who they are: the agent links them by the email address they wrote from,
a supervisor confirms by merging, and the call joins the customer's history.

The phone channel is driven as in ``test_voice_screen_pop.py``: the hub's phone port, and a
tiny local Calls API that rings the agent's phone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Dialog, Page, expect

from contract.voice import CallFact, EnqueueRequest
from hub.services import Hub
from hub.web import keys
from tests import factories
from tests.browser.conftest import PageFactory, sign_in
from tests.browser.test_voice_screen_pop import (
    AGENT_LEG,
    CALL_SID,
    OUR_NUMBER,
    log_in,
    voice_hub,
)
from tests.conftest import AUTH, ClientFactory

pytestmark = pytest.mark.browser

NEW_NUMBER = "+447700900456"
JANE = "jane@example.org"
SUPERVISOR_PASSWORD = "password-sam"


async def jane_emailed_last_week(hub: Hub) -> int:
    """Jane Doe wrote by email (answered and closed since); her customer id."""
    result = await factories.contact(
        hub,
        JANE,
        "Where is my order 5521?",
        channel="email",
        sender_kind="email",
        display_name="Jane Doe",
    )
    assert result.conversation_id is not None
    assert result.customer_id is not None
    await hub.conversations.close(result.conversation_id, agent_id=None, disposition="resolved")
    return result.customer_id


async def ring(hub: Hub) -> None:
    """A number the hub has never seen calls and waits in the support queue."""
    info = await hub.call_started(
        channel="voice", call_sid=CALL_SID, from_number=NEW_NUMBER, to_number=OUR_NUMBER
    )
    assert not info.known
    await hub.call_enqueued(
        EnqueueRequest(
            channel="voice",
            call_sid=CALL_SID,
            from_number=NEW_NUMBER,
            to_number=OUR_NUMBER,
            queue="support",
            language="en",
            choices=("English", "orders"),
        )
    )


async def hang_up(hub: Hub) -> None:
    """They talked 95 s; the caller's leg ends after 110 s in all."""
    await hub.call_fact(
        CallFact(
            channel="voice",
            call_sid=CALL_SID,
            kind="dial_result",
            leg="agent",
            leg_sid=AGENT_LEG,
            result="completed",
            talk_s=95,
            bridged=True,
        )
    )
    await hub.call_fact(
        CallFact(
            channel="voice", call_sid=CALL_SID, kind="status", status="completed", duration_s=110
        )
    )


async def supervisor_console(page: Page, base: str) -> None:
    await sign_in(page, base, "sam", SUPERVISOR_PASSWORD, landing="supervisor")
    await page.goto(f"{base}/console")
    await expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "open")


async def test_an_agent_links_a_new_caller_and_a_supervisor_merges_them_into_the_customer(
    hub_client: ClientFactory, aiohttp_server: Any, new_page: PageFactory, artifacts: Path
) -> None:
    client, _ = await voice_hub(hub_client, aiohttp_server)
    hub: Hub = client.app[keys.HUB]
    jane_id = await jane_emailed_last_week(hub)
    # A floor supervisor (no team of their own): every customer is theirs to see and merge.
    await hub.users.create(
        username="sam", password=SUPERVISOR_PASSWORD, role="supervisor", display_name="Sam Lee"
    )
    base = str(client.make_url("")).rstrip("/")

    agent = await new_page()
    await log_in(agent, base)
    await agent.get_by_test_id("state-select").select_option("available|")
    await expect(agent.get_by_test_id("state-dot")).to_have_attribute("data-state", "available")

    await ring(hub)
    card = agent.get_by_test_id("offer")
    await expect(card.get_by_test_id("pop-new-caller")).to_have_text("New caller")
    await card.get_by_test_id("offer-accept").click()
    await hub.call_fact(CallFact(channel="voice", call_sid=CALL_SID, kind="connecting", wait_s=9))
    await expect(agent.get_by_test_id("call-bar")).to_have_attribute("data-state", "talking")

    # "I'm Jane, I emailed you last week from jane@example.org."
    link = agent.get_by_test_id("link-caller")
    await expect(link).to_be_visible()
    await expect(agent.get_by_test_id("link-form")).to_be_hidden()
    await link.get_by_test_id("link-open").click()
    address = link.get_by_test_id("link-address")
    await expect(address).to_be_focused()
    await address.fill("not an address")
    await address.press("Enter")  # links; never submits the profile form around it
    result = link.get_by_test_id("link-result")
    await expect(result).to_have_text("Enter an email address or a phone number.")
    await expect(address).to_have_value("not an address")  # kept to correct
    await address.fill("Jane@Example.org")
    await link.get_by_test_id("link-submit").click()
    await expect(result).to_have_attribute("data-status", "pending_review")
    await expect(result).to_have_text("Sent to a supervisor to confirm.")
    flag = agent.get_by_test_id("customer-flag")
    await expect(flag).to_have_attribute("data-kind", "link_request")
    await expect(flag.get_by_test_id("flag-text")).to_have_text(
        "You said the caller is the customer with jane@example.org."
    )
    await expect(flag.get_by_test_id("flag-waiting")).to_have_text(
        "Waiting for a supervisor to confirm"
    )
    await expect(flag.get_by_test_id("flag-merge")).to_have_count(0)
    # Nothing on the agent's screen says who holds the address.
    panel = agent.get_by_test_id("profile")
    await expect(panel).not_to_contain_text("Jane Doe")
    await expect(panel).not_to_contain_text(f"#{jane_id}")
    await expect(agent.get_by_test_id("endpoint-address")).to_have_text([NEW_NUMBER])
    await agent.screenshot(path=artifacts / "voice-link-caller-pending.png", animations="disabled")
    # The same in Chinese, redrawn on the switch.
    await agent.get_by_test_id("lang-select").select_option("zh-CN")
    await expect(result).to_have_text("已提交主管确认。")
    await expect(flag.get_by_test_id("flag-waiting")).to_have_text("等待主管确认")
    await expect(link.get_by_test_id("link-open")).to_have_text("关联到已有客户…")
    await agent.get_by_test_id("lang-select").select_option("en")

    await hang_up(hub)
    await expect(agent.get_by_test_id("conversation-state")).to_have_attribute(
        "data-state", "wrap_up"
    )
    conversation_id = int(
        await agent.get_by_test_id("conversation-item").first.get_attribute("data-conversation-id")
        or 0
    )

    # The supervisor opens the call's conversation (the console's support handle: it has no
    # search of its own) and answers the question by merging the caller into Jane.
    supervisor = await new_page()
    await supervisor_console(supervisor, base)
    await supervisor.evaluate(
        "id => window.hubConsole.notify('open', { conversationId: id })", conversation_id
    )
    flag = supervisor.get_by_test_id("customer-flag")
    await expect(flag.get_by_test_id("flag-text")).to_have_text(
        "Ann Archer says the caller is the customer with jane@example.org."
    )
    await expect(flag.get_by_test_id("flag-waiting")).to_have_count(0)
    merge = flag.get_by_test_id("flag-merge")
    await expect(merge).to_have_text(f"Merge with customer #{jane_id}")
    await expect(supervisor.get_by_test_id("link-caller")).to_be_hidden()  # not their call
    await supervisor.screenshot(
        path=artifacts / "voice-link-caller-review.png", animations="disabled"
    )
    dialogs: list[str] = []

    async def answer(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        # Yes to the merge, no to undoing it.
        await (dialog.accept() if len(dialogs) == 1 else dialog.dismiss())

    supervisor.on("dialog", answer)
    await merge.click()
    await expect(supervisor.get_by_test_id("conversation-title")).to_have_text("Jane Doe")
    assert dialogs == [
        f"Merge this customer into customer #{jane_id}? "
        "Its conversations, messages and addresses move there.",
        f"This customer is now part of customer #{jane_id}. Undo?",
    ]
    await expect(supervisor.get_by_test_id("profile-flags")).to_be_hidden()
    await expect(supervisor.get_by_test_id("endpoint-address")).to_have_text([JANE, NEW_NUMBER])
    await expect(supervisor.get_by_test_id("customer-conversation")).to_have_count(2)
    timeline = supervisor.get_by_test_id("timeline")
    await expect(timeline.get_by_test_id("call-entry")).to_have_attribute(
        "data-outcome", "answered"
    )
    await expect(timeline.get_by_test_id("call-figures")).to_have_text(
        "waited 9s · talked 1m 35s · 1m 50s in all"
    )
    email = supervisor.get_by_test_id("timeline-item").filter(has_text="Where is my order 5521?")
    await expect(email).to_have_attribute("data-channel", "email")
    await supervisor.screenshot(path=artifacts / "voice-link-caller.png", animations="disabled")

    # The call is in Jane's history for everyone now; the agent's console reads it so too.
    resp = await client.get(f"/api/v1/customers/{jane_id}/history", headers=AUTH)
    history = await resp.json()
    assert {m["channel"] for m in history["items"]} == {"email", "voice"}
    calls = [m for m in history["items"] if m["kind"] == "call"]
    assert [m["metadata"]["call"]["outcome"] for m in calls] == ["answered"]
    await agent.reload()
    await agent.get_by_test_id("conversation-item").first.click()
    await expect(agent.get_by_test_id("conversation-title")).to_have_text("Jane Doe")
    await expect(agent.get_by_test_id("profile-flags")).to_be_hidden()
    await expect(agent.get_by_test_id("link-caller")).to_be_hidden()  # no new caller now
    await expect(
        agent.get_by_test_id("timeline-item").filter(has_text="Where is my order 5521?")
    ).to_be_visible()
