"""Satisfaction surveys: asked on the conversation's own channel when it closes, answered
there (a digit by SMS, WhatsApp or WeChat, a button on Telegram, a star in the widget, a
one-click link by email and in-app, a key on the phone), stored once per conversation.

Every answer becomes an inbound message of kind ``csat`` with its ``score`` (what reports
count) and a ``csat.received`` event (what rules and follow-ups react to); a low score opens
a follow-up for the supervisors of the team that served the customer.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import unicodedata
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.settings import Settings
from contract.channel import InboundMessage
from contract.info import Channels
from hub import events
from hub.uow import UnitOfWork
from hub.workflow import effects
from storage.models import Agent, Conversation, FollowUp, Queue, Survey, utcnow

# A reply that is only a score: "4", "5/5", "3 stars", "４", "5分", "4星".
_SCORE = re.compile(r"^\s*([1-5])\s*(?:/\s*5|stars?|分|星)?\s*[.!]?\s*$", re.IGNORECASE)

# How each channel asks, and how its answer comes back.
DIGITS = "digits"  # the customer replies with a number
BUTTONS = "buttons"  # Telegram inline keyboard (the adapter's ``csat`` reply option)
WIDGET = "widget"  # the chat widget shows stars (the message's ``csat`` option)
LINK = "link"  # a page of the hub, keyed by the survey's random token
PHONE = "phone"  # keys after the call (the voice adapter's post-call survey)

HOW: dict[str, str] = {
    "sms": DIGITS,
    "whatsapp": DIGITS,
    "wechat": DIGITS,
    "telegram": BUTTONS,
    "webchat": WIDGET,
    "email": LINK,
    "app": LINK,
    "api": LINK,
    "voice": PHONE,
}

QUESTION = {
    DIGITS: {
        "en": "How satisfied were you with our help? Reply with a number from 1 (poor) to 5 "
        "(excellent).",
        "zh": "您对本次服务满意吗？请回复 1（很不满意）到 5（非常满意）的数字。",
    },
    BUTTONS: {
        "en": "How satisfied were you with our help?",
        "zh": "您对本次服务满意吗？",
    },
    WIDGET: {
        "en": "How satisfied were you with our help?",
        "zh": "您对本次服务满意吗？",
    },
    LINK: {
        "en": "How satisfied were you with our help? Tell us with one click: {url}",
        "zh": "您对本次服务满意吗？点击链接评分：{url}",
    },
}


def parse_score(text: str) -> int | None:
    """The score of a reply that is only a score (1-5), else None."""
    found = _SCORE.match(unicodedata.normalize("NFKC", text)[:40])
    return int(found.group(1)) if found else None


async def open_survey(s: AsyncSession, conv: Conversation, window_s: int) -> Survey | None:
    """The conversation's survey if it still takes an answer."""
    survey = await s.scalar(select(Survey).where(Survey.conversation_id == conv.id))
    if survey is None or survey.state != "sent":
        return None
    if utcnow() - survey.sent_at > timedelta(seconds=window_s):
        return None
    return survey


async def survey_answer(
    s: AsyncSession, msg: InboundMessage, latest: Conversation | None, window_s: int
) -> tuple[InboundMessage, Conversation] | None:
    """A reply that answers the survey of the customer's last (closed) conversation, as the
    ``csat`` message it is and that conversation; None: an ordinary message."""
    if latest is None or latest.state not in ("closed", "abandoned"):
        return None
    score = parse_score(msg.text)
    if score is None or await open_survey(s, latest, window_s) is None:
        return None
    metadata = {**msg.metadata, "score": score, "how": DIGITS}
    return dataclasses.replace(msg, kind="csat", metadata=metadata), latest


def wants_survey(settings: Settings, conv: Conversation, queue: Queue | None) -> bool:
    flow = settings.workflow
    if conv.disposition.strip().lower() in {d.lower() for d in flow.csat_skip_dispositions}:
        return False
    if conv.assignee_id is None and not conv.first_response_at:
        return False  # nobody served them: nothing to rate
    on = flow.csat_after_close
    if queue is not None and isinstance(queue.options.get("csat"), bool):
        on = bool(queue.options["csat"])
    return on


