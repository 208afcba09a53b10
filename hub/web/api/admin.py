"""Admin and supervisor API: customer profiles and merges, agents, skills, queues."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contract.errors import Forbidden, InvalidInput, NotFound
from hub import events, queries
from hub.access import ensure_customer
from hub.accounts.users import (
    check_agent_change,
    end_sessions,
    record_agent_change,
    set_agent_skills,
)
from hub.audit import record
from hub.uow import UnitOfWork
from hub.web import keys
from hub.web.api.openapi import Param, json_response, parse_body, principal_of
from hub.web.api.routes import api, path_int
from hub.web.api.schemas import (
    AgentIn,
    AgentList,
    AgentOut,
    AgentPatch,
    CustomerOut,
    CustomerPatch,
    MergeIn,
    MergeOut,
    QueueIn,
    QueueList,
    QueueOut,
    SkillLevel,
)
from storage.models import Agent, AgentSkill, Queue, Skill, Team


@api.route(
    "PATCH",
    "/api/v1/customers/{customer_id}",
    access="customers.write",
    summary="Edit a customer's profile",
    tag="customers",
    body=CustomerPatch,
    responses={200: CustomerOut},
)
async def patch_customer(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    cid = path_int(request, "customer_id")
    await hub.tx.read(lambda s: ensure_customer(s, principal, cid))
    body = await parse_body(request, CustomerPatch)
    await hub.customers.update_profile(
        cid, body.model_dump(exclude_none=True), actor=principal.name
    )
    return json_response(await hub.tx.read(lambda s: queries.get_customer(s, cid)))


@api.route(
    "POST",
    "/api/v1/customers/{customer_id}/merge",
    access="customers.merge",
    summary="Merge another customer into this one (audited; undo with the audit id)",
    tag="customers",
    body=MergeIn,
    responses={200: MergeOut},
)
async def merge_customer(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    body = await parse_body(request, MergeIn)
    cid = path_int(request, "customer_id")

    async def both_visible(s: AsyncSession) -> None:
        await ensure_customer(s, principal, cid)
        await ensure_customer(s, principal, body.other_id)

    await hub.tx.read(both_visible)
    audit_id = await hub.customers.merge(
        path_int(request, "customer_id"), body.other_id, actor=principal.name, force=body.force
    )
    return json_response(MergeOut(audit_id=audit_id))


@api.route(
    "POST",
    "/api/v1/merges/{audit_id}/undo",
    access="customers.merge",
    summary="Undo a merge exactly",
    tag="customers",
    responses={204: None},
)
async def undo_merge(request: web.Request) -> web.Response:
    principal = principal_of(request)
    await request.app[keys.HUB].customers.unmerge(
        path_int(request, "audit_id"), actor=principal.name
    )
    return web.Response(status=204)


async def _agent_out(s: AsyncSession, agent: Agent) -> AgentOut:
    skills = (
        await s.execute(
            select(Skill.name, AgentSkill.proficiency)
            .join(AgentSkill, AgentSkill.skill_id == Skill.id)
            .where(AgentSkill.agent_id == agent.id)
            .order_by(Skill.name)
        )
    ).all()
    team = (
        await s.scalar(select(Team.name).where(Team.id == agent.team_id)) if agent.team_id else None
    )
    return AgentOut(
        id=agent.id,
        username=agent.username,
        display_name=agent.display_name,
        role=agent.role,
        team=team,
        state=agent.state,
        state_reason=agent.state_reason,
        state_since=agent.state_since,
        skills=[SkillLevel(name=n, proficiency=p) for n, p in skills],
        capacity={k: int(v) for k, v in agent.capacity.items()},
        phone=agent.phone,
        active=agent.active,
    )


async def _team_name(s: AsyncSession, team_id: int | None) -> str | None:
    return await s.scalar(select(Team.name).where(Team.id == team_id)) if team_id else None


async def team_id_for(s: AsyncSession, name: str | None) -> int | None:
    """The team of that name, created if it is new; None for no team."""
    if not name:
        return None
    team_id = await s.scalar(select(Team.id).where(Team.name == name))
    if team_id is None:
        team = Team(name=name)
        s.add(team)
        await s.flush()
        team_id = team.id
    return team_id


@api.route(
    "GET",
    "/api/v1/agents",
    access="agents.read",
    summary="Agents with skills, capacity and state",
    tag="agents",
    responses={200: AgentList},
)
async def list_agents(request: web.Request) -> web.Response:
    hub = request.app[keys.HUB]

    async def work(s: AsyncSession) -> AgentList:
        agents = (await s.scalars(select(Agent).order_by(Agent.id))).all()
        return AgentList(items=[await _agent_out(s, a) for a in agents])

    return json_response(await hub.tx.read(work))


@api.route(
    "POST",
    "/api/v1/agents",
    access="agents.create",
    summary="Create an agent, supervisor or admin",
    tag="agents",
    body=AgentIn,
    responses={201: AgentOut},
)
async def create_agent(request: web.Request) -> web.Response:
    hub = request.app[keys.HUB]
    body = await parse_body(request, AgentIn)
    agent_id = await hub.users.create(
        username=body.username,
        password=body.password,
        role=body.role,
        display_name=body.display_name,
        capacity=body.capacity,
    )

    async def work(uow: UnitOfWork) -> None:
        agent = await uow.session.get_one(Agent, agent_id)
        agent.team_id = await team_id_for(uow.session, body.team)
        await set_agent_skills(uow.session, agent_id, {k.name: k.proficiency for k in body.skills})
        uow.emit(events.AgentUpdated(agent_id=agent_id))

    await hub.tx.run(work)
    out = await hub.tx.read(lambda s: _agent_out_by_id(s, agent_id))
    return json_response(out, status=201)


async def _agent_out_by_id(s: AsyncSession, agent_id: int) -> AgentOut:
    agent = await s.get(Agent, agent_id)
    if agent is None:
        raise NotFound(f"agent {agent_id} not found")
    return await _agent_out(s, agent)


@api.route(
    "PATCH",
    "/api/v1/agents/{agent_id}",
    access="agents.write",
    summary="Change an agent's skills, capacity, team, activity or state",
    tag="agents",
    body=AgentPatch,
    responses={200: AgentOut},
)
async def patch_agent(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    agent_id = path_int(request, "agent_id")
    body = await parse_body(request, AgentPatch)

    async def work(uow: UnitOfWork) -> None:
        agent = await uow.session.get(Agent, agent_id)
        if agent is None:
            raise NotFound(f"agent {agent_id} not found")
        if agent.role == "admin" and principal.role == "supervisor":
            raise Forbidden("a supervisor may not change an admin's account")
        check_agent_change(principal, agent.role, body.role, body.active is False)
        before = (agent.role, agent.active, agent.team_id)
        old_team = await _team_name(uow.session, agent.team_id)
        if body.display_name is not None:
            agent.display_name = body.display_name
        if body.team is not None:
            agent.team_id = await team_id_for(uow.session, body.team)
        if body.capacity is not None:
            agent.capacity = dict(body.capacity)
        if body.phone is not None:
            agent.phone = body.phone
        if body.role is not None:
            agent.role = body.role
        if body.active is not None:
            agent.active = body.active
        if (agent.role, agent.active, agent.team_id) != before:
            # An open console keeps the rights it connected with: end the user's sessions
            # when the role, the team or the activity changes.
            await end_sessions(uow, agent_id)
        record_agent_change(
            uow,
            actor=principal,
            agent_id=agent_id,
            ip=request.remote or "",
            role=(before[0], agent.role),
            active=(before[1], agent.active),
            team=(old_team, await _team_name(uow.session, agent.team_id)),
        )
        if body.skills is not None:
            await set_agent_skills(
                uow.session, agent_id, {k.name: k.proficiency for k in body.skills}
            )
        uow.emit(events.AgentUpdated(agent_id=agent_id))

    await hub.tx.run(work)
    if body.state is not None:
        await hub.work.set_state(agent_id, body.state, body.state_reason)
    return json_response(await hub.tx.read(lambda s: _agent_out_by_id(s, agent_id)))


def check_queue_options(options: dict[str, Any]) -> None:
    """Business hours (``hours``, ``zone``, ``holidays``), the out-of-hours answer per channel
    (``closed_reply``: {"default": ..., "sms": ...}) and ``csat`` (bool), when given."""
    from hub.workflow.calendar import Calendar

    if any(k in options for k in ("hours", "zone", "holidays")):
        try:
            Calendar.from_options(options)
        except ValueError as err:
            raise InvalidInput(f"options: {err}") from None
    reply = options.get("closed_reply")
    if reply is not None and (
        not isinstance(reply, dict)
        or not all(
            isinstance(k, str) and isinstance(v, str) and len(v) <= 1000 for k, v in reply.items()
        )
    ):
        raise InvalidInput('options.closed_reply: {"default": "text", "<channel>": "text"}')
    if "csat" in options and not isinstance(options["csat"], bool):
        raise InvalidInput("options.csat must be true or false")


async def _queue_out(s: AsyncSession, q: Queue) -> QueueOut:
    team = await s.scalar(select(Team.name).where(Team.id == q.team_id)) if q.team_id else None
    return QueueOut.model_validate(
        {
            "name": q.name,
            "team": team,
            "steps": q.steps,
            "selection": q.selection,
            "priority": q.priority,
            "sl_threshold_s": q.sl_threshold_s,
            "options": q.options,
        }
    )


@api.route(
    "GET",
    "/api/v1/queues",
    access="queues.read",
    summary="Queues with their routing steps",
    tag="queues",
    responses={200: QueueList},
)
async def list_queues(request: web.Request) -> web.Response:
    hub = request.app[keys.HUB]

    async def work(s: AsyncSession) -> QueueList:
        rows = (await s.scalars(select(Queue).order_by(Queue.name))).all()
        return QueueList(items=[await _queue_out(s, q) for q in rows])

    return json_response(await hub.tx.read(work))


@api.route(
    "PUT",
    "/api/v1/queues/{name}",
    access="queues.write",
    summary="Create or replace a queue (requirement steps relax over task age)",
    tag="queues",
    body=QueueIn,
    responses={200: QueueOut},
    path_params={
        "name": Param(
            description="queue name", schema={"type": "string", "minLength": 1, "maxLength": 100}
        )
    },
)
async def put_queue(request: web.Request) -> web.Response:
    hub = request.app[keys.HUB]
    name = request.match_info["name"]
    if not name or len(name) > 100:
        raise InvalidInput("queue name must be 1-100 characters")
    body = await parse_body(request, QueueIn)
    from hub.work.dispatcher import validate_steps

    validate_steps([st.model_dump() for st in body.steps])
    check_queue_options(body.options)

    async def work(uow: UnitOfWork) -> None:
        s = uow.session
        q = await s.scalar(select(Queue).where(Queue.name == name))
        if q is None:
            q = Queue(name=name)
            s.add(q)
        q.team_id = await team_id_for(s, body.team)
        q.steps = [st.model_dump() for st in body.steps]
        q.selection = body.selection
        q.priority = body.priority
        q.sl_threshold_s = body.sl_threshold_s
        q.options = dict(body.options)
        await s.flush()
        record(
            uow,
            actor=principal_of(request).name,
            action="queue.settings",
            target_type="queue",
            target_id=q.id,
            details={"name": name, **body.model_dump(mode="json")},
            ip=request.remote or "",
        )
        uow.emit(events.QueueUpdated(queue=name))

    await hub.tx.run(work)

    async def read(s: AsyncSession) -> QueueOut:
        q = await s.scalar(select(Queue).where(Queue.name == name))
        assert q is not None
        return await _queue_out(s, q)

    return json_response(await hub.tx.read(read))
