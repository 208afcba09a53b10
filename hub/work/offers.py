"""Offers and assignment: the stored side of routing decisions.

The router (``routing/``) decides; these units of work make a decision durable and visible
as events. An assignment commits only if the conversation is still waiting for that very
offer, so two deciders (a split brain, a double click) can never assign one conversation to
two agents.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from config.settings import Settings
from contract.errors import Conflict, InvalidInput, NotFound
from hub import events
from hub.audit import record
from hub.lease import Fence, check_fence
from hub.uow import Transactor, UnitOfWork
from storage.models import (
    Agent,
    Call,
    Conversation,
    ConversationGrant,
    Customer,
    Message,
    Offer,
    Queue,
    utcnow,
)

AGENT_STATES = ("available", "away", "offline")


class WorkService:
    """Create, accept, reject, expire and rescind offers; transfer, wrap up, set states."""

    def __init__(self, settings: Settings, tx: Transactor) -> None:
        self.settings = settings
        self.tx = tx

    # ------------------------------------------------------------------ offers
    async def create_offer(
        self,
        conversation_id: int,
        agent_id: int,
        *,
        timeout_s: float | None = None,
        preferred: str | None = None,
        fence: Fence | None = None,
    ) -> int | None:
        """Reserve a waiting conversation for an agent; None if it stopped waiting.

        With ``fence`` (the router lease's) nothing is written unless the lease is still
        current as this commits: ``LeaseLost`` instead."""
        # preferred: why this agent came first ("last_agent", "account_owner"); the offer says so.
        timeout = timedelta(seconds=timeout_s or self.settings.offer_timeout_s)

        async def work(uow: UnitOfWork) -> int | None:
            s = uow.session
            now = utcnow()
            if fence is not None:
                await check_fence(s, fence)
            moved = await s.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id, Conversation.state == "queued")
                .values(state="offered")
                .returning(Conversation.id)
            )
            if moved.scalar_one_or_none() is None:
                return None
            conv = await s.get_one(Conversation, conversation_id)
            offer = Offer(
                conversation_id=conversation_id,
                agent_id=agent_id,
                state="pending",
                created_at=now,
                expires_at=now + timeout,
            )
            s.add(offer)
            await s.flush()
            customer = await s.get_one(Customer, conv.customer_id)
            preview = await s.scalar(
                select(Message.text)
                .where(Message.conversation_id == conv.id, Message.direction == "in")
                .order_by(Message.id.desc())
                .limit(1)
            )
            uow.emit(
                events.OfferCreated(
                    conversation_id=conv.id,
                    customer_id=conv.customer_id,
                    agent_id=agent_id,
                    queue=conv.queue,
                    channel=conv.channel,
                    offer_id=offer.id,
                    expires_at=offer.expires_at.isoformat(),
                    customer_name=customer.display_name,
                    segment=customer.segment,
                    priority=conv.priority,
                    preview=(preview or "")[:200],
                    preferred=preferred,
                )
            )
            return offer.id

        return await self.tx.run(work)

    async def _pending_offer(self, uow: UnitOfWork, offer_id: int) -> tuple[Offer, Conversation]:
        """The offer and its conversation, locked in that order until commit: an accept and
        a rescind (or expiry) of one offer, in two processes, must see each other's outcome,
        not both write theirs (a rescind after an accept requeued an assigned conversation).
        """
        offer = await uow.session.get(Offer, offer_id, with_for_update=True, populate_existing=True)
        if offer is None:
            raise NotFound(f"offer {offer_id} not found")
        if offer.state != "pending":
            raise Conflict(f"offer {offer_id} is {offer.state}")
        conv = await uow.session.get_one(
            Conversation, offer.conversation_id, with_for_update=True, populate_existing=True
        )
        return offer, conv

    async def accept(self, offer_id: int, agent_id: int) -> int:
        """The agent takes the offered conversation; returns its id."""

        async def work(uow: UnitOfWork) -> int:
            offer, conv = await self._pending_offer(uow, offer_id)
            if offer.agent_id != agent_id:
                raise Conflict("this offer is for another agent")
            now = utcnow()
            if offer.expires_at <= now:
                raise Conflict("the offer expired")
            assigned = await uow.session.execute(
                update(Conversation)
                .where(
                    Conversation.id == conv.id,
                    Conversation.state == "offered",
                    Conversation.assignee_id.is_(None),
                )
                .values(state="assigned", assignee_id=agent_id)
                .returning(Conversation.id)
            )
            if assigned.scalar_one_or_none() is None:
                raise Conflict("the conversation is no longer waiting")
            offer.state = "accepted"
            offer.decided_at = now
            common: dict[str, Any] = {
                "conversation_id": conv.id,
                "customer_id": conv.customer_id,
                "agent_id": agent_id,
                "queue": conv.queue,
                "channel": conv.channel,
            }
            wait = (now - (conv.waiting_since or conv.created_at)).total_seconds()
            uow.emit(events.OfferAccepted(offer_id=offer.id, **common))
            uow.emit(events.ConversationAssigned(wait_s=round(wait, 3), **common))
            return conv.id

        return await self.tx.run(work)

    async def reject(self, offer_id: int, agent_id: int) -> None:
        """The agent declines; the conversation waits again (never re-offered to them)."""
        await self._end_offer(offer_id, "rejected", agent_id=agent_id)

    async def expire(self, offer_id: int) -> None:
        """Nobody answered in time: re-queue, and the agent stops receiving offers."""
        await self._end_offer(offer_id, "expired", agent_id=None)

    async def rescind(self, offer_id: int, reason: str) -> None:
        """The work went away (customer abandoned, conversation closed)."""
        await self._end_offer(offer_id, "rescinded", agent_id=None, reason=reason)

    async def _end_offer(
        self, offer_id: int, outcome: str, *, agent_id: int | None, reason: str = ""
    ) -> None:
        async def work(uow: UnitOfWork) -> None:
            offer, conv = await self._pending_offer(uow, offer_id)
            if agent_id is not None and offer.agent_id != agent_id:
                raise Conflict("this offer is for another agent")
            offer.state = outcome
            offer.decided_at = utcnow()
            common: dict[str, Any] = {
                "conversation_id": conv.id,
                "customer_id": conv.customer_id,
                "agent_id": offer.agent_id,
                "queue": conv.queue,
                "channel": conv.channel,
            }
            uow.emit(events.OFFER_ENDED[outcome](offer_id=offer.id, reason=reason, **common))
            if conv.state == "offered":
                conv.state = "queued"
                uow.emit(events.ConversationQueued(reason=f"offer {outcome}", **common))
            if outcome == "expired":
                agent = await uow.session.get_one(Agent, offer.agent_id)
                if agent.state == "available":
                    set_agent_state(uow, agent, self.settings.not_responding_state, "missed offer")

        await self.tx.run(work)

    # ------------------------------------------------------------------ agent state
    async def set_state(self, agent_id: int, state: str, reason: str = "") -> str:
        """Change an agent's availability."""
        if state not in AGENT_STATES:
            raise InvalidInput(f"state must be one of {', '.join(AGENT_STATES)}")

        async def work(uow: UnitOfWork) -> str:
            agent = await uow.session.get(Agent, agent_id)
            if agent is None:
                raise NotFound(f"agent {agent_id} not found")
            if agent.state != state or agent.state_reason != reason:
                set_agent_state(uow, agent, state, reason)
            return state

        return await self.tx.run(work)

    # ------------------------------------------------------------------ handling
    async def transfer(
        self,
        conversation_id: int,
        *,
        by: int | None,
        to_agent: int | None = None,
        to_queue: str | None = None,
        note: str = "",
    ) -> None:
        """Hand a conversation to another agent (assigned at once) or back to a queue."""
        if (to_agent is None) == (to_queue is None):
            raise InvalidInput("transfer needs exactly one of agent_id or queue")

        async def work(uow: UnitOfWork) -> None:
            s = uow.session
            conv = await s.get(Conversation, conversation_id)
            if conv is None:
                raise NotFound(f"conversation {conversation_id} not found")
            if conv.state in ("closed", "abandoned"):
                raise Conflict("the conversation is closed")
            live = await s.scalar(
                select(Call.call_sid).where(
                    Call.conversation_id == conv.id, Call.state.in_(("connecting", "talking"))
                )
            )
            if live is not None:
                # The agent's phone is connected to the caller; the hub cannot move that
                # audio yet, so handing the record to someone else would split the two.
                raise Conflict(
                    "this call is connected: transfer it on the phone, or once it has ended"
                )
            if to_agent is not None:
                target = await s.get(Agent, to_agent)
                if target is None or not target.active:
                    raise NotFound(f"agent {to_agent} not found")
            if to_queue is not None and not await s.scalar(
                select(Queue.id).where(Queue.name == to_queue)
            ):
                raise NotFound(f"queue {to_queue!r} not found")
            if note:
                s.add(
                    Message(
                        conversation_id=conv.id,
                        customer_id=conv.customer_id,
                        channel=conv.channel,
                        direction="note",
                        kind="transfer_note",
                        author_id=by,
                        text=note,
                    )
                )
            previous = conv.assignee_id
            await _grant_teams(s, conv, to_agent=to_agent, to_queue=to_queue)
            # Who handed whose conversation to which team is an access decision: audited.
            actor = await s.scalar(select(Agent.username).where(Agent.id == by)) if by else None
            record(
                uow,
                actor=actor or "hub",
                action="conversation.transfer",
                target_type="conversation",
                target_id=conv.id,
                details={
                    "from_agent": previous,
                    "from_queue": conv.queue,
                    "to_agent": to_agent,
                    "to_queue": to_queue,
                },
            )
            common: dict[str, Any] = {
                "conversation_id": conv.id,
                "customer_id": conv.customer_id,
                "channel": conv.channel,
            }
            if to_agent is not None:
                conv.assignee_id = to_agent
                conv.state = "assigned"
                uow.emit(
                    events.ConversationTransferred(
                        agent_id=by,
                        queue=conv.queue,
                        from_agent=previous,
                        to_agent=to_agent,
                        note=note[:500],
                        **common,
                    )
                )
                uow.emit(
                    events.ConversationAssigned(
                        agent_id=to_agent, queue=conv.queue, transfer=True, **common
                    )
                )
            else:
                assert to_queue is not None
                conv.queue = to_queue
                conv.assignee_id = None
                conv.state = "queued"
                uow.emit(
                    events.ConversationTransferred(
                        agent_id=by,
                        queue=to_queue,
                        from_agent=previous,
                        to_queue=to_queue,
                        note=note[:500],
                        **common,
                    )
                )
                uow.emit(
                    events.ConversationQueued(
                        agent_id=previous, queue=to_queue, reason="transfer", **common
                    )
                )

        await self.tx.run(work)

    async def hand_off(self, conversation_id: int, reason: str = "handoff") -> bool:
        """A bot gives the conversation to people: it waits in its queue from now on.
        False when it was not the bot's (already handed off, closed)."""

        async def work(uow: UnitOfWork) -> bool:
            conv = await uow.session.get(Conversation, conversation_id)
            if conv is None or conv.state != "bot":
                return False
            bot_hand_off(uow, conv, reason)
            return True

        return await self.tx.run(work)

    async def wrap_up(self, conversation_id: int, *, agent_id: int | None) -> None:
        """The agent finished talking; after-contact work holds their capacity."""

        async def work(uow: UnitOfWork) -> None:
            conv = await uow.session.get(Conversation, conversation_id)
            if conv is None:
                raise NotFound(f"conversation {conversation_id} not found")
            if conv.state != "assigned":
                raise Conflict(f"conversation is {conv.state}, not assigned")
            begin_wrap_up(uow, conv)

        await self.tx.run(work)

    async def set_priority(self, conversation_id: int, priority: int, *, by: int | None) -> None:
        await self._update(conversation_id, by=by, priority=priority)

    async def set_labels(self, conversation_id: int, labels: list[str], *, by: int | None) -> None:
        clean = sorted({str(x).strip()[:50] for x in labels if str(x).strip()})
        await self._update(conversation_id, by=by, labels=clean)

    async def _update(self, conversation_id: int, *, by: int | None, **changes: Any) -> None:
        """Change plain conversation fields and say so in one ``conversation.updated`` event."""

        async def work(uow: UnitOfWork) -> None:
            conv = await uow.session.get(Conversation, conversation_id)
            if conv is None:
                raise NotFound(f"conversation {conversation_id} not found")
            for name, value in changes.items():
                setattr(conv, name, value)
            uow.emit(
                events.ConversationUpdated(
                    conversation_id=conv.id,
                    agent_id=by,
                    customer_id=conv.customer_id,
                    queue=conv.queue,
                    channel=conv.channel,
                    **changes,
                )
            )

        await self.tx.run(work)

    async def expired_offers(self, now: datetime) -> list[int]:
        """Pending offers past their deadline (the dispatcher expires them)."""

        async def work(session: AsyncSession) -> list[int]:
            rows = await session.scalars(
                select(Offer.id).where(Offer.state == "pending", Offer.expires_at <= now)
            )
            return list(rows.all())

        return await self.tx.read(work)


async def abandon_conversation(tx: Transactor, conversation_id: int, reason: str) -> bool:
    """A waiting conversation was given up (customer left, TTL): recorded as an abandon."""

    async def work(uow: UnitOfWork) -> bool:
        conv = await uow.session.get(Conversation, conversation_id)
        if conv is None or conv.state not in ("queued", "offered"):
            return False
        abandon(uow, conv, reason)
        return True

    return await tx.run(work)


# ---------------------------------------------------------------- steps inside a unit of work
# Shared by the services that move conversations and agents (offers here, calls in
# ``hub.voice``): one way to write each state change and its event.


def bot_hand_off(uow: UnitOfWork, conv: Conversation, reason: str) -> None:
    """A conversation the bot held waits for people in its queue from now on."""
    conv.state = "queued"
    conv.waiting_since = utcnow()
    uow.emit(
        events.ConversationQueued(
            conversation_id=conv.id,
            customer_id=conv.customer_id,
            queue=conv.queue,
            channel=conv.channel,
            reason=reason[:50],
        )
    )


def set_agent_state(uow: UnitOfWork, agent: Agent, state: str, reason: str) -> None:
    """The agent's availability changes (``agent.state_changed``)."""
    previous = agent.state
    agent.state = state
    agent.state_reason = reason[:100]
    agent.state_since = utcnow()
    uow.emit(
        events.AgentStateChanged(
            agent_id=agent.id, state=state, reason=agent.state_reason, previous=previous
        )
    )


def begin_wrap_up(uow: UnitOfWork, conv: Conversation) -> None:
    """The talking is over: after-contact work holds the assignee's capacity."""
    conv.state = "wrap_up"
    uow.emit(
        events.ConversationWrapUp(
            conversation_id=conv.id,
            customer_id=conv.customer_id,
            agent_id=conv.assignee_id,
            queue=conv.queue,
            channel=conv.channel,
        )
    )


def abandon(uow: UnitOfWork, conv: Conversation, reason: str, wait_s: float | None = None) -> None:
    """The customer went away before an agent took the work; ``wait_s`` when the channel
    measured it (a phone queue), else from when it started waiting."""
    now = utcnow()
    conv.state = "abandoned"
    conv.closed_at = now
    if wait_s is None:
        wait_s = round((now - (conv.waiting_since or conv.created_at)).total_seconds(), 3)
    uow.emit(
        events.ConversationAbandoned(
            conversation_id=conv.id,
            customer_id=conv.customer_id,
            queue=conv.queue,
            channel=conv.channel,
            reason=reason,
            wait_s=wait_s,
        )
    )


async def _grant_teams(
    s: AsyncSession, conv: Conversation, *, to_agent: int | None, to_queue: str | None
) -> None:
    """A transfer shares the conversation with the receiving team and keeps it visible to
    the team it came from (its queue's team), so both can read what they worked on."""
    teams: set[int] = set()
    for queue in (conv.queue, to_queue):
        if queue:
            team = await s.scalar(select(Queue.team_id).where(Queue.name == queue))
            if team is not None:
                teams.add(team)
    if to_agent is not None:
        team = await s.scalar(select(Agent.team_id).where(Agent.id == to_agent))
        if team is not None:
            teams.add(team)
    granted = set(
        (
            await s.scalars(
                select(ConversationGrant.team_id).where(
                    ConversationGrant.conversation_id == conv.id
                )
            )
        ).all()
    )
    for team in sorted(teams - granted):
        s.add(ConversationGrant(conversation_id=conv.id, team_id=team))
