"""Phone KPIs from the calls' own records (the provider's queue and talk times).

Definitions (shared/reference/routing.md, Amazon Connect's):

* queued: inbound calls that reached a queue (not those that hung up in the menus, nor
  voicemails left outside opening hours);
* service level at X s = calls removed from the queue within X s (answered, abandoned, or
  left for a callback or voicemail) / queued; the answered-only variant = answered within X s
  / answered;
* ASA = mean queue time of answered calls (the whisper included: it runs in the queue);
* abandonment rate = abandoned / (queued - callbacks requested - voicemails);
* AHT = mean talk time of answered calls (after-call work is in the agent report).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Call

LEFT_BY_CHOICE = ("callback_requested", "voicemail")
REMOVED = ("answered", "abandoned", *LEFT_BY_CHOICE)


@dataclass(frozen=True, slots=True)
class CallRow:
    """What the KPIs need of one call."""

    outcome: str
    wait_s: int | None
    talk_s: int | None


class VoiceServiceLevel(BaseModel):
    threshold_s: float
    service_level: float | None = Field(description="removed within the threshold / queued")
    answered_within: float | None = Field(description="answered within / answered")


class VoiceKpis(BaseModel):
    queued: int
    answered: int
    abandoned: int
    callbacks_requested: int
    voicemails: int
    asa_s: float | None
    abandonment_rate: float | None
    aht_s: float | None
    longest_wait_answered_s: int | None
    service_levels: list[VoiceServiceLevel]


def _mean(values: Sequence[int]) -> float | None:
    return sum(values) / len(values) if values else None


def voice_kpis(rows: Iterable[CallRow], thresholds: Sequence[float] = (20.0,)) -> VoiceKpis:
    """The KPIs of these calls (see the module docstring for the definitions)."""
    queued = [r for r in rows if r.outcome in REMOVED]
    answered = [r.wait_s or 0 for r in queued if r.outcome == "answered"]
    talks = [r.talk_s for r in queued if r.outcome == "answered" and r.talk_s is not None]
    abandoned = sum(1 for r in queued if r.outcome == "abandoned")
    by_choice = sum(1 for r in queued if r.outcome in LEFT_BY_CHOICE)
    levels = []
    for t in thresholds:
        removed = sum(1 for r in queued if (r.wait_s or 0) <= t)
        levels.append(
            VoiceServiceLevel(
                threshold_s=t,
                service_level=removed / len(queued) if queued else None,
                answered_within=sum(1 for w in answered if w <= t) / len(answered)
                if answered
                else None,
            )
        )
    deserving = len(queued) - by_choice
    return VoiceKpis(
        queued=len(queued),
        answered=len(answered),
        abandoned=abandoned,
        callbacks_requested=sum(1 for r in queued if r.outcome == "callback_requested"),
        voicemails=sum(1 for r in queued if r.outcome == "voicemail"),
        asa_s=_mean(answered),
        abandonment_rate=abandoned / deserving if deserving else None,
        aht_s=_mean(talks),
        longest_wait_answered_s=max(answered) if answered else None,
        service_levels=levels,
    )


async def call_rows(
    s: AsyncSession,
    *,
    since: datetime,
    until: datetime,
    queue: str | None = None,
    channel: str | None = None,
) -> list[CallRow]:
    """Inbound calls that started in [since, until) and reached a queue."""
    query = select(Call.outcome, Call.wait_s, Call.talk_s).where(
        Call.direction == "inbound",
        Call.conversation_id.is_not(None),
        Call.started_at >= since,
        Call.started_at < until,
    )
    if queue:
        query = query.where(Call.queue == queue)
    if channel:
        query = query.where(Call.channel == channel)
    return [CallRow(o, w, t) for o, w, t in (await s.execute(query)).all()]
