"""The workflow engine: reads the event log after its cursor and reacts, in the same
transaction that moves the cursor (compare-and-set, so with several processes each event is
worked exactly once, whichever process gets there first).

Per event, in this order: SLA timers start and stop; a survey goes out when a conversation
closes and an answer is recorded; the first-line bot answers or hands over; then the
enabled automation rules for the event run in ``position`` order. Due SLA timers are fired
between batches.

Loops: every event emitted while rules' actions run carries the rules of its cascade that
fired (``rule_chain``: those of the events before it, and every rule that fired on the same
event). A rule never fires twice in one cascade: it stops there and the log says so
(``rule.loop_stopped``); cascades longer than ``MAX_CHAIN`` stop too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import select, update

from hub import events
from hub.stream import StreamEvent, StreamLagged
from hub.supervise import Loop, pause_after_failure
from hub.uow import UnitOfWork, events_between, head_seq
from hub.web import keys
from hub.work.dispatcher import ROUTER_LEADER
from hub.workflow import bot, csat, effects, rules, sla
from hub.workflow.calendar import Calendar
from storage.models import (
    Conversation,
    Customer,
    Message,
    Queue,
    Rule,
    SlaPolicy,
    WorkflowCursor,
    utcnow,
)

if TYPE_CHECKING:
    from hub.services import Hub

logger = logging.getLogger(__name__)

CURSOR = "workflow"
BATCH = 200
MAX_CHAIN = 4
IDLE_WAIT_S = 1.0
# After a wake, events that follow within this window are worked in the same transaction.
GATHER_S = 0.02


@dataclass
class Batch:
    """What one pass over a batch of events loads once."""

    rules: dict[str, list[Rule]] = field(default_factory=dict)
    queues: dict[str, Queue | None] = field(default_factory=dict)
    policies: list[SlaPolicy] | None = None

    async def queue(self, uow: UnitOfWork, name: str) -> Queue | None:
        """A queue's row, read once per batch (hours, CSAT switch, out-of-hours answers)."""
        if name not in self.queues:
            self.queues[name] = await uow.session.scalar(select(Queue).where(Queue.name == name))
        return self.queues[name]

    fired: int = 0
    stopped: int = 0


