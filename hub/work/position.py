"""Where a waiting conversation stands in its queue: what callers and visitors are told."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Conversation

WAITING = ("queued", "offered")


async def queue_position(s: AsyncSession, conv: Conversation) -> int:
    """1 for the next one served: the router's order (priority, then how long it has been
    waiting) among the waiting conversations of the same channel and queue."""
    since = conv.waiting_since or conv.created_at
    ahead = await s.scalar(
        select(func.count())
        .select_from(Conversation)
        .where(
            Conversation.channel == conv.channel,
            Conversation.queue == conv.queue,
            Conversation.state.in_(WAITING),
            Conversation.id != conv.id,
            or_(
                Conversation.priority > conv.priority,
                (Conversation.priority == conv.priority) & (Conversation.waiting_since < since),
            ),
        )
    )
    return int(ahead or 0) + 1
