"""The dispatcher: feeds the pure router from the interaction stream and stores its decisions.

The database is the source of truth; the router (``routing.Router``) is a projection of it
that decides. Hub events (new conversation, accept, reject, state change, wrap-up, close,
transfer) are applied to the router; its decisions (offers, timeouts, rescinds, cancels) are
made durable through ``hub.work.offers`` and come back as events, which the router already reflects
(every application here is idempotent for that reason). A restart rebuilds the router from
storage: waiting work waits again, and offers that were in flight are withdrawn and re-routed;
so does a router that fell so far behind the stream that events were dropped for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contract.errors import Conflict, HubError, InvalidInput, NotFound
from contract.info import Channels
from hub import events
from hub.lease import ROUTER, Fence, Lease, LeaseLost
from hub.stream import StreamEvent, StreamLagged
from hub.supervise import Loop, pause_after_failure
from hub.web import keys
from hub.web.middleware import METRICS
from hub.work.offers import abandon_conversation
from routing import events as rev
from routing.core import Router
from routing.expr import ExpressionError
from routing.models import (
    DEFAULT_CHANNELS,
    MESSAGE_POOL,
    AgentSpec,
    ChannelRule,
    QueueMembership,
    QueueSpec,
    RouterConfig,
    RouterSnapshot,
    RoutingError,
    Step,
    TaskSpec,
)
from routing.requirements import compile_requirement
from storage.models import (
    Agent,
    AgentSkill,
    Conversation,
    Customer,
    Event,
    Offer,
    Queue,
    Skill,
    Team,
    utcnow,
)

if TYPE_CHECKING:
    from hub.services import Hub

logger = logging.getLogger(__name__)
# Hub event types the router bridge reacts to alike.
_ARRIVALS = frozenset({events.ConversationCreated.TYPE, events.ConversationReopened.TYPE})
_OFFER_GONE = frozenset({events.OfferExpired.TYPE, events.OfferRescinded.TYPE})
_ENDED = frozenset({events.ConversationClosed.TYPE, events.ConversationAbandoned.TYPE})
_AGENT_CHANGED = frozenset({events.AgentCreated.TYPE, events.AgentUpdated.TYPE})

LANGUAGE_PREFIX = "lang:"
# Agents serve their own team's queues first and other queues as overflow.
TEAM_PRIORITY, OVERFLOW_PRIORITY = 1, 2
# Why an agent is offered a conversation before the rest of the queue (offer.created says so).
LAST_AGENT, ACCOUNT_OWNER = "last_agent", "account_owner"
# A customer's most recent conversations searched for who was assigned last.
LAST_AGENT_CONVERSATIONS = 20
StateOf = Callable[[int], str | None]


def seconds_option(options: Mapping[str, Any], name: str, default: float) -> float:
    """A duration from a queue's options; a missing or unusable value is the setting's."""
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return default
    return float(value)


def validate_steps(steps: list[dict[str, Any]]) -> None:
    """Reject a queue configuration whose requirement expressions do not parse."""
    for i, step in enumerate(steps):
        try:
            compile_requirement(step.get("expression") or None)
        except ExpressionError as err:
            raise InvalidInput(f"steps[{i}].expression: {err}") from None


async def agent_spec(s: AsyncSession, agent: Agent) -> AgentSpec | None:
    """An active agent as the router sees them (skills, languages, team, state); None for
    supervisors, admins and deactivated accounts, who take no work."""
    if not agent.active or agent.role != "agent":
        return None
    levels = (
        await s.execute(
            select(Skill.name, AgentSkill.proficiency)
            .join(AgentSkill, AgentSkill.skill_id == Skill.id)
            .where(AgentSkill.agent_id == agent.id)
        )
    ).all()
    skills = {n: p for n, p in levels if not n.startswith(LANGUAGE_PREFIX)}
    languages = {n[len(LANGUAGE_PREFIX) :]: p for n, p in levels if n.startswith(LANGUAGE_PREFIX)}
    team = (
        await s.scalar(select(Team.name).where(Team.id == agent.team_id)) if agent.team_id else None
    )
    return AgentSpec(
        id=agent.id,
        skills=skills,
        languages=languages,
        capacity={k: int(v) for k, v in agent.capacity.items()},
        attributes={"team": team or "", "username": agent.username},
        state=agent.state,
        reason=agent.state_reason,
        idle_since=agent.state_since.timestamp(),
    )


def queue_spec(q: Queue) -> QueueSpec:
    """A stored queue as router configuration."""
    steps = tuple(
        Step(requirement=(s.get("expression") or None), timeout_s=s.get("timeout_s"))
        for s in q.steps
    )
    return QueueSpec(
        name=q.name,
        steps=steps,
        selection=q.selection,  # type: ignore[arg-type]
        offer_timeout_s=q.options.get("offer_timeout_s"),
        wrap_up_s=q.options.get("wrap_up_s"),
    )


async def served_by(
    s: AsyncSession, customer_id: int, *, window_s: float, now: datetime
) -> list[int]:
    """Agents last assigned to the customer's conversations active within the window, latest
    first; read from the stored assignment events, which a reopen (that clears the assignee)
    and a close keep."""
    recent = (
        select(Conversation.id)
        .where(
            Conversation.customer_id == customer_id,
            Conversation.last_activity_at >= now - timedelta(seconds=window_s),
        )
        .order_by(Conversation.last_activity_at.desc())
        .limit(LAST_AGENT_CONVERSATIONS)
    )
    rows = await s.scalars(
        select(Event.agent_id)
        .where(Event.conversation_id.in_(recent), Event.type == events.ConversationAssigned.TYPE)
        .order_by(Event.seq.desc())
        .limit(LAST_AGENT_CONVERSATIONS)
    )
    return list(dict.fromkeys(a for a in rows.all() if a is not None))


async def account_owner(s: AsyncSession, customer_id: int) -> int | None:
    """A VIP customer's account owner: the agent whose username is the customer's
    ``attributes["account_owner"]``."""
    customer = await s.get(Customer, customer_id)
    if customer is None or customer.segment != "vip":
        return None
    owner = customer.attributes.get("account_owner")
    if not isinstance(owner, str) or not owner:
        return None
    return await s.scalar(select(Agent.id).where(Agent.username == owner, Agent.active))


def channel_rules(channels: Channels) -> dict[str, ChannelRule]:
    """The router's per-channel capacity rules, from the registered channels' media.

    Voice interrupts anything and nothing interrupts it; message channels share one pool
    and interleave; email waits for both (``routing.models`` explains the defaults, which
    stay for channel names no registered channel declares).
    """
    rules = dict(DEFAULT_CHANNELS)
    voice = {info.name for info in channels if info.media == "voice"} | {"voice"}
    message = {info.name for info in channels if info.media == "message"}
    for info in channels:
        if info.media == "voice":
            rules[info.name] = ChannelRule(capacity=info.capacity)
        elif info.media == "message":
            rules[info.name] = ChannelRule(
                capacity=info.capacity,
                interruptible_by=frozenset((message - {info.name}) | voice),
                pool=MESSAGE_POOL,
            )
        else:
            rules[info.name] = ChannelRule(
                capacity=info.capacity, interruptible_by=frozenset(voice | message)
            )
    return rules


class Dispatcher:
    """Runs the router for this hub process."""

    def __init__(
        self,
        hub: Hub,
        *,
        on_lag: Callable[[], None] | None = None,
        fence: Callable[[], Fence] | None = None,
        health: Loop | None = None,
    ) -> None:
        self.hub = hub
        self._on_lag = on_lag
        # The router lease's current fence: every offer checks it as it commits, so a router
        # that lost its lease cannot write (None: one process, no lease).
        self._fence = fence
        self.health = health or Loop("router")
        self.lost = False  # the lease was found taken: this router stopped
        self._stale = False
        settings = hub.settings
        self.router = Router(
            RouterConfig(
                offer_timeout_s=settings.offer_timeout_s,
                wrap_up_s=settings.wrap_up_s,
                not_responding_state=settings.not_responding_state,
                not_responding_reason="missed offer",
                channels=channel_rules(hub.channels),
            )
        )
        self.queues: dict[str, int | None] = {}  # name -> team id
        self.queue_options: dict[str, Mapping[str, Any]] = {}  # name -> Queue.options
        # conversation id -> {agent id: why they come first}, for the offer to say so
        self.preferred: dict[int, dict[int, str]] = {}
        self.teams: dict[int, int | None] = {}  # agent id -> team id
        self.offer_of: dict[int, int] = {}  # reservation id -> offer id
        self.reservation_of: dict[int, int] = {}  # offer id -> reservation id
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.decisions = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._sub = self.hub.stream.subscribe(name="router", on_lag=self._on_lag)
        await self._withdraw_offers_in_flight()
        async with self.hub.sessions() as s:
            snapshot = await self._load(s)
        events = self.router.restore(snapshot, time.time())
        await self._apply_decisions(events)
        self._task = asyncio.create_task(self._run(), name="router")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sub.close()

    async def _withdraw_offers_in_flight(self) -> None:
        async with self.hub.sessions() as s:
            pending = list(
                (await s.scalars(select(Offer.id).where(Offer.state == "pending"))).all()
            )
        for offer_id in pending:
            with contextlib.suppress(HubError):
                await self.hub.work.rescind(offer_id, "hub restarted")
        # Let the echo of these withdrawals pass before the router is rebuilt from storage.
        self._sub.discard_pending()

    # ------------------------------------------------------------------ loading
    async def _load(self, s: AsyncSession) -> RouterSnapshot:
        for q in (await s.scalars(select(Queue))).all():
            self.queues[q.name] = q.team_id
            self.queue_options[q.name] = dict(q.options)
            self.router.set_queue(queue_spec(q), time.time())
        specs = [await self._agent_spec(s, a) for a in (await s.scalars(select(Agent))).all()]
        convs = (
            await s.scalars(
                select(Conversation).where(
                    Conversation.state.in_(("queued", "offered", "assigned", "wrap_up"))
                )
            )
        ).all()
        now = time.time()
        tasks = []
        for c in convs:
            self._know_queue(c.queue)
            excluded = frozenset(
                (
                    await s.scalars(
                        select(Offer.agent_id).where(
                            Offer.conversation_id == c.id, Offer.state == "rejected"
                        )
                    )
                ).all()
            )
            assigned = c.assignee_id if c.state in ("assigned", "wrap_up") else None
            tasks.append(
                TaskSpec(
                    id=c.id,
                    queue=c.queue,
                    channel=c.channel,
                    priority=c.priority,
                    created_at=(c.waiting_since or c.created_at).timestamp(),
                    excluded_agents=excluded,
                    assigned_to=assigned,
                    wrap_until=now + self.hub.settings.wrap_up_s if c.state == "wrap_up" else None,
                )
            )
        agents = [self._with_memberships(a) for a in specs if a is not None]
        states = {a.id: a.state for a in agents}
        for i, (t, c) in enumerate(zip(tasks, convs, strict=True)):
            if t.assigned_to is None:
                tasks[i] = await self._with_preferences(s, t, c.customer_id, states.get)
        return RouterSnapshot(agents=tuple(agents), tasks=tuple(tasks))

    async def _agent_spec(self, s: AsyncSession, agent: Agent) -> AgentSpec | None:
        spec = await agent_spec(s, agent)
        if spec is not None:
            self.teams[agent.id] = agent.team_id
        return spec

    def _with_memberships(self, spec: AgentSpec) -> AgentSpec:
        team = self.teams.get(spec.id)
        queues = {
            name: QueueMembership(
                priority=TEAM_PRIORITY if team is not None and qteam == team else OVERFLOW_PRIORITY
            )
            for name, qteam in self.queues.items()
        }
        return AgentSpec(
            id=spec.id,
            skills=spec.skills,
            languages=spec.languages,
            capacity=spec.capacity,
            attributes=spec.attributes,
            queues=queues,
            state=spec.state,
            reason=spec.reason,
            idle_since=spec.idle_since,
        )

    def _know_queue(self, name: str) -> None:
        """A conversation named a queue nobody serves yet: every agent serves it (overflow),
        so no work can wait forever for want of a member."""
        if name in self.queues:
            return
        self.queues[name] = None
        now = time.time()
        for agent in self.router.snapshot().agents:
            self.router.update_agent(
                AgentSpec(
                    id=agent.id,
                    skills=agent.skills,
                    languages=agent.languages,
                    capacity=agent.capacity,
                    attributes=agent.attributes,
                    queues={**agent.queues, name: QueueMembership(priority=OVERFLOW_PRIORITY)},
                    state=agent.state,
                    reason=agent.reason,
                    idle_since=agent.idle_since,
                ),
                now,
            )

    # ------------------------------------------------------------------ the loop
    async def _run(self) -> None:
        while True:
            try:
                if self._stale:
                    # Events were dropped for the router, or a step failed: what it knows
                    # may be stale anywhere. Rebuilt from storage, retried until it works.
                    await self._rebuild()
                    self._stale = False
                await self._step()
                self.health.ok()
            except asyncio.CancelledError:
                raise
            except LeaseLost as err:
                logger.warning("router stops: %s", err)
                self.lost = True
                return
            except StreamLagged:
                logger.warning("router fell behind the stream; rebuilding from storage")
                self._sub.resume()
                self._stale = True
            except Exception as err:
                self._stale = True
                await pause_after_failure(self.health, err, "router step")

    async def _step(self) -> None:
        deadline = self.router.next_deadline()
        timeout = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.time()))
        batch: list[StreamEvent] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                batch.append(await self._sub.get())
        while not self._sub.empty() and len(batch) < 500:
            batch.append(self._sub.get_nowait())
        decisions: list[rev.Event] = []
        for event in batch:
            decisions += await self._apply_hub_event(event)
        decisions += self.router.tick(time.time())
        await self._apply_decisions(decisions)

    async def _rebuild(self) -> None:
        self.router = Router(self.router.config)
        self.offer_of.clear()
        self.reservation_of.clear()
        self.preferred.clear()
        await self._withdraw_offers_in_flight()
        async with self.hub.sessions() as s:
            snapshot = await self._load(s)
        await self._apply_decisions(self.router.restore(snapshot, time.time()))

    # ------------------------------------------------------------------ hub -> router
    async def _apply_hub_event(self, e: StreamEvent) -> list[rev.Event]:
        now = time.time()
        r = self.router
        conv = e.conversation_id
        try:
            if e.type in _ARRIVALS and conv is not None:
                if self._has_task(conv) or e.payload.get("held"):
                    return []  # a held one waits for its hand-off (conversation.queued)
                self._know_queue(e.queue)
                spec = TaskSpec(
                    id=conv,
                    queue=e.queue,
                    channel=e.channel,
                    priority=int(e.payload.get("priority") or 0),
                    created_at=e.created_at.timestamp(),
                    attributes={
                        "language": e.payload.get("language") or "",
                        "segment": e.payload.get("segment") or "",
                    },
                )
                if e.customer_id is not None:
                    async with self.hub.sessions() as s:
                        spec = await self._with_preferences(s, spec, e.customer_id, self._state_of)
                return r.add_task(spec, now)
            if e.type == events.OfferAccepted.TYPE and conv is not None and e.agent_id is not None:
                self._forget_offer(int(e.payload["offer_id"]))
                return r.accept(conv, e.agent_id, now)
            if e.type == events.OfferRejected.TYPE and conv is not None and e.agent_id is not None:
                self._forget_offer(int(e.payload["offer_id"]))
                return r.reject(conv, e.agent_id, now)
            if e.type in _OFFER_GONE:
                self._forget_offer(int(e.payload["offer_id"]))
                return []
            if e.type == events.ConversationQueued.TYPE and conv is not None:
                return await self._requeued(conv, e, now)
            if e.type == events.ConversationAssigned.TYPE and e.payload.get("transfer") and conv:
                return await self._resync(conv)
            wrap_up = e.type == events.ConversationWrapUp.TYPE
            if wrap_up and conv is not None and self._has_task(conv):
                return r.complete_task(conv, now)
            if e.type in _ENDED and conv is not None:
                return self._closed(conv, now)
            if e.type == events.AgentStateChanged.TYPE and e.agent_id is not None:
                return self._state(e.agent_id, str(e.payload.get("state")), e, now)
            if e.type in _AGENT_CHANGED and e.agent_id is not None:
                return await self._reload_agent(e.agent_id, now)
            if e.type == events.QueueUpdated.TYPE:
                return await self._reload_queue(e.queue, now)
        except RoutingError as err:
            logger.info("router out of step on %s (%s); resyncing", e.type, err)
            if conv is not None:
                return await self._resync(conv)
        return []

    async def _with_preferences(
        self, s: AsyncSession, spec: TaskSpec, customer_id: int, state_of: StateOf
    ) -> TaskSpec:
        """The task with its customer's last agent and VIP account owner offered first, for
        the queue's ``last_agent_wait_s`` (0: not at all). ``state_of`` gives a routed agent's
        state (None: not routed): an agent who is logged out is not waited for."""
        options = self.queue_options.get(spec.queue, {})
        settings = self.hub.settings
        wait = seconds_option(options, "last_agent_wait_s", settings.last_agent_wait_s)
        created = spec.created_at if spec.created_at is not None else time.time()
        if wait <= 0 or time.time() - created >= wait:
            return spec
        window = seconds_option(options, "last_agent_window_s", settings.last_agent_window_s)
        why: dict[int, str] = {}
        for agent_id in await served_by(s, customer_id, window_s=window, now=utcnow()):
            if state_of(agent_id) is not None:
                why[agent_id] = LAST_AGENT
                break
        owner = await account_owner(s, customer_id)
        if owner is not None and state_of(owner) is not None:
            why[owner] = ACCOUNT_OWNER
        why = {a: reason for a, reason in why.items() if state_of(a) != "offline"}
        if not why:
            return spec
        self.preferred[spec.id] = why
        return dataclasses.replace(
            spec, preferred_agents=tuple(sorted(why)), preferred_timeout_s=wait
        )

    def _state_of(self, agent_id: int) -> str | None:
        try:
            return self.router.agent(agent_id).state
        except RoutingError:
            return None

    def _has_task(self, conv: int) -> bool:
        try:
            self.router.task(conv)
        except RoutingError:
            return False
        return True

    def _forget_offer(self, offer_id: int) -> None:
        res = self.reservation_of.pop(offer_id, None)
        if res is not None:
            self.offer_of.pop(res, None)

    async def _requeued(self, conv: int, e: StreamEvent, now: float) -> list[rev.Event]:
        if not self._has_task(conv):
            return await self._resync(conv)
        view = self.router.task(conv)
        if e.payload.get("reason") == "transfer":
            self._know_queue(e.queue)
            return self.router.transfer(conv, now, queue=e.queue)
        if e.payload.get("reason") == "rule" and view.status in ("pending", "waiting"):
            # Workflow changed its priority or required skills: route it again as stored.
            return await self._resync(conv)
        if view.status in ("pending", "reserved", "waiting"):
            return []
        return await self._resync(conv)

    def _closed(self, conv: int, now: float) -> list[rev.Event]:
        self.preferred.pop(conv, None)
        if not self._has_task(conv):
            return []
        view = self.router.task(conv)
        if view.status == "wrapping":
            return self.router.end_wrap_up(conv, now)
        if view.agent_id is not None and view.status == "assigned":
            return self.router.complete_task(conv, now, wrap_up_s=0)
        return self.router.cancel_task(conv, now, "closed")

    def _state(self, agent_id: int, state: str, e: StreamEvent, now: float) -> list[rev.Event]:
        try:
            current = self.router.agent(agent_id)
        except RoutingError:
            return []
        if current.state == state:
            return []
        return self.router.set_agent_state(agent_id, state, now, str(e.payload.get("reason", "")))

    async def _reload_agent(self, agent_id: int, now: float) -> list[rev.Event]:
        async with self.hub.sessions() as s:
            agent = await s.get(Agent, agent_id)
            spec = await self._agent_spec(s, agent) if agent is not None else None
        exists = any(a.id == agent_id for a in self.router.agents())
        if spec is None:
            return self.router.remove_agent(agent_id, now) if exists else []
        spec = self._with_memberships(spec)
        if exists:
            return self.router.update_agent(spec, now)
        return self.router.add_agent(spec, now)

    async def _reload_queue(self, name: str, now: float) -> list[rev.Event]:
        async with self.hub.sessions() as s:
            q = await s.scalar(select(Queue).where(Queue.name == name))
        if q is None:
            return []
        self.queues[name] = q.team_id
        self.queue_options[name] = dict(q.options)
        out = self.router.set_queue(queue_spec(q), now)
        # Memberships follow the queue's team: every agent's priorities may have changed.
        for view in self.router.agents():
            out += await self._reload_agent(view.id, now)
        return out

    async def _resync(self, conv: int) -> list[rev.Event]:
        """Make the router's view of one conversation match storage."""
        now = time.time()
        out: list[rev.Event] = []
        if self._has_task(conv):
            view = self.router.task(conv)
            if view.status == "wrapping":
                out += self.router.end_wrap_up(conv, now)
            elif view.agent_id is not None and view.status == "assigned":
                out += self.router.complete_task(conv, now, wrap_up_s=0)
            else:
                out += self.router.cancel_task(conv, now, "resync")
        async with self.hub.sessions() as s:
            c = await s.get(Conversation, conv)
        if c is None or c.state not in ("queued", "offered", "assigned", "wrap_up"):
            return out
        self._know_queue(c.queue)
        assigned = c.assignee_id if c.state in ("assigned", "wrap_up") else None
        out += self.router.add_task(
            TaskSpec(
                id=c.id,
                queue=c.queue,
                channel=c.channel,
                priority=c.priority,
                created_at=(c.waiting_since or c.created_at).timestamp(),
                assigned_to=assigned,
                steps=required_skills_steps(c.routing.get("skills")),
            ),
            now,
        )
        return out

    # ------------------------------------------------------------------ router -> storage
    async def _apply_decisions(self, decisions: list[rev.Event]) -> None:
        work = self.hub.work
        for d in decisions:
            try:
                if isinstance(d, rev.ReservationCreated):
                    self.decisions += 1
                    timeout = max(1.0, d.expires_at - time.time())
                    why = self.preferred.get(d.task_id, {}).get(d.agent_id)
                    offer_id = await work.create_offer(
                        d.task_id,
                        d.agent_id,
                        timeout_s=timeout,
                        preferred=why,
                        fence=self._fence() if self._fence is not None else None,
                    )
                    if offer_id is None:
                        # It stopped waiting meanwhile (closed, taken): withdraw in the router.
                        await self._apply_decisions(await self._resync(d.task_id))
                        continue
                    self.offer_of[d.reservation_id] = offer_id
                    self.reservation_of[offer_id] = d.reservation_id
                elif isinstance(d, rev.ReservationTimeout):
                    offer_id = self.offer_of.pop(d.reservation_id, None)
                    if offer_id is not None:
                        self.reservation_of.pop(offer_id, None)
                        await work.expire(offer_id)
                elif isinstance(d, rev.ReservationRescinded):
                    offer_id = self.offer_of.pop(d.reservation_id, None)
                    if offer_id is not None:
                        self.reservation_of.pop(offer_id, None)
                        await work.rescind(offer_id, d.reason)
                elif isinstance(d, rev.TaskCanceled) and d.reason not in ("closed", "resync"):
                    self.preferred.pop(d.task_id, None)
                    await abandon_conversation(self.hub.tx, d.task_id, d.reason)
            except (Conflict, NotFound) as err:
                logger.info("router decision %s no longer applies: %s", d.type, err)