def _survey(conv: Conversation) -> Survey:
    """A survey row for the conversation; the agent it rates is who held it last."""
    return Survey(
        conversation_id=conv.id,
        customer_id=conv.customer_id,
        channel=conv.channel,
        agent_id=conv.assignee_id,
        # The link's key (email, in-app): 192 random bits, unguessable by itself.
        token=secrets.token_urlsafe(24),
    )


async def send_survey(
    uow: UnitOfWork,
    conv: Conversation,
    *,
    settings: Settings,
    channels: Channels,
    language: str,
) -> tuple[Survey | None, str]:
    """Ask the closed conversation's customer on its channel; ``(None, why)`` if it cannot."""
    how = HOW.get(conv.channel)
    if how is None or how == PHONE:
        return None, f"{conv.channel} surveys are asked by the channel itself"
    s = uow.session
    if await s.scalar(select(Survey.id).where(Survey.conversation_id == conv.id)):
        return None, "already asked"
    survey = _survey(conv)
    lang = "zh" if language.startswith("zh") else "en"
    text = QUESTION[how][lang]
    options: dict[str, Any] | None = None
    if how == LINK:
        text = text.format(url=f"{settings.public_url.rstrip('/')}/csat/{survey.token}")
    elif how in (BUTTONS, WIDGET):
        options = {"csat": True}
    row, why = await effects.send_text(
        uow, conv, text, kind="survey", channels=channels, options=options
    )
    if row is None:
        return None, why
    s.add(survey)
    await s.flush()
    uow.emit(
        events.CsatRequested(
            conversation_id=conv.id,
            customer_id=conv.customer_id,
            agent_id=conv.assignee_id,
            queue=conv.queue,
            channel=conv.channel,
            survey_id=survey.id,
            how=how,
        )
    )
    return survey, ""


async def answered(
    uow: UnitOfWork, conv: Conversation, score: int, how: str, *, low: int, window_s: int
) -> Survey | None:
    """Record an answer that arrived (as a ``csat`` message) for ``conv``; the first answer
    counts. Opens a follow-up for the supervisors when the score is ``low`` or less."""
    s = uow.session
    survey = await s.scalar(select(Survey).where(Survey.conversation_id == conv.id))
    if survey is None:
        # Asked by the channel itself (Telegram buttons sent by hand, the phone's keys).
        survey = _survey(conv)
        s.add(survey)
    elif survey.state != "sent":
        return None
    survey.state = "answered"
    survey.answered_at = utcnow()
    survey.score = score
    await s.flush()
    uow.emit(
        events.CsatReceived(
            conversation_id=conv.id,
            customer_id=conv.customer_id,
            agent_id=survey.agent_id,
            queue=conv.queue,
            channel=conv.channel,
            survey_id=survey.id,
            score=score,
            how=how,
        )
    )
    if score <= low:
        team_id = await s.scalar(select(Queue.team_id).where(Queue.name == conv.queue))
        served = (
            await s.scalar(select(Agent.display_name).where(Agent.id == survey.agent_id))
            if survey.agent_id
            else None
        )
        title = f"Low satisfaction ({score}/5) on conversation #{conv.id}"
        if served:
            title += f", served by {served}"
        await follow_up(
            uow,
            customer_id=conv.customer_id,
            conversation_id=conv.id,
            title=title,
            source="csat",
            team_id=team_id,
            due_in=timedelta(days=1),
        )
        effects.alert(uow, conv, "low_csat", title)
    return survey


async def follow_up(
    uow: UnitOfWork,
    *,
    customer_id: int,
    conversation_id: int | None,
    title: str,
    source: str,
    team_id: int | None = None,
    owner_id: int | None = None,
    due_in: timedelta | None = None,
    created_by: int | None = None,
) -> FollowUp:
    """A follow-up task; with no owner it belongs to the team's supervisors."""
    task = FollowUp(
        customer_id=customer_id,
        conversation_id=conversation_id,
        title=title[:300],
        source=source,
        owner_id=owner_id,
        team_id=team_id,
        due_at=utcnow() + due_in if due_in is not None else None,
        created_by=created_by,
    )
    uow.session.add(task)
    await uow.session.flush()
    uow.emit(
        events.FollowUpCreated(
            conversation_id=conversation_id,
            customer_id=customer_id,
            agent_id=owner_id,
            follow_up_id=task.id,
            title=task.title,
            source=source,
            due_at=task.due_at.isoformat() if task.due_at else None,
        )
    )
    return task
