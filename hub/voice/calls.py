"""Phone calls: one ``calls`` row per caller leg or callback, folded from provider facts.

The phone adapter reports what the provider tells it (``contract.voice.CallFact``); the
provider gives no order guarantee and retries, so each fact is applied at most once (its key
is kept in ``Call.facts``) and the outcome is decided by the first fact that ends the call's
waiting: ``answered`` (connected to an agent), ``abandoned`` (hung up while waiting),
``voicemail``, ``callback_requested``, ``ivr_hangup`` (hung up in the menus) or, for a
callback we placed, ``no_answer``. Later facts only complete the figures (talk time,
duration). Each call has one history entry on its conversation, rewritten as facts arrive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from config.settings import Settings
from contract.channel import InboundMessage
from contract.errors import InvalidInput
from contract.voice import CallerInfo, CallFact, CallView, EnqueueRequest, QueuePlace
from hub import events
from hub.customers.identity import normalize_phone
from hub.ingest.orm import Ingestor
from hub.uow import Transactor, UnitOfWork
from hub.work.offers import abandon, begin_wrap_up, set_agent_state
from hub.work.position import queue_position
from storage.models import Agent, Call, Conversation, Customer, Endpoint, Message, utcnow

logger = logging.getLogger(__name__)

WAITING = ("queued", "offered")
TERMINAL_STATUS = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# The number of recent answered calls whose handling time estimates a caller's wait.
AHT_SAMPLE = 50
# Markers in ``Call.facts``: a callback task is due / was opened (its conversation id).
CALLBACK_DUE, CALLBACK_OPENED = "callback:due", "callback:opened"
# ... and the channel the adapter wants its callback tasks on.
CALLBACK_CHANNEL = "callback:channel"
# Withheld caller ids: every such call is its own unknown customer.
WITHHELD_KIND = "withheld"
OUTCOME_TEXT = {
    "answered": "Call answered",
    "abandoned": "Caller hung up while waiting",
    "voicemail": "Caller left a voicemail",
    "callback_requested": "Caller asked to be called back",
    "ivr_hangup": "Caller hung up in the menus",
    "no_answer": "Callback not answered",
    "error": "Call failed",
}


def duration_text(seconds: int | None) -> str:
    """``3 min 04 s`` / ``12 s``."""
    if seconds is None:
        return "?"
    minutes, rest = divmod(max(0, int(seconds)), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def summary_text(call: Call, agent_name: str | None) -> str:
    """The history entry of a call: outcome, who, wait, talk and total time."""
    if call.direction == "callback":
        head = "Callback" if call.outcome != "no_answer" else OUTCOME_TEXT["no_answer"]
        if call.outcome == "answered":
            head = "Callback answered"
    else:
        head = OUTCOME_TEXT.get(call.outcome, "Call")
    parts = [head + (f" by {agent_name}" if agent_name and call.outcome == "answered" else "")]
    if call.direction == "inbound" and call.wait_s is not None and call.enqueued_at is not None:
        parts.append(f"waited {duration_text(call.wait_s)}")
    if call.talk_s is not None:
        parts.append(f"talked {duration_text(call.talk_s)}")
    if call.duration_s is not None:
        parts.append(f"{duration_text(call.duration_s)} in all")
    if call.ivr:
        parts.append("menu: " + " › ".join(str(c) for c in call.ivr))
    return " · ".join(parts)


def view(call: Call) -> CallView:
    return CallView(
        call_sid=call.call_sid,
        state=call.state,
        exit=call.exit,
        outcome=call.outcome,
        conversation_id=call.conversation_id,
        language=call.language,
        queue=call.queue,
    )


def fact_key(fact: CallFact) -> str:
    """What makes a fact a repeat: the same kind, leg and value (a provider retry)."""
    value = fact.status or fact.result or fact.recording_sid
    return f"{fact.kind}:{fact.leg}:{fact.leg_sid}:{value}"


class CallService:
    """Implements ``contract.voice.CallPort`` over the ``calls`` table."""

    def __init__(
        self,
        settings: Settings,
        tx: Transactor,
        ingestor: Ingestor,
        *,
        on_end_leg: Callable[[str, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.tx = tx
        self.ingestor = ingestor
        # (channel, leg sid): hang up an agent leg that is no longer needed (after commit).
        self.on_end_leg = on_end_leg

    def _phone(self, raw: str) -> tuple[str, str]:
        """(endpoint kind, address) of a caller id; withheld ids are kept per call."""
        try:
            return "phone", normalize_phone(raw, self.settings.default_phone_region)
        except InvalidInput:
            return WITHHELD_KIND, raw

    # ------------------------------------------------------------------ arrival
    async def started(
        self, *, channel: str, call_sid: str, from_number: str, to_number: str
    ) -> CallerInfo:
        kind, address = self._phone(from_number)

        async def work(uow: UnitOfWork) -> CallerInfo:
            s = uow.session
            call = await s.scalar(select(Call).where(Call.call_sid == call_sid))
            customer = None
            if kind == "phone":
                customer = await s.scalar(
                    select(Customer)
                    .join(Endpoint, Endpoint.customer_id == Customer.id)
                    .where(Endpoint.kind == kind, Endpoint.address == address)
                )
            if call is None:
                call = Call(
                    call_sid=call_sid,
                    channel=channel,
                    direction="inbound",
                    state="ivr",
                    from_number=from_number[:200],
                    to_number=to_number[:200],
                    customer_id=customer.id if customer else None,
                    ivr=[],
                    recording={},
                    facts={},
                )
                s.add(call)
            if customer is None:
                return CallerInfo(customer_id=None, name="", segment="", language="", known=False)
            return CallerInfo(
                customer_id=customer.id,
                name=customer.display_name,
                segment=customer.segment,
                language=customer.language or "",
                known=True,
            )

        return await self.tx.run(work)

    async def enqueued(self, req: EnqueueRequest) -> CallView:
        """Open (once) the call's conversation in the chosen queue; the router takes it."""
        kind, address = self._phone(req.from_number)
        existing = await self.tx.read(
            lambda s: s.scalar(select(Call).where(Call.call_sid == req.call_sid))
        )
        if existing is not None and existing.conversation_id is not None:
            return view(existing)
        menu = " › ".join(req.choices)
        result = await self.ingestor.ingest(
            InboundMessage(
                channel=req.channel,
                sender_kind=kind,
                sender=address if kind == "phone" else f"{address} ({req.call_sid})",
                provider_id=req.call_sid,
                text=f"Incoming call{' · ' + menu if menu else ''}",
                recipient=req.to_number,
                threading="explicit",
                queue=req.queue,
                priority=req.priority,
                language=req.language or None,
                display_name=None if kind == "phone" else "Withheld number",
                occurred_at=req.occurred_at,
                metadata={"call": {"sid": req.call_sid, "menu": list(req.choices)}},
            )
        )

        async def work(uow: UnitOfWork) -> CallView:
            s = uow.session
            call = await s.scalar(select(Call).where(Call.call_sid == req.call_sid))
            if call is None:
                call = Call(
                    call_sid=req.call_sid,
                    channel=req.channel,
                    direction="inbound",
                    from_number=req.from_number[:200],
                    to_number=req.to_number[:200],
                    recording={},
                    facts={},
                )
                s.add(call)
            call.conversation_id = result.conversation_id
            call.customer_id = result.customer_id
            call.queue = req.queue
            call.language = req.language
            call.ivr = list(req.choices)
            call.enqueued_at = call.enqueued_at or utcnow()
            if req.callback_channel and CALLBACK_CHANNEL not in call.facts:
                call.facts = {**call.facts, CALLBACK_CHANNEL: req.callback_channel}
            if call.state == "ivr" or not call.state:
                call.state = "queued"
            if call.state == "ended" and result.conversation_id is not None:
                # The caller hung up before this request was answered: nobody waits.
                await self._close_conversation(uow, call, abandoned=True)
            return view(call)

        return await self.tx.run(work)

    # ------------------------------------------------------------------ waiting
    async def place(self, *, channel: str, call_sid: str) -> QueuePlace:
        """The waiting caller's position (priority, then age) and expected wait."""

        async def work(s: Any) -> QueuePlace:
            call = await s.scalar(select(Call).where(Call.call_sid == call_sid))
            if call is None or call.conversation_id is None:
                return QueuePlace(state="unknown", position=0, expected_wait_s=None)
            agent_name = ""
            if call.agent_id is not None:
                agent_name = await s.scalar(
                    select(Agent.display_name).where(Agent.id == call.agent_id)
                )
            if call.state != "queued":
                return QueuePlace(
                    state=call.state, position=0, expected_wait_s=None, agent_name=agent_name or ""
                )
            conv = await s.get(Conversation, call.conversation_id)
            if conv is None or conv.state in ("closed", "abandoned"):
                # Closed by someone while the caller still waits: nobody will take it.
                return QueuePlace(state="closed", position=0, expected_wait_s=None)
            if conv.state not in WAITING:  # accepted, the agent's phone about to ring
                return QueuePlace(state="connecting", position=0, expected_wait_s=None)
            position = await queue_position(s, conv)
            return QueuePlace(
                state="queued",
                position=position,
                expected_wait_s=await self._expected_wait(s, conv.queue, position),
            )

        return await self.tx.read(work)

    async def _expected_wait(self, s: Any, queue: str, position: int) -> int | None:
        """Position x average handling time / agents logged in (None without history).

        The average handling time is the talk time of the queue's last answered calls plus
        the wrap-up setting; the agents are those not offline who can take a call."""
        talks = (
            await s.scalars(
                select(Call.talk_s)
                .where(Call.queue == queue, Call.outcome == "answered", Call.talk_s.is_not(None))
                .order_by(Call.id.desc())
                .limit(AHT_SAMPLE)
            )
        ).all()
        if not talks:
            return None
        aht: float = sum(int(t) for t in talks) / len(talks) + self.settings.wrap_up_s
        staffed = await s.scalar(
            select(func.count())
            .select_from(Agent)
            .where(Agent.active, Agent.role == "agent", Agent.state != "offline")
        )
        return round(position * aht / max(1, int(staffed or 0)))

    # ------------------------------------------------------------------ facts
    async def fact(self, fact: CallFact) -> CallView:
        """Apply one reported fact (at most once) and decide what follows from it."""

        # Set by the unit of work: a callback task is due and not opened yet.
        due: list[bool] = [False]

        async def work(uow: UnitOfWork) -> CallView:
            s = uow.session
            # Locked: Twilio posts a call's status and its queue result concurrently.
            call = await s.scalar(
                select(Call).where(Call.call_sid == fact.call_sid).with_for_update()
            )
            if call is None:
                if fact.leg != "caller":
                    return CallView(
                        call_sid=fact.call_sid,
                        state="unknown",
                        exit="",
                        outcome="",
                        conversation_id=None,
                        language="",
                        queue="",
                    )
                # A status for a call whose first request we never saw (hung up at once).
                call = Call(
                    call_sid=fact.call_sid,
                    channel=fact.channel,
                    direction="inbound",
                    state="ivr",
                    recording={},
                    facts={},
                )
                s.add(call)
                await s.flush()
            due[:] = [CALLBACK_DUE in call.facts and CALLBACK_OPENED not in call.facts]
            key = fact_key(fact)
            if key in call.facts:
                return view(call)
            call.facts = {**call.facts, key: (fact.occurred_at or utcnow()).isoformat()}
            await self._apply(uow, call, fact)
            due[:] = [CALLBACK_DUE in call.facts and CALLBACK_OPENED not in call.facts]
            return view(call)

        result = await self.tx.run(work)
        if due[0]:  # read again only when a callback may still be owed (rarely)
            await self._callback_if_due(fact.call_sid)
        return result

    async def _apply(self, uow: UnitOfWork, call: Call, fact: CallFact) -> None:
        kind = fact.kind
        if kind == "exit" and call.state == "queued" and fact.result in ("voicemail", "callback"):
            call.exit = fact.result
        elif kind == "connecting":
            await self._connected(uow, call, fact.wait_s)
        elif kind == "queue_result":
            await self._queue_result(uow, call, fact)
        elif kind == "dial_result":
            await self._dial_result(uow, call, fact)
        elif kind == "recording":
            call.recording = {
                "sid": fact.recording_sid,
                "duration_s": fact.recording_duration_s,
            }
            await self._decide(uow, call, "voicemail")
        elif kind == "status" and fact.leg == "caller":
            await self._caller_status(uow, call, fact)
        elif kind == "status" and fact.leg == "agent":
            await self._agent_status(uow, call, fact)
        self._missed_call_due(call)
        await self._write_summary(uow, call)

    def _missed_call_due(self, call: Call) -> None:
        """A caller who hung up after waiting long enough is owed a callback.

        Decided on the provider's own queue time (the Enqueue action's), whichever order it
        and the status callback arrive in."""
        if (
            call.outcome == "abandoned"
            and call.direction == "inbound"
            and call.conversation_id is not None
            and CALLBACK_DUE not in call.facts
            and self.settings.callback_on_abandon
            and any(k.startswith("queue_result:") for k in call.facts)
            and (call.wait_s or 0) >= self.settings.callback_min_wait_s
        ):
            call.facts = {**call.facts, CALLBACK_DUE: "missed"}

    async def _connected(self, uow: UnitOfWork, call: Call, wait_s: int | None) -> None:
        if call.answered_at is not None or call.outcome:
            return
        call.answered_at = utcnow()
        call.state = "talking"
        if wait_s is not None:
            call.wait_s = wait_s
        uow.emit(
            events.CallConnected(
                conversation_id=call.conversation_id,
                customer_id=call.customer_id,
                agent_id=call.agent_id,
                queue=call.queue,
                channel=call.channel,
                call_sid=call.call_sid,
                direction=call.direction,
                wait_s=call.wait_s,
            )
        )

    async def _queue_result(self, uow: UnitOfWork, call: Call, fact: CallFact) -> None:
        if fact.wait_s is not None and (call.wait_s is None or call.answered_at is None):
            call.wait_s = fact.wait_s
        result = fact.result
        if result == "bridged":
            await self._connected(uow, call, fact.wait_s)
            await self._decide(uow, call, "answered")
            await self._talk_over(uow, call)
        elif result == "leave" and call.exit == "callback":
            await self._decide(uow, call, "callback_requested")
        elif result == "leave" and call.exit == "voicemail":
            call.state = "voicemail"  # the outcome waits for the recording
            await self._close_conversation(uow, call, abandoned=False, disposition="voicemail")
        elif (
            result in ("hangup", "leave", "redirected", "error", "system-error")
            and call.answered_at is None
        ):
            await self._decide(uow, call, "abandoned")

    async def _dial_result(self, uow: UnitOfWork, call: Call, fact: CallFact) -> None:
        if fact.talk_s is not None and fact.bridged is not False:
            call.talk_s = fact.talk_s
        if call.direction == "callback":
            if fact.result in ("completed", "answered") and fact.bridged is not False:
                await self._connected(uow, call, None)
                await self._decide(uow, call, "answered")
            else:
                await self._decide(uow, call, "no_answer")
            await self._talk_over(uow, call)
            return
        if fact.bridged or (fact.talk_s or 0) > 0:
            await self._connected(uow, call, call.wait_s)
            await self._decide(uow, call, "answered")
            await self._talk_over(uow, call)

    async def _caller_status(self, uow: UnitOfWork, call: Call, fact: CallFact) -> None:
        if fact.status not in TERMINAL_STATUS:
            return
        call.ended_at = call.ended_at or fact.occurred_at or utcnow()
        if fact.duration_s is not None:
            call.duration_s = fact.duration_s
        if call.state == "voicemail" and not call.recording:
            await self._decide(uow, call, "abandoned")
        elif call.answered_at is not None:
            await self._decide(uow, call, "answered")
            await self._talk_over(uow, call)
        elif call.direction == "inbound" and call.conversation_id is None:
            await self._decide(uow, call, "ivr_hangup")
        elif call.direction == "inbound":
            await self._decide(uow, call, "abandoned")
        call.state = "ended"

    async def _agent_status(self, uow: UnitOfWork, call: Call, fact: CallFact) -> None:
        """The agent's own phone: no answer before the caller was connected re-routes."""
        if fact.leg_sid and call.agent_leg and fact.leg_sid != call.agent_leg:
            return  # an earlier agent's leg
        if fact.status not in TERMINAL_STATUS or call.answered_at is not None or call.outcome:
            return
        if call.direction == "callback":
            # The agent never picked up the callback: it goes back to the queue.
            await self.missed_by_agent(uow, call, f"did not answer ({fact.status})")
            return
        if call.state == "connecting":
            await self.missed_by_agent(uow, call, f"did not answer ({fact.status})")

    async def missed_by_agent(self, uow: UnitOfWork, call: Call, why: str) -> None:
        """Redirect on no answer: the agent goes away, the call waits for someone else."""
        s = uow.session
        agent = await s.get(Agent, call.agent_id) if call.agent_id else None
        conv = await s.get(Conversation, call.conversation_id) if call.conversation_id else None
        if agent is not None and agent.state == "available":
            set_agent_state(uow, agent, "away", f"missed call: {why}")
        # An inbound caller waits on; a callback attempt is over (the task is routed again).
        call.state = "queued" if call.direction == "inbound" else "ended"
        call.agent_id = None
        call.agent_leg = ""
        if conv is not None and conv.state == "assigned":
            previous_agent = conv.assignee_id
            conv.state = "queued"
            conv.assignee_id = None
            uow.emit(
                events.ConversationQueued(
                    conversation_id=conv.id,
                    customer_id=conv.customer_id,
                    agent_id=previous_agent,
                    queue=conv.queue,
                    channel=conv.channel,
                    reason="agent_no_answer",
                )
            )

    async def _talk_over(self, uow: UnitOfWork, call: Call) -> None:
        """The talking ended: the agent moves to wrap-up (after-call work)."""
        if call.state != "ended":
            call.state = "ended"
            call.ended_at = call.ended_at or utcnow()
        if call.conversation_id is None:
            return
        conv = await uow.session.get(Conversation, call.conversation_id)
        if conv is not None and conv.state == "assigned":
            begin_wrap_up(uow, conv)

    async def _decide(self, uow: UnitOfWork, call: Call, outcome: str) -> None:
        """Set the outcome once and do what it implies."""
        if call.outcome:
            return
        call.outcome = outcome
        if outcome != "answered" and call.state in ("queued", "connecting", "ivr", "voicemail"):
            call.state = "ended"
            call.ended_at = call.ended_at or utcnow()
        uow.emit(
            events.CallEnded(
                conversation_id=call.conversation_id,
                customer_id=call.customer_id,
                agent_id=call.agent_id,
                queue=call.queue,
                channel=call.channel,
                call_sid=call.call_sid,
                direction=call.direction,
                outcome=outcome,
                wait_s=call.wait_s,
                talk_s=call.talk_s,
                duration_s=call.duration_s,
            )
        )
        if outcome == "abandoned":
            await self._close_conversation(uow, call, abandoned=True)
            if call.agent_leg and self.on_end_leg is not None:
                leg, channel, end = call.agent_leg, call.channel, self.on_end_leg
                uow.after_commit.append(lambda: end(channel, leg))
        elif outcome == "callback_requested":
            await self._close_conversation(
                uow, call, abandoned=False, disposition="callback requested"
            )
            call.facts = {**call.facts, CALLBACK_DUE: "requested"}

    async def _callback_if_due(self, call_sid: str) -> None:
        """Open the callback task a missed or requested call left due (once: its message id
        is the dedupe key, so a crash between the two transactions only delays it)."""
        call = await self.tx.read(lambda s: s.scalar(select(Call).where(Call.call_sid == call_sid)))
        if call is None or CALLBACK_DUE not in call.facts or CALLBACK_OPENED in call.facts:
            return
        kind, address = self._phone(call.from_number)
        if kind != "phone":
            return  # a withheld number cannot be called back
        why = str(call.facts[CALLBACK_DUE])
        text = (
            "Callback requested while waiting"
            if why == "requested"
            else f"Missed call: hung up after {duration_text(call.wait_s)} in the queue"
        )
        result = await self.ingestor.ingest(
            InboundMessage(
                channel=str(call.facts.get(CALLBACK_CHANNEL) or call.channel),
                sender_kind="phone",
                sender=address,
                provider_id=f"{call.call_sid}:callback",
                text=text,
                recipient=call.to_number,
                threading="explicit",
                queue=call.queue or None,
                language=call.language or None,
                metadata={"callback": {"number": address, "call": call.call_sid, "why": why}},
            )
        )

        async def mark(uow: UnitOfWork) -> None:
            row = await uow.session.scalar(select(Call).where(Call.call_sid == call_sid))
            if row is not None:
                row.facts = {**row.facts, CALLBACK_OPENED: result.conversation_id}

        await self.tx.run(mark)

    async def _close_conversation(
        self, uow: UnitOfWork, call: Call, *, abandoned: bool, disposition: str = ""
    ) -> None:
        if call.conversation_id is None:
            return
        conv = await uow.session.get(Conversation, call.conversation_id)
        if conv is None or conv.state not in (*WAITING, "assigned"):
            return
        if abandoned:
            reason = "caller hung up"
            if conv.state == "assigned":
                reason += " while the agent was being connected"
            wait = float(call.wait_s) if call.wait_s is not None else None
            abandon(uow, conv, reason, wait)
            return
        conv.state = "closed"
        conv.closed_at = utcnow()
        conv.disposition = disposition[:100]
        uow.emit(
            events.ConversationClosed(
                conversation_id=conv.id,
                customer_id=conv.customer_id,
                agent_id=conv.assignee_id,
                queue=conv.queue,
                channel=conv.channel,
                disposition=conv.disposition,
            )
        )

    async def _write_summary(self, uow: UnitOfWork, call: Call) -> None:
        """Create or rewrite the call's history entry once it has an outcome."""
        if not call.outcome or call.conversation_id is None:
            return
        s = uow.session
        agent_name = (
            await s.scalar(select(Agent.display_name).where(Agent.id == call.agent_id))
            if call.agent_id
            else None
        )
        text = summary_text(call, agent_name)
        meta = {
            "call": {
                "sid": call.call_sid,
                "direction": call.direction,
                "outcome": call.outcome,
                "wait_s": call.wait_s,
                "talk_s": call.talk_s,
                "duration_s": call.duration_s,
                "agent": agent_name,
                "menu": list(call.ivr),
            }
        }
        if call.summary_id is not None:
            row = await s.get(Message, call.summary_id)
            if row is not None and row.text != text:
                row.text = text
                row.meta = meta
                row.edited_at = utcnow()
                uow.emit(
                    events.CallUpdated(
                        conversation_id=call.conversation_id,
                        customer_id=call.customer_id,
                        agent_id=call.agent_id,
                        queue=call.queue,
                        channel=call.channel,
                        call_sid=call.call_sid,
                        outcome=call.outcome,
                        wait_s=call.wait_s,
                        talk_s=call.talk_s,
                        duration_s=call.duration_s,
                    )
                )
                uow.emit(
                    events.MessageEdited(
                        conversation_id=row.conversation_id,
                        customer_id=row.customer_id,
                        channel=row.channel,
                        message_id=row.id,
                        text=text,
                    )
                )
            return
        conv = await s.get(Conversation, call.conversation_id)
        if conv is None:
            return
        row = Message(
            conversation_id=conv.id,
            customer_id=conv.customer_id,
            channel=call.channel,
            direction="system",
            kind="call",
            text=text,
            provider_id=None,
            status="",
            meta=meta,
        )
        s.add(row)
        await s.flush()
        call.summary_id = row.id
        uow.emit(
            events.MessageReceived(
                conversation_id=conv.id,
                customer_id=conv.customer_id,
                queue=conv.queue,
                channel=call.channel,
                message_id=row.id,
                kind="call",
                direction="system",
                text=text,
                endpoint="",
                attachments=0,
            )
        )
