"""Admin setup API behind the ``/admin`` pages: teams, skills, a routing preview, password
resets, bulk import of people, and the channels' status, webhook URLs and test sends."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import datetime
from functools import partial
from types import SimpleNamespace
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contract.channel import OutboundMessage
from contract.errors import ChannelError, Conflict, InvalidInput, NotFound
from hub import events
from hub.accounts.users import end_sessions, set_agent_skills
from hub.audit import record
from hub.uow import UnitOfWork
from hub.web import keys
from hub.web.api.admin import team_id_for
from hub.web.api.openapi import json_response, parse_body, principal_of
from hub.web.api.routes import api, path_int
from hub.web.api.schemas import AgentIn, Model, Name, SkillLevel
from hub.work.dispatcher import agent_spec
from routing.models import RoutingError
from routing.requirements import compile_requirement
from storage.models import Agent, AgentSkill, Message, OutboxItem, Queue, Skill, Team

# --------------------------------------------------------------------------- teams, skills


class TeamOut(Model):
    id: int
    name: str
    agents: int
    queues: list[str]


class TeamList(Model):
    items: list[TeamOut]


class TeamIn(Model):
    name: Name = Field(min_length=1)


class SkillOut(Model):
    name: str
    agents: int


class SkillList(Model):
    items: list[SkillOut]


@api.route(
    "GET",
    "/api/v1/teams",
    access="agents.read",
    summary="Teams (departments) with their number of people and their queues",
    tag="setup",
    responses={200: TeamList},
)
async def list_teams(request: web.Request) -> web.Response:
    async def work(s: AsyncSession) -> TeamList:
        teams = (await s.scalars(select(Team).order_by(Team.name))).all()
        people = dict(
            (await s.execute(select(Agent.team_id, func.count()).group_by(Agent.team_id))).all()
        )
        queues: dict[int | None, list[str]] = {}
        for name, team_id in (await s.execute(select(Queue.name, Queue.team_id))).all():
            queues.setdefault(team_id, []).append(name)
        return TeamList(
            items=[
                TeamOut(
                    id=t.id,
                    name=t.name,
                    agents=int(people.get(t.id, 0)),
                    queues=sorted(queues.get(t.id, [])),
                )
                for t in teams
            ]
        )

    return json_response(await request.app[keys.HUB].tx.read(work))


@api.route(
    "POST",
    "/api/v1/teams",
    access="queues.write",
    summary="Create a team (department)",
    tag="setup",
    body=TeamIn,
    responses={201: TeamOut},
)
async def create_team(request: web.Request) -> web.Response:
    body = await parse_body(request, TeamIn)
    name = body.name.strip()
    if not name:
        raise InvalidInput("a team needs a name")

    async def work(uow: UnitOfWork) -> TeamOut:
        if await uow.session.scalar(select(Team.id).where(Team.name == name)):
            raise Conflict(f"team {name!r} exists")
        team = Team(name=name)
        uow.session.add(team)
        await uow.session.flush()
        record(
            uow,
            actor=principal_of(request).name,
            action="team.create",
            target_type="team",
            target_id=team.id,
            details={"name": name},
            ip=request.remote or "",
        )
        return TeamOut(id=team.id, name=name, agents=0, queues=[])

    return json_response(await request.app[keys.HUB].tx.run(work), status=201)


@api.route(
    "GET",
    "/api/v1/skills",
    access="agents.read",
    summary="Skills in use, with how many people have each",
    tag="setup",
    responses={200: SkillList},
)
async def list_skills(request: web.Request) -> web.Response:
    async def work(s: AsyncSession) -> SkillList:
        rows = (
            await s.execute(
                select(Skill.name, func.count(AgentSkill.agent_id))
                .outerjoin(AgentSkill, AgentSkill.skill_id == Skill.id)
                .group_by(Skill.name)
                .order_by(Skill.name)
            )
        ).all()
        return SkillList(items=[SkillOut(name=n, agents=int(c)) for n, c in rows])

    return json_response(await request.app[keys.HUB].tx.read(work))


# --------------------------------------------------------------------------- routing preview


class PreviewIn(Model):
    expression: str = Field(default="", max_length=500, description="e.g. 'billing >= 3'")
    channel: str = Field(default="", max_length=20)
    queue: str = Field(default="", max_length=100)


class Qualifier(Model):
    id: int
    username: str
    display_name: str
    state: str
    team: str


class PreviewOut(Model):
    valid: bool
    error: str = ""
    normalized: str = ""
    skills: list[str] = Field(default_factory=list)
    qualifies: list[Qualifier] = Field(default_factory=list)
    available: int = 0


@api.route(
    "POST",
    "/api/v1/routing/preview",
    access="queues.read",
    summary="Check a requirement expression and list the agents who qualify now",
    tag="setup",
    body=PreviewIn,
    responses={200: PreviewOut},
)
async def routing_preview(request: web.Request) -> web.Response:
    body = await parse_body(request, PreviewIn)
    try:
        requirement = compile_requirement(body.expression.strip() or None)
    except RoutingError as err:
        return json_response(PreviewOut(valid=False, error=str(err)))
    task = SimpleNamespace(
        id=0,
        priority=0,
        channel=body.channel,
        queue=body.queue,
        preferred_agents=(),
        attributes={},
    )

    async def work(s: AsyncSession) -> list[Qualifier]:
        found: list[Qualifier] = []
        for agent in (await s.scalars(select(Agent).order_by(Agent.username))).all():
            spec = await agent_spec(s, agent)
            if spec is None:
                continue
            try:
                ok = requirement.pred is None or bool(requirement.pred(spec, task))
            except (TypeError, KeyError, AttributeError):
                ok = False
            if ok:
                found.append(
                    Qualifier(
                        id=agent.id,
                        username=agent.username,
                        display_name=agent.display_name,
                        state=agent.state,
                        team=str(spec.attributes.get("team", "")),
                    )
                )
        return found

    qualifies = await request.app[keys.HUB].tx.read(work)
    return json_response(
        PreviewOut(
            valid=True,
            normalized=requirement.source,
            skills=list(requirement.skills),
            qualifies=qualifies,
            available=sum(1 for q in qualifies if q.state == "available"),
        )
    )


# --------------------------------------------------------------------------- people


class PasswordOut(Model):
    password: str = Field(description="shown once: give it to the person, who changes it")


@api.route(
    "POST",
    "/api/v1/agents/{agent_id}/password-reset",
    access="agents.create",
    summary="Give a person a new one-time password (shown once; their sessions end)",
    tag="agents",
    responses={200: PasswordOut},
)
async def reset_password(request: web.Request) -> web.Response:
    agent_id = path_int(request, "agent_id")
    hub = request.app[keys.HUB]
    password = secrets.token_urlsafe(12)
    pw_hash = await hub.users.hash_password(password)

    async def work(uow: UnitOfWork) -> None:
        agent = await uow.session.get(Agent, agent_id)
        if agent is None:
            raise NotFound(f"agent {agent_id} not found")
        agent.password_hash = pw_hash
        await end_sessions(uow, agent_id)
        record(
            uow,
            actor=principal_of(request).name,
            action="agent.password_reset",
            target_type="agent",
            target_id=agent_id,
            details={"username": agent.username},
            ip=request.remote or "",
        )

    await hub.tx.run(work)
    return json_response(PasswordOut(password=password))


class ImportIn(Model):
    csv: str = Field(
        max_length=1_000_000,
        description="header: username,display_name,role,team,skills,capacity,password",
    )
    dry_run: bool = True


class ImportRow(Model):
    line: int
    username: str
    action: Literal["create", "update", "error"]
    error: str = ""
    team: str | None = None
    skills: list[SkillLevel] = Field(default_factory=list)
    password: str = Field(default="", description="generated, shown once (not on a dry run)")


class ImportOut(Model):
    dry_run: bool
    rows: list[ImportRow]
    created: int
    updated: int
    errors: int


IMPORT_COLUMNS = ("username", "display_name", "role", "team", "skills", "capacity", "password")


def _pairs(raw: str, what: str) -> dict[str, float]:
    """``billing:4; english:5`` -> {"billing": 4.0, "english": 5.0}."""
    out: dict[str, float] = {}
    for part in raw.replace(",", ";").split(";"):
        if not part.strip():
            continue
        name, sep, value = part.partition(":")
        try:
            out[name.strip()] = float(value) if sep else 3.0
        except ValueError:
            raise InvalidInput(f"{what} {part.strip()!r}: write name:number") from None
    return out


def _parse_row(line: int, row: dict[str, str]) -> tuple[ImportRow, dict[str, Any]]:
    username = (row.get("username") or "").strip()
    data: dict[str, Any] = {
        "username": username,
        "password": (row.get("password") or "").strip() or secrets.token_urlsafe(12),
        "display_name": (row.get("display_name") or "").strip(),
        "role": (row.get("role") or "agent").strip() or "agent",
        "team": (row.get("team") or "").strip() or None,
    }
    try:
        skills = _pairs(row.get("skills") or "", "skill")
        data["skills"] = [{"name": n, "proficiency": p} for n, p in skills.items()]
        capacity = _pairs(row.get("capacity") or "", "capacity")
        if capacity:
            data["capacity"] = {k: int(v) for k, v in capacity.items()}
        checked = AgentIn.model_validate(data)
    except InvalidInput as err:
        return ImportRow(line=line, username=username, action="error", error=str(err)), {}
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return (
            ImportRow(
                line=line, username=username, action="error", error=f"{where}: {first['msg']}"
            ),
            {},
        )
    return (
        ImportRow(
            line=line, username=username, action="create", team=checked.team, skills=checked.skills
        ),
        checked.model_dump(),
    )


@api.route(
    "POST",
    "/api/v1/agents/import",
    access="agents.create",
    summary="Create or update people from CSV; dry_run (the default) only previews",
    tag="agents",
    body=ImportIn,
    responses={200: ImportOut},
)
async def import_agents(request: web.Request) -> web.Response:
    body = await parse_body(request, ImportIn)
    hub = request.app[keys.HUB]
    reader = csv.DictReader(io.StringIO(body.csv.lstrip("\ufeff")))
    missing = {"username"} - set(reader.fieldnames or ())
    unknown = set(reader.fieldnames or ()) - set(IMPORT_COLUMNS)
    if missing or unknown:
        raise InvalidInput(
            f"the header must name username and may name {', '.join(IMPORT_COLUMNS[1:])}"
            + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "")
        )
    parsed = [_parse_row(i, row) for i, row in enumerate(reader, start=2)]
    if len(parsed) > 2000:
        raise InvalidInput("at most 2,000 people per import")
    existing = set(
        await hub.tx.read(
            lambda s: s.scalars(
                select(Agent.username).where(Agent.username.in_([r.username for r, _ in parsed]))
            )
        )
    )
    seen: set[str] = set()
    for row, _ in parsed:
        if row.action == "error":
            continue
        if row.username in seen:
            row.action, row.error = "error", "this username is on an earlier line too"
        elif row.username in existing:
            row.action = "update"
        seen.add(row.username)
    if not body.dry_run:
        for row, data in parsed:
            if row.action == "create":
                await _create_person(request, data)
                row.password = data["password"]
            elif row.action == "update":
                await _update_person(request, data)
    return json_response(
        ImportOut(
            dry_run=body.dry_run,
            rows=[r for r, _ in parsed],
            created=sum(r.action == "create" for r, _ in parsed),
            updated=sum(r.action == "update" for r, _ in parsed),
            errors=sum(r.action == "error" for r, _ in parsed),
        )
    )


async def _create_person(request: web.Request, data: dict[str, Any]) -> None:
    hub = request.app[keys.HUB]
    agent_id = await hub.users.create(
        username=data["username"],
        password=data["password"],
        role=data["role"],
        display_name=data["display_name"],
        capacity=data.get("capacity"),
    )

    async def work(uow: UnitOfWork) -> None:
        agent = await uow.session.get_one(Agent, agent_id)
        agent.team_id = await team_id_for(uow.session, data["team"])
        await set_agent_skills(
            uow.session, agent_id, {k["name"]: k["proficiency"] for k in data["skills"]}
        )
        record(
            uow,
            actor=principal_of(request).name,
            action="agent.import",
            target_type="agent",
            target_id=agent_id,
            details={"username": data["username"], "role": data["role"], "team": data["team"]},
            ip=request.remote or "",
        )
        uow.emit(events.AgentUpdated(agent_id=agent_id))

    await hub.tx.run(work)


async def _update_person(request: web.Request, data: dict[str, Any]) -> None:
    """An existing person: team, skills, name and capacity follow the file; the role and the
    password do not (those are changed one person at a time, on purpose)."""
    hub = request.app[keys.HUB]

    async def work(uow: UnitOfWork) -> None:
        agent = await uow.session.scalar(select(Agent).where(Agent.username == data["username"]))
        if agent is None:
            return
        if data["display_name"]:
            agent.display_name = data["display_name"]
        if data["team"]:
            new_team = await team_id_for(uow.session, data["team"])
            if new_team != agent.team_id:
                agent.team_id = new_team
                await end_sessions(uow, agent.id)
        if data.get("capacity"):
            agent.capacity = dict(data["capacity"])
        if data["skills"]:
            await set_agent_skills(
                uow.session, agent.id, {k["name"]: k["proficiency"] for k in data["skills"]}
            )
        record(
            uow,
            actor=principal_of(request).name,
            action="agent.import",
            target_type="agent",
            target_id=agent.id,
            details={"username": data["username"], "updated": True, "team": data["team"]},
            ip=request.remote or "",
        )
        uow.emit(events.AgentUpdated(agent_id=agent.id))

    await hub.tx.run(work)


# --------------------------------------------------------------------------- channels


class ChannelStatus(Model):
    name: str
    label: str
    labels: dict[str, str]
    badge: str
    colour: str
    enabled: bool
    webhooks: list[str] = Field(description="URLs to paste into the provider's console")
    addresses: list[str] = Field(description="other ways in (an SMTP listener)")
    actions: list[str] = Field(description="test_send, register_webhook")
    last_inbound_at: datetime | None
    last_error: str
    last_error_at: datetime | None


class ChannelList(Model):
    public_url: str
    items: list[ChannelStatus]


def _webhooks(adapter: Any, public_url: str) -> list[str]:
    urls: list[str] = []
    for route in adapter.routes():
        path = getattr(route, "path", "")
        if path.startswith("/webhooks/") and "{" not in path:
            urls.append(public_url + path)
    return sorted(dict.fromkeys(urls))


@api.route(
    "GET",
    "/api/v1/channels",
    access="channels.manage",
    summary="Every registered channel: on or off, webhook URLs, last inbound, last error",
    tag="setup",
    responses={200: ChannelList},
)
async def list_channels(request: web.Request) -> web.Response:
    hub = request.app[keys.HUB]
    adapters = request.app[keys.ADAPTERS]
    public_url = str(hub.settings.public_url).rstrip("/")

    async def facts(s: AsyncSession, *, name: str) -> tuple[datetime | None, str, datetime | None]:
        last_id = await s.scalar(
            select(func.max(Message.id)).where(Message.channel == name, Message.direction == "in")
        )
        last_in = (
            await s.scalar(select(Message.created_at).where(Message.id == last_id))
            if last_id
            else None
        )
        failed = (
            await s.execute(
                select(OutboxItem.last_error, OutboxItem.updated_at)
                .where(OutboxItem.channel == name, OutboxItem.last_error != "")
                .order_by(OutboxItem.updated_at.desc())
                .limit(1)
            )
        ).first()
        return last_in, (failed[0] if failed else ""), (failed[1] if failed else None)

    items: list[ChannelStatus] = []
    for info in hub.channels:
        adapter = adapters.get(info.name)
        last_in, error, error_at = await hub.tx.read(partial(facts, name=info.name))
        actions = []
        if adapter is not None and info.replies:
            actions.append("test_send")
        if adapter is not None and callable(getattr(adapter, "register_webhook", None)):
            actions.append("register_webhook")
        describe = getattr(adapter, "inbound_addresses", None)
        items.append(
            ChannelStatus(
                name=info.name,
                label=info.label,
                labels=dict(info.labels),
                badge=info.badge,
                colour=info.colour,
                enabled=adapter is not None,
                webhooks=_webhooks(adapter, public_url) if adapter is not None else [],
                addresses=list(describe()) if callable(describe) else [],
                actions=actions,
                last_inbound_at=last_in,
                last_error=error,
                last_error_at=error_at,
            )
        )
    return json_response(ChannelList(public_url=public_url, items=items))


async def _audit(request: web.Request, action: str, details: dict[str, Any]) -> None:
    """An audit entry of its own for an action on a channel (nothing else is written)."""

    async def work(uow: UnitOfWork) -> None:
        record(
            uow,
            actor=principal_of(request).name,
            action=action,
            target_type="channel",
            details=details,
            ip=request.remote or "",
        )

    await request.app[keys.HUB].tx.run(work)


def _adapter_for(request: web.Request) -> tuple[str, Any]:
    name = request.match_info["name"]
    adapter = request.app[keys.ADAPTERS].get(name)
    if adapter is None:
        raise NotFound(f"channel {name!r} is not enabled")
    return name, adapter


class TestSendIn(Model):
    to: str = Field(min_length=1, max_length=320, description="the provider address to send to")
    text: str = Field(default="Test message from the hub", min_length=1, max_length=1000)


class ActionOut(Model):
    ok: bool
    detail: str
    provider_id: str = ""


@api.route(
    "POST",
    "/api/v1/channels/{name}/test",
    access="channels.manage",
    summary="Send a test message straight through the provider (not stored as a conversation)",
    tag="setup",
    body=TestSendIn,
    responses={200: ActionOut},
)
async def test_send(request: web.Request) -> web.Response:
    name, adapter = _adapter_for(request)
    body = await parse_body(request, TestSendIn)
    token = secrets.token_hex(8)
    message = OutboundMessage(
        message_id=0,
        conversation_id=0,
        channel=name,
        to=body.to,
        sender=None,
        text=body.text,
        idempotency_key=f"hub-test-{token}",
    )
    try:
        receipt = await adapter.send(message)
        result = ActionOut(
            ok=True, detail=f"accepted: {receipt.status}", provider_id=receipt.provider_id
        )
    except ChannelError as err:
        result = ActionOut(ok=False, detail=str(err)[:500])

    await _audit(request, "channel.test_send", {"channel": name, "to": body.to, "ok": result.ok})
    return json_response(result)


@api.route(
    "POST",
    "/api/v1/channels/{name}/webhook",
    access="channels.manage",
    summary="Register this hub's webhook URL with the provider (where it has an API for it)",
    tag="setup",
    responses={200: ActionOut},
)
async def register_webhook(request: web.Request) -> web.Response:
    name, adapter = _adapter_for(request)
    register = getattr(adapter, "register_webhook", None)
    if not callable(register):
        raise InvalidInput(f"{name} has no API to register a webhook: paste the URL by hand")
    hub = request.app[keys.HUB]
    try:
        detail = str(await register(str(hub.settings.public_url).rstrip("/")))
        result = ActionOut(ok=True, detail=detail)
    except ChannelError as err:
        result = ActionOut(ok=False, detail=str(err)[:500])

    await _audit(request, "channel.register_webhook", {"channel": name, "ok": result.ok})
    return json_response(result)