def required_skills_steps(skills: object) -> tuple[Step, ...] | None:
    """Steps that offer the task only to agents holding every skill a workflow rule or the
    bot asked for (None: the queue's own steps apply)."""
    if not isinstance(skills, list) or not skills:
        return None
    return (Step(requirement={"all": [{"skill": str(name)} for name in sorted(skills)]}),)


class RouterLeader:
    """Runs the router in the one process that holds the router lease.

    Every process with the worker role competes for the lease each ``ttl / 5``; the holder
    renews it at that pace and runs a ``Dispatcher`` fenced by it. A holder whose renewal
    finds the lease taken, or that could not renew for a whole TTL (the database away),
    stops its router at once; the next holder rebuilds the router from storage and
    withdraws the offers in flight, which the old router can no longer write.
    """

    def __init__(self, hub: Hub, *, on_lag: Callable[[], None] | None = None) -> None:
        self.hub = hub
        self._on_lag = on_lag
        self.lease = Lease(hub.sessions, ROUTER, hub.holder, hub.settings.lease_ttl_s)
        self.health = hub.supervisor.track("router")
        self.health.standby()
        self.dispatcher: Dispatcher | None = None
        self.takeovers = 0

    @property
    def leading(self) -> bool:
        return self.dispatcher is not None

    async def round(self) -> None:
        """Acquire or renew the lease, and start or stop the router to match.

        No asyncio timeout around it: a query cancelled half-way can leave its pooled
        connection unusable. A renewal that hangs is safe: the fence stops this router's
        writes once another process has taken the expired lease."""
        if self.dispatcher is not None and self.dispatcher.lost:
            await self._step_down("its offer found the lease taken")
            return
        if self.dispatcher is None:
            if await self.lease.try_acquire():
                await self._lead()
            else:
                self.health.standby()
            return
        if not await self.lease.renew():
            await self._step_down("the lease was taken")

    async def run(self, loop: Loop) -> None:
        """The ``lease`` loop: a round every ``ttl / 5``; errors never end it."""
        while True:
            await asyncio.sleep(self.lease.renew_every_s)
            try:
                await self.round()
                loop.ok()
            except Exception as err:
                loop.failed(err)
                logger.warning("router lease round failed: %s", loop.last_error)
                if self.dispatcher is not None and not self.lease.held:
                    await self._step_down("the lease could not be renewed in time")

    async def _lead(self) -> None:
        dispatcher = Dispatcher(
            self.hub, on_lag=self._on_lag, fence=self.lease.fence, health=self.health
        )
        try:
            await dispatcher.start()
        except BaseException:
            await dispatcher.stop()
            raise
        self.dispatcher = dispatcher
        self.health.ok()
        self.takeovers += 1
        logger.info("%s routes now (lease token %s)", self.hub.holder, self.lease.token)

    async def _step_down(self, why: str) -> None:
        dispatcher, self.dispatcher = self.dispatcher, None
        self.lease.drop()
        if dispatcher is not None:
            await dispatcher.stop()
        self.health.standby()
        logger.warning("%s stopped routing: %s", self.hub.holder, why)

    async def stop(self) -> None:
        """Stop routing and hand the lease over at once (clean shutdown)."""
        dispatcher, self.dispatcher = self.dispatcher, None
        if dispatcher is not None:
            await dispatcher.stop()
        try:
            await self.lease.release()
        except Exception as err:
            logger.warning("router lease not released (%s); it expires by itself", err)
        self.health.state = "stopped"


ROUTER_LEADER: web.AppKey[RouterLeader] = web.AppKey("router_leader")


async def dispatcher_ctx(app: web.Application) -> AsyncIterator[None]:
    """Compete for the router lease for the app's lifetime, routing while it is held."""
    lagged = app[METRICS].stream_lagged.labels(subscriber="router")
    hub = app[keys.HUB]
    leader = RouterLeader(hub, on_lag=lagged.inc)
    app[ROUTER_LEADER] = leader
    # The first round before serving: a lone process routes from its first request on.
    try:
        await leader.round()
    except Exception as err:
        logger.warning("router lease not taken at start (%s); retrying", err)
    hub.supervisor.spawn("lease", leader.run)
    yield
    await hub.supervisor.stop("lease")
    await leader.stop()


__all__ = [
    "ROUTER_LEADER",
    "Dispatcher",
    "RouterLeader",
    "dispatcher_ctx",
    "queue_spec",
    "validate_steps",
]
