"""What the agent console asks of the hub: read models checked against the caller's rights,
and the console-only actions (typing indicators). The console holds no database session."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contract.channel import ChannelAdapter
from contract.chat import ConversationObserver
from contract.errors import Conflict, NotFound
from hub import access, queries
from hub.accounts.principal import Principal
from hub.console import views
from hub.signals import AgentTyping, ConversationRead, Signals
from hub.stream import StreamEvent
from hub.uow import Transactor, events_between, head_seq
from hub.work import canned
from storage.models import Conversation, Message


@dataclass(frozen=True, slots=True, kw_only=True)
class Opening:
    """A console's starting point: the stream head and what it shows and follows from there."""

    head: int
    user: dict[str, Any]
    involved: frozenset[int]  # conversations the user works on or is offered
    queues: frozenset[str] | None  # a team supervisor's floor; None: all of it
    snapshot: dict[str, Any]


class ConsoleService:
    """Read models and console actions, each in a transaction of its own."""

    def __init__(
        self,
        tx: Transactor,
        adapters: Mapping[str, ChannelAdapter],
        signals: Signals | None = None,
    ) -> None:
        self.tx = tx
        # Filled by the composition root once the channels are built.
        self.adapters = adapters
        self.signals = signals

    async def opening(self, principal: Principal, *, supervisor: bool) -> Opening:
        """Head, user, involvement and snapshot read together (one consistent view)."""
        assert principal.agent_id is not None
        agent_id = principal.agent_id
        visible = access.conversation_filter(principal)
        async with self.tx.sessions() as s:
            head = await head_seq(s)
            user = await views.user_card(s, agent_id)
            involved = await views.involved(s, agent_id)
            queues = None
            if supervisor and visible is not None:
                # A team's supervisor follows the floor of the team's queues only.
                queues = await views.team_queues(s, principal.team_ids)
            snapshot = await views.snapshot(s, agent_id, supervisor=supervisor, visible=visible)
        return Opening(
            head=head,
            user=user,
            involved=frozenset(involved),
            queues=queues,
            snapshot=snapshot,
        )

    async def events(self, first: int, last: int) -> list[StreamEvent]:
        """Stored events ``first..last`` (a resuming console's replay)."""
        return await self.tx.read(lambda s: events_between(s, first, last))

    async def ensure_readable(self, principal: Principal, conversation_id: int) -> None:
        await self.tx.read(lambda s: access.ensure_conversation(s, principal, conversation_id))

    async def ensure_writable(self, principal: Principal, conversation_id: int) -> Conversation:
        """The conversation, if the caller may see it and (an agent) is its assignee."""
        async with self.tx.sessions() as s:
            await access.ensure_conversation(s, principal, conversation_id)
            conv = await s.get(Conversation, conversation_id)
        if conv is None:
            raise NotFound(f"conversation {conversation_id} not found")
        if principal.role == "agent" and conv.assignee_id != principal.agent_id:
            raise Conflict("this conversation is not assigned to you")
        return conv

    async def ensure_customer(self, principal: Principal, *customer_ids: int) -> None:
        async with self.tx.sessions() as s:
            for customer_id in customer_ids:
                await access.ensure_customer(s, principal, customer_id)

    async def ensure_attachment(self, principal: Principal, attachment_id: int) -> None:
        await self.tx.read(lambda s: access.ensure_attachment(s, principal, attachment_id))

    async def open_conversation(self, principal: Principal, conversation_id: int) -> dict[str, Any]:
        """An opened conversation as the caller may read it (notes of other teams left out)."""
        async with self.tx.sessions() as s:
            # Reading is what the caller may see (their team's queues too); writing stays
            # with the assignee (``ensure_writable``).
            await access.ensure_conversation(s, principal, conversation_id)
            opened = await views.open_conversation(
                s, conversation_id, access.note_filter(principal)
            )
            await self._read_by_assignee(s, principal, conversation_id)
            return opened

    async def _read_by_assignee(
        self, s: AsyncSession, principal: Principal, conversation_id: int
    ) -> None:
        """The assignee opening a conversation has read it: channels with read receipts
        (the web chat) tell the customer."""
        if self.signals is None:
            return
        conv = await s.get(Conversation, conversation_id)
        if conv is None or conv.assignee_id is None or conv.assignee_id != principal.agent_id:
            return
        last = await s.scalar(
            select(func.max(Message.id)).where(
                Message.conversation_id == conversation_id, Message.direction == "in"
            )
        )
        if last is not None:
            self.signals.send(
                ConversationRead(conversation_id=conv.id, channel=conv.channel, message_id=last)
            )

    async def history(
        self, principal: Principal, customer_id: int, before: str | None
    ) -> dict[str, Any]:
        """A page of the customer's history across channels, newest first."""
        async with self.tx.sessions() as s:
            await access.ensure_customer(s, principal, customer_id)
            page = await queries.history(
                s, customer_id, limit=50, before=before, visible=access.note_filter(principal)
            )
        return page.model_dump(mode="json")

    async def message(self, row: Message) -> dict[str, Any]:
        """A stored message as the console shows it."""
        out = await self.tx.read(lambda s: queries.messages_out(s, [row]))
        return out[0].model_dump(mode="json")

    async def customer(self, customer_id: int) -> dict[str, Any]:
        out = await self.tx.read(lambda s: queries.get_customer(s, customer_id))
        return out.model_dump(mode="json")

    async def attachment(self, attachment_id: int) -> dict[str, Any]:
        out = await self.tx.read(lambda s: queries.attachment_out(s, attachment_id))
        return out.model_dump(mode="json")

    async def agent_ids(self, usernames: list[str]) -> set[int]:
        """The users a note mentions, by username."""
        return await self.tx.read(lambda s: views.agent_ids(s, usernames))

    async def agents_board(self) -> list[dict[str, Any]]:
        return await self.tx.read(views.agents_board)

    async def canned(
        self, principal: Principal, conversation_id: int | None, q: str
    ) -> list[dict[str, Any]]:
        """Canned responses matching ``q`` the caller may use, filled for the conversation
        when one is named."""
        async with self.tx.sessions() as s:
            if conversation_id is not None:
                await access.ensure_conversation(s, principal, conversation_id)
            langs = await canned.search_languages(s, principal, conversation_id)
            rows = await canned.search(s, principal, q, languages=langs)
            values = (await canned.placeholders_for(s, principal, conversation_id)).table()
        return [
            {
                "id": r.id,
                "shortcut": r.shortcut,
                "title": r.title,
                "text": r.text,
                "language": r.language,
                "expanded": canned.expand(r.text, values),
            }
            for r in rows
        ]

    async def dispositions(self, principal: Principal, conversation_id: int) -> dict[str, Any]:
        """The codes a conversation may close with and whether its queue requires one."""
        async with self.tx.sessions() as s:
            await access.ensure_conversation(s, principal, conversation_id)
            conv = await s.get_one(Conversation, conversation_id)
            rows = await canned.dispositions_for(s, conv.queue)
            required = await canned.disposition_required(s, conv.queue)
        return {"items": [{"code": r.code, "label": r.label} for r in rows], "required": required}

    async def typing(self, principal: Principal, conversation_id: int) -> None:
        """Show the customer that the agent is typing, where the conversation's channel can."""
        conv = await self.ensure_writable(principal, conversation_id)
        adapter = self.adapters.get(conv.channel)
        if adapter is None:
            return
        out = await self.tx.read(lambda s: queries.get_conversation(s, conv.id))
        if isinstance(adapter, ConversationObserver) and self.signals is not None:
            # A live channel: the customer's socket may be held by another process.
            self.signals.send(AgentTyping(conv.id, conv.channel, out.endpoint.address))
            return
        await adapter.typing(channel=conv.channel, to=out.endpoint.address)
