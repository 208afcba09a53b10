"""The widget's satisfaction survey: when the agent closes the chat, the visitor gets the
survey message with stars; one click answers it (the first answer counts, bad frames are
refused and store nothing)."""

from __future__ import annotations

from sqlalchemy import select

from hub.workflow.engine import WORKFLOW, WorkflowEngine
from storage.models import Survey
from tests import factories
from tests.agent_console.test_gateway import Console
from tests.channels.webchat.conftest import ChatHubFactory


async def test_the_visitor_rates_the_closed_chat_with_one_click(chat_hub: ChatHubFactory) -> None:
    ch = await chat_hub()
    await factories.queue(ch.hub, "billing", options={"csat": True})
    ann = await factories.agent(ch.hub, "ann")
    jar = await factories.login(ch.client, "ann")
    console, _, _ = await Console.connect(ch.client, jar)
    await console.cmd("set_state", state="available")
    visitor = ch.visitor()
    await visitor.connect()
    await visitor.send({"type": "prechat", "name": "Vic", "topic": "billing"})
    await visitor.next("ack")
    await visitor.say("Is my refund through?", client_msg_id="m-1")
    offer = await console.until_event("offer.created")
    accepted = await console.cmd("accept", offer_id=offer["payload"]["offer_id"])
    conv_id = accepted["data"]["result"]["conversation_id"]
    await console.cmd("reply", conversation_id=conv_id, text="Yes, since this morning.")
    await visitor.next("message")
    await ch.hub.conversations.close(conv_id, agent_id=ann)

    survey = await visitor.next("message", timeout=10)
    while not survey.get("survey"):
        survey = await visitor.next("message", timeout=10)
    assert survey["text"] == "How satisfied were you with our help?"
    for bad in (
        {"type": "rate", "score": 6, "message_id": survey["id"]},
        {"type": "rate", "score": True, "message_id": survey["id"]},
        {"type": "rate", "score": 4},
    ):
        await visitor.send(bad)
        assert (await visitor.next("error"))["code"] == "bad_frame"
    await visitor.send({"type": "rate", "score": 4, "message_id": survey["id"]})
    assert (await visitor.next("ack"))["ref"] == "rate"
    await visitor.send({"type": "rate", "score": 1, "message_id": survey["id"]})
    assert (await visitor.next("ack"))["ref"] == "rate"  # a repeat: acknowledged, not stored

    engine: WorkflowEngine = ch.client.app[WORKFLOW]
    await engine.drain()
    async with ch.hub.sessions() as s:
        rows = (await s.scalars(select(Survey))).all()
    assert [(r.conversation_id, r.channel, r.state, r.score) for r in rows] == [
        (conv_id, "webchat", "answered", 4)
    ]
    await visitor.close()
    await console.close()