class WorkflowEngine:
    """Runs in every worker process; the cursor's compare-and-set decides who works."""

    def __init__(self, hub: Hub, *, leading: Callable[[], bool] = lambda: True) -> None:
        self.hub = hub
        self.settings = hub.settings
        # Only the process that routes works the log (the cursor's compare-and-set still
        # keeps a process that lost the lead from doing an event twice).
        self.leading = leading
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------------ loop
    async def run(self, loop: Loop) -> None:
        sub = self.hub.stream.subscribe(name="workflow")
        try:
            await self._start_cursor()
            while True:
                if not self.leading():
                    loop.standby()
                    await self._idle(sub)
                    continue
                try:
                    worked = await self.step()
                    worked += await self.fire_due()
                    loop.ok()
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    await pause_after_failure(loop, err, "workflow")
                    continue
                if worked:
                    await asyncio.sleep(0)
                    continue
                await self._idle(sub)
        finally:
            sub.close()

    async def _idle(self, sub: Any) -> None:
        wait = IDLE_WAIT_S
        nxt = await self.hub.tx.read(sla.next_due)
        if nxt is not None:
            wait = max(0.0, min(wait, (nxt - utcnow()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                try:
                    await sub.get()
                except StreamLagged:
                    sub.resume()
                await asyncio.sleep(GATHER_S)
        sub.discard_pending()

    async def _start_cursor(self) -> None:
        """A new cursor starts at today's head: history is not replayed through new rules."""

        async def work(uow: UnitOfWork) -> None:
            if await uow.session.get(WorkflowCursor, CURSOR) is None:
                uow.session.add(WorkflowCursor(name=CURSOR, seq=await head_seq(uow.session)))

        await self.hub.tx.run(work)

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Work until the cursor reaches the head and no timer is due (tests)."""
        async with asyncio.timeout(timeout_s):
            while await self.step() or await self.fire_due():
                pass

    async def fire_due(self) -> int:
        """Warn or breach the SLA timers that are due; how many changed."""
        now = utcnow()
        changed = 0
        for timer_id in await self.hub.tx.read(lambda s: sla.due(s, now)):

            async def work(uow: UnitOfWork, timer_id: int = timer_id) -> str | None:
                return await sla.fire(uow, timer_id, now)

            if await self.hub.tx.run(work):
                changed += 1
        return changed

    # ------------------------------------------------------------------ events
    async def step(self) -> int:
        """Work the next batch of events; how many were read (0: caught up, or another
        process moved the cursor meanwhile)."""

        async def work(uow: UnitOfWork) -> int:
            return await self._batch(uow, single=False)

        try:
            return await self.hub.tx.run(work)
        except Exception:
            logger.exception("workflow batch failed; working it event by event")

        async def one(uow: UnitOfWork) -> int:
            return await self._batch(uow, single=True)

        try:
            return await self.hub.tx.run(one)
        except Exception:
            logger.exception("a workflow event failed alone; skipping it")
            return await self.hub.tx.run(self._skip_one)

    async def _skip_one(self, uow: UnitOfWork) -> int:
        cur = await uow.session.get_one(WorkflowCursor, CURSOR)
        if cur.seq < await head_seq(uow.session):
            cur.seq += 1
            return 1
        return 0

    async def _batch(self, uow: UnitOfWork, *, single: bool) -> int:
        s = uow.session
        cur = await s.get_one(WorkflowCursor, CURSOR)
        first = cur.seq
        head = await head_seq(s)
        if head <= first:
            return 0
        last = min(head, first + (1 if single else BATCH))
        claimed = await s.execute(
            update(WorkflowCursor)
            .where(WorkflowCursor.name == CURSOR, WorkflowCursor.seq == first)
            .values(seq=last)
            .execution_options(synchronize_session=False)
        )
        if not getattr(claimed, "rowcount", 0):
            return 0
        batch = Batch(rules=await self._rules(uow))
        for event in await events_between(s, first + 1, last):
            await self.handle(uow, event, batch)
        return last - first

    async def _rules(self, uow: UnitOfWork) -> dict[str, list[Rule]]:
        rows = (
            await uow.session.scalars(
                select(Rule).where(Rule.enabled.is_(True)).order_by(Rule.position, Rule.id)
            )
        ).all()
        out: dict[str, list[Rule]] = {}
        for r in rows:
            out.setdefault(r.event, []).append(r)
        return out

    async def handle(self, uow: UnitOfWork, e: StreamEvent, batch: Batch) -> None:
        if e.conversation_id is None:
            return
        conv = await uow.session.get(Conversation, e.conversation_id)
        if conv is None:
            return
        await self._sla(uow, e, conv, batch)
        await self._closed_reply(uow, e, conv, batch)
        await self._csat(uow, e, conv, batch)
        await bot.turn(uow, e, conv, self.settings, self.hub.channels)
        trigger = rules.TRIGGER_OF.get(e.type)
        if trigger is not None and batch.rules.get(trigger):
            await self._rules_for(uow, e, conv, trigger, batch)

    async def _sla(self, uow: UnitOfWork, e: StreamEvent, conv: Conversation, batch: Batch) -> None:
        p = e.payload
        if e.type in (events.ConversationCreated.TYPE, events.ConversationReopened.TYPE):
            if not p.get("held"):
                await self._start_targets(uow, conv, e, batch)
        elif e.type == events.ConversationQueued.TYPE and p.get("reason") == "handoff":
            await self._start_targets(uow, conv, e, batch)
        elif e.type == events.MessageSent.TYPE and e.agent_id is not None and not p.get("kind"):
            await sla.stop(uow, conv.id, ("first_response", "next_response"), at=e.created_at)
        elif e.type == events.MessageReceived.TYPE and p.get("kind") == "message":
            answered = conv.first_response_at is not None and conv.state in effects.OPEN
            if answered and not await sla.running(uow.session, conv.id, "next_response"):
                policy = await self._policy(uow, conv, batch)
                if policy is not None:
                    await sla.start(uow, conv, policy, "next_response", at=e.created_at)
        elif e.type in (events.ConversationClosed.TYPE, events.ConversationAbandoned.TYPE):
            await sla.stop(uow, conv.id, sla.METRICS, at=e.created_at)
            await sla.close_breached(uow, conv.id, e.created_at)

    async def _closed_reply(
        self, uow: UnitOfWork, e: StreamEvent, conv: Conversation, batch: Batch
    ) -> None:
        """A contact that opens a conversation while its queue is closed gets the queue's
        out-of-hours answer for its channel (once per conversation, like any auto-reply)."""
        if e.type not in (events.ConversationCreated.TYPE, events.ConversationReopened.TYPE):
            return
        queue = await batch.queue(uow, conv.queue)
        if queue is None or not queue.options.get("hours"):
            return
        replies = queue.options.get("closed_reply")
        if not isinstance(replies, dict):
            return
        text = replies.get(conv.channel) or replies.get("default")
        if not isinstance(text, str) or not text:
            return
        try:
            if Calendar.from_options(queue.options).is_open(e.created_at):
                return
        except ValueError:
            return
        latest = await uow.session.scalar(
            select(Message.kind)
            .where(Message.conversation_id == conv.id, Message.direction == "in")
            .order_by(Message.id.desc())
            .limit(1)
        )
        if latest != "message":
            return  # bulk mail, an auto-reply or a bounce: no answer (no mail loops)
        await self._auto_reply(uow, e, conv, text)

    async def _policy(self, uow: UnitOfWork, conv: Conversation, batch: Batch) -> SlaPolicy | None:
        if batch.policies is None:
            batch.policies = await sla.policies(uow.session)
        if not batch.policies:
            return None  # no SLA configured: no customer read either
        segment = await uow.session.scalar(
            select(Customer.segment).where(Customer.id == conv.customer_id)
        )
        return sla.pick(batch.policies, queue=conv.queue, second=segment or "")

    async def _start_targets(
        self, uow: UnitOfWork, conv: Conversation, e: StreamEvent, batch: Batch
    ) -> None:
        if await sla.running(uow.session, conv.id, "resolution"):
            return
        policy = await self._policy(uow, conv, batch)
        if policy is None:
            return
        for metric in ("first_response", "resolution"):
            await sla.start(uow, conv, policy, metric, at=e.created_at)

    async def _csat(
        self, uow: UnitOfWork, e: StreamEvent, conv: Conversation, batch: Batch
    ) -> None:
        flow = self.settings.workflow
        if e.type == events.ConversationClosed.TYPE:
            queue = await batch.queue(uow, conv.queue)
            if conv.state == "closed" and csat.wants_survey(self.settings, conv, queue):
                language = await uow.session.scalar(
                    select(Customer.language).where(Customer.id == conv.customer_id)
                )
                _, why = await csat.send_survey(
                    uow,
                    conv,
                    settings=self.settings,
                    channels=self.hub.channels,
                    language=language or "",
                )
                if why:
                    logger.info("no survey for conversation %s: %s", conv.id, why)
        elif e.type == events.MessageReceived.TYPE and e.payload.get("kind") == "csat":
            score = e.payload.get("score")
            if isinstance(score, int | float) and 1 <= score <= 5:
                how = await uow.session.scalar(
                    select(Message.meta).where(Message.id == e.payload.get("message_id"))
                )
                how_name = (how or {}).get("how") or csat.HOW.get(conv.channel, "")
                await csat.answered(
                    uow,
                    conv,
                    int(score),
                    str(how_name),
                    low=flow.csat_low_score,
                    window_s=flow.csat_window_s,
                )

    # ------------------------------------------------------------------ rules
    async def _rules_for(
        self, uow: UnitOfWork, e: StreamEvent, conv: Conversation, trigger: str, batch: Batch
    ) -> None:
        chain = [int(x) for x in e.payload.get("rule_chain") or [] if isinstance(x, int)]
        facts: rules.Facts | None = None
        first_draft = len(uow.drafts)
        fired: list[int] = []
        for rule in batch.rules[trigger]:
            if rule.id in chain or len(chain) >= MAX_CHAIN:
                self._loop_stopped(uow, e, conv, rule, chain)
                batch.stopped += 1
                continue
            if facts is None:
                facts = await self._facts(uow, e, conv, batch)
            try:
                cond = rules.Conditions.model_validate(rule.conditions)
            except ValueError:
                logger.warning("rule %s has conditions this version cannot read", rule.id)
                continue
            verdict = rules.matches(cond, facts)
            if not verdict.matched:
                continue
            results = await self._fire(uow, e, conv, rule, chain)
            fired.append(rule.id)
            batch.fired += 1
            if verdict.note:
                results.append({"note": verdict.note})
            if conv.state in ("closed", "abandoned") and trigger != "conversation.closed":
                break  # a rule closed it: later rules would act on a closed conversation
        if fired:
            # What any of them caused names all of them: none fires again in this cascade.
            cascade = [*chain, *fired]
            for draft in uow.drafts[first_draft:]:
                if "rule_chain" in draft["payload"]:
                    draft["payload"]["rule_chain"] = cascade

    def _loop_stopped(
        self, uow: UnitOfWork, e: StreamEvent, conv: Conversation, rule: Rule, chain: list[int]
    ) -> None:
        uow.emit(
            events.RuleLoopStopped(
                conversation_id=conv.id,
                customer_id=conv.customer_id,
                queue=conv.queue,
                channel=conv.channel,
                rule_id=rule.id,
                rule=rule.name,
                trigger=e.type,
                trigger_seq=e.seq,
                chain=chain,
            )
        )

    async def _facts(
        self, uow: UnitOfWork, e: StreamEvent, conv: Conversation, batch: Batch
    ) -> rules.Facts:
        s = uow.session
        customer = await s.get(Customer, conv.customer_id)
        text = ""
        if e.type == events.MessageReceived.TYPE:
            text = (
                await s.scalar(select(Message.text).where(Message.id == e.payload["message_id"]))
                or ""
            )
        queue = await batch.queue(uow, conv.queue)
        open_now = True
        if queue is not None and queue.options.get("hours"):
            try:
                open_now = Calendar.from_options(queue.options).is_open(utcnow())
            except ValueError:
                open_now = True
        return rules.Facts(
            channel=conv.channel,
            queue=conv.queue,
            text=text,
            segment=customer.segment if customer else "",
            tags=frozenset(str(t) for t in (customer.tags if customer else [])),
            labels=frozenset(str(x) for x in conv.labels),
            language=(customer.language if customer else "") or "",
            priority=conv.priority,
            open_now=open_now,
        )

    async def _fire(
        self, uow: UnitOfWork, e: StreamEvent, conv: Conversation, rule: Rule, chain: list[int]
    ) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        uow.rule_chain = [*chain, rule.id]
        try:
            for action in rules.parse_actions(rule.actions):
                outcome = await self._act(uow, e, conv, action)
                results.append({"type": action.type, **({"skipped": outcome} if outcome else {})})
        finally:
            uow.rule_chain = None
        uow.emit(
            events.RuleFired(
                conversation_id=conv.id,
                customer_id=conv.customer_id,
                queue=conv.queue,
                channel=conv.channel,
                rule_id=rule.id,
                rule=rule.name,
                trigger=e.type,
                trigger_seq=e.seq,
                actions=results,
            )
        )
        return results

    async def _act(
        self, uow: UnitOfWork, e: StreamEvent, conv: Conversation, action: Any
    ) -> str | None:
        """Run one action; why it was skipped, or None."""
        if isinstance(action, rules.SetQueue):
            return await effects.move_to_queue(uow, conv, action.queue, note="moved by a rule")
        if isinstance(action, rules.AssignTeam):
            queue, err = await effects.team_queue(uow, action.team)
            if queue is None:
                return err
            return await effects.move_to_queue(uow, conv, queue, note=f"to team {action.team}")
        if isinstance(action, rules.SetPriority):
            effects.set_priority(uow, conv, action.priority)
            return None
        if isinstance(action, rules.AddLabels):
            effects.add_labels(uow, conv, action.labels)
            return None
        if isinstance(action, rules.RequireSkills):
            effects.require_skills(uow, conv, action.skills)
            return None
        if isinstance(action, rules.NotifySupervisors):
            effects.alert(uow, conv, "rule", action.text)
            return None
        if isinstance(action, rules.Escalate):
            effects.set_priority(uow, conv, conv.priority + action.priority_boost)
            effects.alert(uow, conv, "escalated", action.text)
            return None
        if isinstance(action, rules.Close):
            effects.close(uow, conv, action.disposition)
            return None
        if isinstance(action, rules.AutoReply):
            return await self._auto_reply(uow, e, conv, action.text)
        raise AssertionError(f"unknown action {action!r}")  # pragma: no cover

    async def _auto_reply(
        self, uow: UnitOfWork, e: StreamEvent, conv: Conversation, text: str
    ) -> str | None:
        if e.type == events.MessageReceived.TYPE and e.payload.get("kind") != "message":
            # An out-of-office, bounce or bulk mail is not answered (no mail loops).
            return f"the message is {e.payload.get('kind')}: no automatic answer"
        already = await uow.session.scalar(
            select(Message.id)
            .where(
                Message.conversation_id == conv.id,
                Message.kind == "auto_reply",
                Message.direction == "out",
            )
            .limit(1)
        )
        if already is not None:
            return "already answered automatically once"
        row, why = await effects.send_text(
            uow, conv, text, kind="auto_reply", channels=self.hub.channels
        )
        return (why or "not sent") if row is None else None


WORKFLOW: web.AppKey[WorkflowEngine] = web.AppKey("workflow")


async def workflow_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the workflow engine for the app's lifetime."""
    hub = app[keys.HUB]
    bot.check_model(hub.settings.workflow.bot)
    leader = app.get(ROUTER_LEADER)
    engine = WorkflowEngine(hub, leading=(lambda: leader.leading) if leader else lambda: True)
    app[WORKFLOW] = engine
    hub.supervisor.spawn("workflow", engine.run)
    yield
    await hub.supervisor.stop("workflow")
