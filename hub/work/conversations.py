"""What agents do to conversations: reply, note, close. Each is one unit of work."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.settings import Settings
from contract.errors import Conflict, InvalidInput, NotFound
from contract.info import Channels
from hub import commands, events
from hub.customers import identity
from hub.outbox.delivery import enqueue
from hub.uow import Transactor, UnitOfWork
from hub.work.canned import check_close
from storage.models import Conversation, Endpoint, Message, utcnow

# Channels whose free-form replies are allowed only within 24 h of the customer's last message.


class ConversationService:
    """Agent-side changes to conversations."""

    def __init__(
        self,
        settings: Settings,
        tx: Transactor,
        reply_options: Mapping[str, frozenset[str]] | None = None,
        *,
        channels: Channels | None = None,
    ) -> None:
        self.settings = settings
        self.tx = tx
        self.channels = channels if channels is not None else Channels()
        self.reply_options: Mapping[str, frozenset[str]] = (
            {} if reply_options is None else reply_options
        )

    async def reply(
        self,
        conversation_id: int,
        *,
        text: str,
        author_id: int | None,
        note: bool = False,
        channel: str | None = None,
        endpoint: str | None = None,
        options: dict[str, Any] | None = None,
        client_msg_id: str | None = None,
        team_id: int | None = None,
    ) -> Message:
        """Store an outbound reply with its outbox row (or an internal note; with
        ``team_id`` a note only that team, its supervisors and admins may read)."""

        # Console replies and notes and REST replies share one key space per person.
        log_key = {
            "actor": commands.agent_actor(author_id or 0),
            "key": client_msg_id or "",
            "command": commands.MESSAGE,
        }

        async def work(uow: UnitOfWork) -> Message:
            s = uow.session
            keyed = bool(client_msg_id) and author_id is not None
            if keyed:
                done = await commands.recall(s, **log_key)
                if done is not None:
                    return await s.get_one(Message, done["message_id"])
            conv = await s.get(Conversation, conversation_id)
            if conv is None:
                raise NotFound(f"conversation {conversation_id} not found")
            if note:
                row = self._note(conv, text, author_id)
                if team_id is not None:
                    row.meta = {**row.meta, "visibility": "team", "team_id": team_id}
            else:
                row = await self._outbound(uow, conv, text, author_id, channel, endpoint, options)
            s.add(row)
            await s.flush()
            if not note:
                enqueue(uow, row)
                if conv.first_response_at is None:
                    conv.first_response_at = utcnow()
            conv.last_activity_at = utcnow()
            if keyed:
                commands.record(s, **log_key, result={"message_id": row.id})
            uow.emit(
                (events.NoteAdded if note else events.MessageSent)(
                    conversation_id=conv.id,
                    customer_id=conv.customer_id,
                    agent_id=author_id,
                    queue=conv.queue,
                    channel=row.channel,
                    message_id=row.id,
                    text=text[:500],
                    mentions=row.meta.get("mentions", []),
                    visibility=row.meta.get("visibility", "all"),
                    team_id=row.meta.get("team_id"),
                )
            )
            return row

        return await self.tx.run(work)

    async def bot_reply(self, conversation_id: int, text: str) -> int | None:
        """A bot's answer on a conversation it holds (state "bot"): stored and sent like a
        reply, marked ``kind="bot"``; not an agent's first response. None when the
        conversation is no longer the bot's (handed off or closed meanwhile)."""

        async def work(uow: UnitOfWork) -> int | None:
            conv = await uow.session.get(Conversation, conversation_id)
            if conv is None or conv.state != "bot":
                return None
            row = await self._outbound(uow, conv, text, None, None, None, None)
            row.kind = "bot"
            uow.session.add(row)
            await uow.session.flush()
            enqueue(uow, row)
            conv.last_activity_at = utcnow()
            uow.emit(
                events.MessageSent(
                    conversation_id=conv.id,
                    customer_id=conv.customer_id,
                    queue=conv.queue,
                    channel=row.channel,
                    message_id=row.id,
                    text=text[:500],
                    kind="bot",
                )
            )
            return row.id

        return await self.tx.run(work)

    def _note(self, conv: Conversation, text: str, author_id: int | None) -> Message:
        mentions = sorted({w[1:].rstrip(".,:;!?") for w in text.split() if w.startswith("@")})
        return Message(
            conversation_id=conv.id,
            customer_id=conv.customer_id,
            channel=conv.channel,
            direction="note",
            kind="note",
            author_id=author_id,
            text=text,
            status="",
            meta={"mentions": mentions},
        )

    async def _outbound(
        self,
        uow: UnitOfWork,
        conv: Conversation,
        text: str,
        author_id: int | None,
        channel: str | None,
        endpoint_ref: str | None,
        options: dict[str, Any] | None,
    ) -> Message:
        s = uow.session
        channel = channel or conv.channel
        info = self.channels.get(channel)
        if info is None or not info.replies:
            raise InvalidInput(f"unknown channel {channel!r}")
        endpoint = await self._target_endpoint(s, conv, channel, endpoint_ref)
        if channel in endpoint.opted_out:
            raise Conflict(
                f"the customer opted out of {channel} on {endpoint.address}; "
                "reply on another channel"
            )
        if endpoint.undeliverable:
            raise Conflict(f"{endpoint.address} is undeliverable ({endpoint.undeliverable})")
        opts = dict(options or {})
        refused = sorted(set(opts) - self.reply_options.get(channel, frozenset()))
        if refused:
            # Threading, reply addresses and the session window come from the conversation;
            # a client naming them could post into another chat or rewrite Reply-To.
            allowed = ", ".join(sorted(self.reply_options.get(channel, ()))) or "none"
            raise InvalidInput(
                f"reply option(s) {', '.join(map(repr, refused))[:200]} may not be set on "
                f"{channel}; allowed: {allowed}"
            )
        window = info.session_window_s
        if window and "template_sid" not in opts:
            last = conv.last_inbound_at if channel == conv.channel else None
            if last is None or (utcnow() - last).total_seconds() > window:
                # Where the channel has approved templates (WhatsApp) they may still go out;
                # elsewhere (WeChat) only the customer's next message opens the window again.
                instead = (
                    "send an approved template instead of free text"
                    if "template_sid" in self.reply_options.get(channel, frozenset())
                    else "the customer must write first"
                )
                raise Conflict(
                    f"outside the {channel} {window // 3600}-hour customer-service window: "
                    + instead
                )
        meta: dict[str, Any] = {"options": opts} if opts else {}
        if endpoint.id != conv.endpoint_id:
            meta["endpoint_id"] = endpoint.id
        return Message(
            conversation_id=conv.id,
            customer_id=conv.customer_id,
            channel=channel,
            direction="out",
            kind="message",
            author_id=author_id,
            text=text,
            status="pending",
            meta=meta,
        )

    async def _target_endpoint(
        self, s: AsyncSession, conv: Conversation, channel: str, endpoint_ref: str | None
    ) -> Endpoint:
        kind = self.channels.endpoint_kind(channel)
        if endpoint_ref:
            ref_kind, _, address = endpoint_ref.partition(":")
            norm = identity.normalize(
                ref_kind, address, default_region=self.settings.default_phone_region
            )
            query = select(Endpoint).where(
                Endpoint.customer_id == conv.customer_id,
                Endpoint.kind == norm.kind,
                Endpoint.address == norm.address,
            )
        elif channel == conv.channel:
            return await s.get_one(Endpoint, conv.endpoint_id)
        else:
            query = (
                select(Endpoint)
                .where(Endpoint.customer_id == conv.customer_id, Endpoint.kind == kind)
                .order_by(Endpoint.verified.desc(), Endpoint.id)
                .limit(1)
            )
        found: Endpoint | None = await s.scalar(query)
        if found is None or found.kind != kind:
            raise InvalidInput(f"the customer has no {kind} endpoint for {channel}")
        return found

    async def close(
        self, conversation_id: int, *, agent_id: int | None, disposition: str = ""
    ) -> None:
        """Close a conversation with a disposition code."""

        async def work(uow: UnitOfWork) -> None:
            conv = await uow.session.get(Conversation, conversation_id)
            if conv is None:
                raise NotFound(f"conversation {conversation_id} not found")
            if conv.state == "closed":
                return
            await check_close(uow.session, conv.queue, disposition)
            conv.state = "closed"
            conv.closed_at = utcnow()
            conv.disposition = disposition[:100]
            uow.emit(
                events.ConversationClosed(
                    conversation_id=conv.id,
                    customer_id=conv.customer_id,
                    agent_id=agent_id,
                    queue=conv.queue,
                    channel=conv.channel,
                    disposition=conv.disposition,
                )
            )

        await self.tx.run(work)
