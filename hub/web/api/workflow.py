"""Workflow API: automation rules, SLA policies, complaints, follow-ups, shared customer
notes, the email/in-app survey page, and the workflow KPIs (JSON or ``?format=csv``)."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contract.channel import InboundMessage
from contract.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub import events
from hub.access import ensure_conversation, ensure_customer, sees_everything
from hub.audit import record
from hub.uow import UnitOfWork
from hub.web import keys
from hub.web.api.openapi import Param, json_response, parse_body, principal_of
from hub.web.api.reports import _when, csv_response
from hub.web.api.routes import api, path_int
from hub.web.api.schemas import Model, Name
from hub.workflow import complaints as complaint_flow
from hub.workflow import csat
from hub.workflow.calendar import Calendar
from hub.workflow.rules import RuleIn
from storage.models import (
    Agent,
    Complaint,
    Conversation,
    CustomerNote,
    Endpoint,
    Event,
    FollowUp,
    Rule,
    SlaPolicy,
    SlaTimer,
    Survey,
    Team,
    utcnow,
)


def _ids(name: str) -> dict[str, Param]:
    return {name: Param(description="row id", schema={"type": "integer", "minimum": 1})}


Text = Annotated[str, Field(min_length=1, max_length=4000)]


# ---------------------------------------------------------------- rules
class RuleOut(RuleIn):
    id: int
    updated_at: datetime
    fired: int = Field(default=0, description="times it fired (rule.fired events)")


class RuleList(Model):
    items: list[RuleOut]


def _rule_out(row: Rule, fired: int = 0) -> RuleOut:
    return RuleOut.model_validate(
        {
            "fired": fired,
            "id": row.id,
            "name": row.name,
            "event": row.event,
            "conditions": row.conditions,
            "actions": row.actions,
            "position": row.position,
            "enabled": row.enabled,
            "updated_at": row.updated_at,
        }
    )


@api.route(
    "GET",
    "/api/v1/rules",
    access="workflow.read",
    summary="Automation rules in the order they are evaluated",
    tag="workflow",
    responses={200: RuleList},
)
async def list_rules(request: web.Request) -> web.Response:
    async def work(s: AsyncSession) -> RuleList:
        rows = (await s.scalars(select(Rule).order_by(Rule.position, Rule.id))).all()
        rule_id = Event.payload["rule_id"].as_integer()
        counts: dict[int, int] = dict(
            (
                await s.execute(
                    select(rule_id, func.count())
                    .where(Event.type == events.RuleFired.TYPE)
                    .group_by(rule_id)
                )
            ).all()
        )
        return RuleList(items=[_rule_out(r, int(counts.get(r.id, 0))) for r in rows])

    return json_response(await request.app[keys.HUB].tx.read(work))


async def _save_rule(request: web.Request, rule_id: int | None) -> web.Response:
    principal = principal_of(request)
    body = await parse_body(request, RuleIn)
    stored = body.model_dump(mode="json")
    stored["conditions"] = body.conditions.model_dump(mode="json", exclude_none=True)

    async def work(uow: UnitOfWork) -> RuleOut:
        s = uow.session
        if rule_id is None:
            row = Rule(name=body.name)
            s.add(row)
        else:
            found = await s.get(Rule, rule_id)
            if found is None:
                raise NotFound(f"rule {rule_id} not found")
            row = found
        row.name = body.name
        row.event = body.event
        row.conditions = stored["conditions"]
        row.actions = stored["actions"]
        row.position = body.position
        row.enabled = body.enabled
        row.updated_at = utcnow()
        try:
            await s.flush()
        except IntegrityError:
            raise Conflict(f"a rule named {body.name!r} exists") from None
        record(
            uow,
            actor=principal.name,
            action="rule.save",
            target_type="rule",
            target_id=row.id,
            details=stored,
            ip=request.remote or "",
        )
        return _rule_out(row)

    out = await request.app[keys.HUB].tx.run(work)
    return json_response(out, 201 if rule_id is None else 200)


@api.route(
    "POST",
    "/api/v1/rules",
    access="workflow.manage",
    summary="Create an automation rule (event, conditions, actions)",
    tag="workflow",
    body=RuleIn,
    responses={201: RuleOut},
)
async def create_rule(request: web.Request) -> web.Response:
    return await _save_rule(request, None)


@api.route(
    "PUT",
    "/api/v1/rules/{rule_id}",
    access="workflow.manage",
    summary="Replace an automation rule",
    tag="workflow",
    body=RuleIn,
    responses={200: RuleOut},
    path_params=_ids("rule_id"),
)
async def put_rule(request: web.Request) -> web.Response:
    return await _save_rule(request, path_int(request, "rule_id"))


@api.route(
    "DELETE",
    "/api/v1/rules/{rule_id}",
    access="workflow.manage",
    summary="Delete an automation rule",
    tag="workflow",
    responses={204: None},
    path_params=_ids("rule_id"),
)
async def delete_rule(request: web.Request) -> web.Response:
    rule_id = path_int(request, "rule_id")
    principal = principal_of(request)

    async def work(uow: UnitOfWork) -> None:
        row = await uow.session.get(Rule, rule_id)
        if row is None:
            raise NotFound(f"rule {rule_id} not found")
        record(
            uow,
            actor=principal.name,
            action="rule.delete",
            target_type="rule",
            target_id=rule_id,
            details={"name": row.name},
            ip=request.remote or "",
        )
        await uow.session.delete(row)

    await request.app[keys.HUB].tx.run(work)
    return web.Response(status=204)


# ---------------------------------------------------------------- SLA policies
class CalendarIn(Model):
    hours: dict[str, str] = Field(default_factory=dict, description='{"mon": "09:00-18:00"}')
    zone: str = "UTC"
    holidays: list[str] = Field(default_factory=list, max_length=400)


class PolicyIn(Model):
    kind: Literal["conversation", "complaint"] = "conversation"
    queue: Name = Field(default="", description="'' : any queue")
    segment: Annotated[str, Field(max_length=30)] = ""
    severity: Literal["", "low", "medium", "high", "critical"] = ""
    first_response_s: Annotated[int, Field(gt=0, le=31_536_000)] | None = None
    next_response_s: Annotated[int, Field(gt=0, le=31_536_000)] | None = None
    resolution_s: Annotated[int, Field(gt=0, le=31_536_000)] | None = None
    warn_ratio: float = Field(default=0.8, gt=0, le=1)
    calendar: CalendarIn | None = Field(
        default=None, description="business hours; absent: the queue's, else always open"
    )
    priority_boost: int = Field(default=10, ge=0, le=1000, description="added on breach")
    notify: bool = Field(default=True, description="alert the supervisors on breach")


class PolicyOut(PolicyIn):
    name: str


class PolicyList(Model):
    items: list[PolicyOut]


def _policy_out(p: SlaPolicy) -> PolicyOut:
    return PolicyOut.model_validate(
        {
            "name": p.name,
            "kind": p.kind,
            "queue": p.queue,
            "segment": p.segment,
            "severity": p.severity,
            "first_response_s": p.first_response_s,
            "next_response_s": p.next_response_s,
            "resolution_s": p.resolution_s,
            "warn_ratio": p.warn_ratio,
            "calendar": p.calendar or None,
            "priority_boost": int(p.escalation.get("priority_boost", 10)),
            "notify": bool(p.escalation.get("notify", True)),
        }
    )


@api.route(
    "GET",
    "/api/v1/sla-policies",
    access="workflow.read",
    summary="SLA policies",
    tag="workflow",
    responses={200: PolicyList},
)
async def list_policies(request: web.Request) -> web.Response:
    async def work(s: AsyncSession) -> PolicyList:
        rows = (await s.scalars(select(SlaPolicy).order_by(SlaPolicy.name))).all()
        return PolicyList(items=[_policy_out(p) for p in rows])

    return json_response(await request.app[keys.HUB].tx.read(work))


@api.route(
    "PUT",
    "/api/v1/sla-policies/{name}",
    access="workflow.manage",
    summary="Create or replace an SLA policy (targets in business-hours seconds)",
    tag="workflow",
    body=PolicyIn,
    responses={200: PolicyOut},
    path_params={
        "name": Param(description="policy name", schema={"type": "string", "maxLength": 100})
    },
)
async def put_policy(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not 1 <= len(name) <= 100:
        raise InvalidInput("policy name must be 1-100 characters")
    body = await parse_body(request, PolicyIn)
    cal = body.calendar.model_dump() if body.calendar is not None else {}
    if cal:
        try:
            Calendar.from_options(cal)
        except ValueError as err:
            raise InvalidInput(f"calendar: {err}") from None
    if not (body.first_response_s or body.next_response_s or body.resolution_s):
        raise InvalidInput("set at least one of first_response_s, next_response_s, resolution_s")
    principal = principal_of(request)

    async def work(uow: UnitOfWork) -> PolicyOut:
        s = uow.session
        p = await s.scalar(select(SlaPolicy).where(SlaPolicy.name == name))
        if p is None:
            p = SlaPolicy(name=name)
            s.add(p)
        for field in ("kind", "queue", "segment", "severity", "warn_ratio"):
            setattr(p, field, getattr(body, field))
        p.first_response_s = body.first_response_s
        p.next_response_s = body.next_response_s
        p.resolution_s = body.resolution_s
        p.calendar = cal
        p.escalation = {"priority_boost": body.priority_boost, "notify": body.notify}
        await s.flush()
        record(
            uow,
            actor=principal.name,
            action="sla_policy.save",
            target_type="sla_policy",
            target_id=p.id,
            details={"name": name, **body.model_dump(mode="json")},
            ip=request.remote or "",
        )
        return _policy_out(p)

    return json_response(await request.app[keys.HUB].tx.run(work))


# ---------------------------------------------------------------- complaints
class ComplaintIn(Model):
    category: Annotated[str, Field(min_length=1, max_length=50)]
    severity: Literal["low", "medium", "high", "critical"]
    summary: Annotated[str, Field(max_length=1000)] = ""
    team: Name | None = Field(default=None, description="the responsible department")


class ComplaintOut(Model):
    id: int
    conversation_id: int
    customer_id: int
    category: str
    severity: str
    state: str
    team: str | None
    queue: str
    summary: str
    escalation_level: int
    opened_at: datetime
    resolution: str
    resolved_at: datetime | None
    customer_notified: bool
    notify_error: str = ""


class ComplaintList(Model):
    items: list[ComplaintOut]


class EscalateIn(Model):
    reason: Annotated[str, Field(min_length=1, max_length=200)]


class ResolveIn(Model):
    resolution: Text
    notify_customer: bool = True


async def _complaint_out(s: AsyncSession, c: Complaint, why: str = "") -> ComplaintOut:
    team = await s.scalar(select(Team.name).where(Team.id == c.team_id)) if c.team_id else None
    return ComplaintOut(
        id=c.id,
        conversation_id=c.conversation_id,
        customer_id=c.customer_id,
        category=c.category,
        severity=c.severity,
        state=c.state,
        team=team,
        queue=c.queue,
        summary=c.summary,
        escalation_level=c.escalation_level,
        opened_at=c.opened_at,
        resolution=c.resolution,
        resolved_at=c.resolved_at,
        customer_notified=c.notified_message_id is not None,
        notify_error=why,
    )


@api.route(
    "POST",
    "/api/v1/conversations/{conversation_id}/complaint",
    access="conversations.write",
    summary="Mark a conversation as a complaint and route it to the responsible department",
    tag="workflow",
    body=ComplaintIn,
    responses={201: ComplaintOut},
    path_params=_ids("conversation_id"),
)
async def open_complaint(request: web.Request) -> web.Response:
    conv_id = path_int(request, "conversation_id")
    principal = principal_of(request)
    body = await parse_body(request, ComplaintIn)

    async def work(uow: UnitOfWork) -> ComplaintOut:
        await ensure_conversation(uow.session, principal, conv_id)
        c = await complaint_flow.open_complaint(
            uow,
            conv_id,
            category=body.category,
            severity=body.severity,
            summary=body.summary,
            team=body.team,
            by=principal.agent_id,
        )
        return await _complaint_out(uow.session, c)

    return json_response(await request.app[keys.HUB].tx.run(work), 201)


async def _readable_complaint(s: AsyncSession, request: web.Request, complaint_id: int) -> None:
    c = await s.get(Complaint, complaint_id)
    if c is None:
        raise NotFound(f"complaint {complaint_id} not found")
    await ensure_conversation(s, principal_of(request), c.conversation_id)


@api.route(
    "GET",
    "/api/v1/complaints",
    access="conversations.read",
    summary="Complaints the caller may see, newest first (?state=open|escalated|resolved)",
    tag="workflow",
    query={"state": "only this state", "conversation_id": "only this conversation's"},
    responses={200: ComplaintList},
)
async def list_complaints(request: web.Request) -> web.Response:
    principal = principal_of(request)
    state = request.query.get("state")
    conv = request.query.get("conversation_id")

    async def work(s: AsyncSession) -> ComplaintList:
        query = select(Complaint).order_by(Complaint.id.desc()).limit(200)
        if state:
            query = query.where(Complaint.state == state)
        if conv:
            if not conv.isdigit():
                raise InvalidInput("conversation_id must be an integer")
            query = query.where(Complaint.conversation_id == int(conv))
        items = []
        for c in (await s.scalars(query)).all():
            if not sees_everything(principal):
                try:
                    await ensure_conversation(s, principal, c.conversation_id)
                except NotFound:
                    continue
            items.append(await _complaint_out(s, c))
        return ComplaintList(items=items)

    return json_response(await request.app[keys.HUB].tx.read(work))


@api.route(
    "POST",
    "/api/v1/complaints/{complaint_id}/escalate",
    access="conversations.write",
    summary="Escalate a complaint one level (the supervisors are told)",
    tag="workflow",
    body=EscalateIn,
    responses={200: ComplaintOut},
    path_params=_ids("complaint_id"),
)
async def escalate_complaint(request: web.Request) -> web.Response:
    complaint_id = path_int(request, "complaint_id")
    body = await parse_body(request, EscalateIn)

    async def work(uow: UnitOfWork) -> ComplaintOut:
        await _readable_complaint(uow.session, request, complaint_id)
        c = await complaint_flow.escalate(uow, complaint_id, reason=body.reason)
        return await _complaint_out(uow.session, c)

    return json_response(await request.app[keys.HUB].tx.run(work))


@api.route(
    "POST",
    "/api/v1/complaints/{complaint_id}/resolve",
    access="conversations.write",
    summary="Resolve a complaint with its resolution; the customer is told on their channel",
    tag="workflow",
    body=ResolveIn,
    responses={200: ComplaintOut},
    path_params=_ids("complaint_id"),
)
async def resolve_complaint(request: web.Request) -> web.Response:
    complaint_id = path_int(request, "complaint_id")
    body = await parse_body(request, ResolveIn)
    principal = principal_of(request)
    hub = request.app[keys.HUB]

    async def work(uow: UnitOfWork) -> ComplaintOut:
        await _readable_complaint(uow.session, request, complaint_id)
        c, why = await complaint_flow.resolve(
            uow,
            complaint_id,
            resolution=body.resolution,
            by=principal.agent_id,
            notify=body.notify_customer,
            channels=hub.channels,
        )
        return await _complaint_out(uow.session, c, why)

    return json_response(await hub.tx.run(work))


# ---------------------------------------------------------------- follow-ups
class FollowUpIn(Model):
    title: Annotated[str, Field(min_length=1, max_length=300)]
    conversation_id: int | None = Field(default=None, ge=1)
    owner_id: int | None = Field(default=None, ge=1, description="absent: the caller")
    due_at: datetime | None = None


class FollowUpOut(Model):
    id: int
    customer_id: int
    conversation_id: int | None
    title: str
    source: str
    owner_id: int | None
    team: str | None
    due_at: datetime | None
    state: str
    created_at: datetime


class FollowUpList(Model):
    items: list[FollowUpOut]


async def _follow_out(s: AsyncSession, f: FollowUp) -> FollowUpOut:
    team = await s.scalar(select(Team.name).where(Team.id == f.team_id)) if f.team_id else None
    return FollowUpOut(
        id=f.id,
        customer_id=f.customer_id,
        conversation_id=f.conversation_id,
        title=f.title,
        source=f.source,
        owner_id=f.owner_id,
        team=team,
        due_at=f.due_at,
        state=f.state,
        created_at=f.created_at,
    )


@api.route(
    "POST",
    "/api/v1/customers/{customer_id}/follow-ups",
    access="customers.write",
    summary="Create a follow-up task on a customer (an owner and a due date)",
    tag="workflow",
    body=FollowUpIn,
    responses={201: FollowUpOut},
    path_params=_ids("customer_id"),
)
async def create_follow_up(request: web.Request) -> web.Response:
    customer_id = path_int(request, "customer_id")
    principal = principal_of(request)
    body = await parse_body(request, FollowUpIn)
    if body.due_at is not None and body.due_at.tzinfo is None:
        raise InvalidInput("due_at needs a timezone offset")

    async def work(uow: UnitOfWork) -> FollowUpOut:
        s = uow.session
        await ensure_customer(s, principal, customer_id)
        if body.conversation_id is not None:
            await ensure_conversation(s, principal, body.conversation_id)
        owner = body.owner_id or principal.agent_id
        if owner is not None and await s.get(Agent, owner) is None:
            raise InvalidInput(f"agent {owner} does not exist")
        task = await csat.follow_up(
            uow,
            customer_id=customer_id,
            conversation_id=body.conversation_id,
            title=body.title,
            source="manual",
            owner_id=owner,
            created_by=principal.agent_id,
        )
        if body.due_at is not None:
            task.due_at = body.due_at.astimezone(UTC)
        return await _follow_out(s, task)

    return json_response(await request.app[keys.HUB].tx.run(work), 201)


@api.route(
    "GET",
    "/api/v1/follow-ups",
    access="conversations.read",
    summary="Open follow-ups: the caller's own, and their teams' unowned ones (supervisors)",
    tag="workflow",
    query={"customer_id": "only this customer's", "state": "open (default) or done"},
    responses={200: FollowUpList},
)
async def list_follow_ups(request: web.Request) -> web.Response:
    principal = principal_of(request)
    state = request.query.get("state", "open")
    customer = request.query.get("customer_id")

    async def work(s: AsyncSession) -> FollowUpList:
        query = select(FollowUp).where(FollowUp.state == state)
        if customer:
            if not customer.isdigit():
                raise InvalidInput("customer_id must be an integer")
            await ensure_customer(s, principal, int(customer))
            query = query.where(FollowUp.customer_id == int(customer))
        elif not sees_everything(principal):
            mine = FollowUp.owner_id == principal.agent_id
            if principal.role == "supervisor" and principal.team_ids:
                mine = mine | (
                    FollowUp.owner_id.is_(None) & FollowUp.team_id.in_(principal.team_ids)
                )
            query = query.where(mine)
        rows = (await s.scalars(query.order_by(FollowUp.due_at, FollowUp.id).limit(200))).all()
        return FollowUpList(items=[await _follow_out(s, f) for f in rows])

    return json_response(await request.app[keys.HUB].tx.read(work))


@api.route(
    "POST",
    "/api/v1/follow-ups/{follow_up_id}/done",
    access="conversations.write",
    summary="Mark a follow-up done",
    tag="workflow",
    responses={200: FollowUpOut},
    path_params=_ids("follow_up_id"),
)
async def done_follow_up(request: web.Request) -> web.Response:
    task_id = path_int(request, "follow_up_id")
    principal = principal_of(request)

    async def work(uow: UnitOfWork) -> FollowUpOut:
        s = uow.session
        task = await s.get(FollowUp, task_id)
        if task is None:
            raise NotFound(f"follow-up {task_id} not found")
        await ensure_customer(s, principal, task.customer_id)
        lead = sees_everything(principal) or principal.role == "supervisor"
        if task.owner_id is not None and task.owner_id != principal.agent_id and not lead:
            raise Forbidden("this follow-up is another person's: its owner or a supervisor does it")
        if task.state != "done":
            task.state = "done"
            task.done_at = utcnow()
            uow.emit(
                events.FollowUpDone(
                    customer_id=task.customer_id,
                    conversation_id=task.conversation_id,
                    agent_id=principal.agent_id,
                    follow_up_id=task.id,
                )
            )
        return await _follow_out(s, task)

    return json_response(await request.app[keys.HUB].tx.run(work))


# ---------------------------------------------------------------- shared customer notes
class CustomerNoteIn(Model):
    text: Text
    visibility: Literal["all", "team"] = Field(
        default="all", description="team: only the author's team (and leads) read it"
    )


class CustomerNoteOut(Model):
    id: int
    author: str | None
    team: str | None
    text: str
    created_at: datetime


class CustomerNoteList(Model):
    items: list[CustomerNoteOut]


@api.route(
    "GET",
    "/api/v1/customers/{customer_id}/notes",
    access="customers.read",
    summary="Internal notes on the customer record the caller's teams may read",
    tag="workflow",
    responses={200: CustomerNoteList},
    path_params=_ids("customer_id"),
)
async def list_customer_notes(request: web.Request) -> web.Response:
    customer_id = path_int(request, "customer_id")
    principal = principal_of(request)

    async def work(s: AsyncSession) -> CustomerNoteList:
        await ensure_customer(s, principal, customer_id)
        query = select(CustomerNote, Agent.display_name, Team.name).outerjoin(
            Agent, Agent.id == CustomerNote.author_id
        )
        query = query.outerjoin(Team, Team.id == CustomerNote.team_id).where(
            CustomerNote.customer_id == customer_id
        )
        if not sees_everything(principal):
            query = query.where(
                CustomerNote.team_id.is_(None) | CustomerNote.team_id.in_(principal.team_ids)
            )
        rows = (await s.execute(query.order_by(CustomerNote.id.desc()).limit(200))).all()
        return CustomerNoteList(
            items=[
                CustomerNoteOut(
                    id=n.id, author=author, team=team, text=n.text, created_at=n.created_at
                )
                for n, author, team in rows
            ]
        )

    return json_response(await request.app[keys.HUB].tx.read(work))


@api.route(
    "POST",
    "/api/v1/customers/{customer_id}/notes",
    access="customers.write",
    summary="Add an internal note to the customer record (all teams, or the author's team)",
    tag="workflow",
    body=CustomerNoteIn,
    responses={201: CustomerNoteOut},
    path_params=_ids("customer_id"),
)
async def add_customer_note(request: web.Request) -> web.Response:
    customer_id = path_int(request, "customer_id")
    principal = principal_of(request)
    body = await parse_body(request, CustomerNoteIn)
    team_id = None
    if body.visibility == "team":
        if not principal.team_ids:
            raise InvalidInput("you are in no team: team notes need one")
        team_id = min(principal.team_ids)

    async def work(uow: UnitOfWork) -> CustomerNoteOut:
        s = uow.session
        await ensure_customer(s, principal, customer_id)
        note = CustomerNote(
            customer_id=customer_id, author_id=principal.agent_id, team_id=team_id, text=body.text
        )
        s.add(note)
        await s.flush()
        uow.emit(
            events.CustomerNoteAdded(
                customer_id=customer_id,
                agent_id=principal.agent_id,
                note_id=note.id,
                text=body.text[:500],
                team_id=team_id,
            )
        )
        team = await s.scalar(select(Team.name).where(Team.id == team_id)) if team_id else None
        return CustomerNoteOut(
            id=note.id,
            author=principal.display_name,
            team=team,
            text=note.text,
            created_at=note.created_at,
        )

    return json_response(await request.app[keys.HUB].tx.run(work), 201)


# ---------------------------------------------------------------- survey page (email, in-app)
_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>
<style>body{{font:16px system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}
button{{font-size:1.4rem;margin:.2rem;padding:.5rem .9rem;cursor:pointer}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = _PAGE.format(lang="en", title=html.escape(title), body=body)
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
    )


async def _survey_of(request: web.Request) -> Survey | None:
    hub = request.app[keys.HUB]
    token = request.match_info["token"]
    if not 20 <= len(token) <= 64:
        return None

    async def work(s: AsyncSession) -> Survey | None:
        found: Survey | None = await s.scalar(select(Survey).where(Survey.token == token))
        return found

    return await hub.tx.read(work)


async def survey_page(request: web.Request) -> web.Response:
    """The satisfaction survey page a survey link opens."""
    survey = await _survey_of(request)
    if survey is None:
        return _page("Survey not found", "<p>This link is not valid.</p>", 404)
    if survey.state != "sent":
        return _page("Thank you", "<p>We already have your answer. Thank you!</p>")
    buttons = "".join(
        f'<button name="score" value="{n}" type="submit">{n}</button>' for n in range(1, 6)
    )
    form = (
        "<p>How satisfied were you with our help? 1 = poor, 5 = excellent.</p>"
        f'<form method="post">{buttons}</form>'
    )
    return _page("How did we do?", form)


async def survey_answer(request: web.Request) -> web.Response:
    """Record the page's answer (form field ``score`` = 1..5); the first answer counts."""
    survey = await _survey_of(request)
    if survey is None:
        return _page("Survey not found", "<p>This link is not valid.</p>", 404)
    form = await request.post()
    raw = str(form.get("score", ""))
    if raw not in ("1", "2", "3", "4", "5"):
        return _page("Please choose", "<p>Choose a score from 1 to 5.</p>", 400)
    hub = request.app[keys.HUB]
    window = hub.settings.workflow.csat_window_s
    if survey.state != "sent" or utcnow() - survey.sent_at > timedelta(seconds=window):
        return _page("Thank you", "<p>This survey is closed. Thank you!</p>")

    async def endpoint(s: AsyncSession) -> tuple[str, str]:
        conv = await s.get_one(Conversation, survey.conversation_id)
        ep = await s.get_one(Endpoint, conv.endpoint_id)
        return ep.kind, ep.address

    kind, address = await hub.tx.read(endpoint)
    await hub.ingest(
        InboundMessage(
            channel=survey.channel,
            sender_kind=kind,
            sender=address,
            provider_id=f"csat:{survey.token}",
            text=f"CSAT {raw}/5",
            kind="csat",
            thread_refs=(),
            metadata={"score": int(raw), "how": csat.LINK},
        )
    )
    return _page("Thank you", "<p>Thank you for your answer!</p>")


def survey_routes() -> list[web.RouteDef]:
    """The public survey page of email and in-app links (its random token is the key)."""
    return [web.get("/csat/{token}", survey_page), web.post("/csat/{token}", survey_answer)]


# ---------------------------------------------------------------- KPIs
class SlaRow(Model):
    queue: str
    metric: str
    started: int
    met: int
    warned: int
    breached: int
    breach_rate: float | None


class ComplaintRow(Model):
    category: str
    severity: str
    opened: int
    resolved: int
    escalated: int
    avg_resolution_s: float | None


class CsatRow(Model):
    key: str
    surveys: int
    answers: int
    response_rate: float | None
    avg_score: float | None
    low_scores: int


class WorkflowReport(Model):
    start: datetime
    end: datetime
    sla: list[SlaRow]
    complaints: list[ComplaintRow]
    csat_by_channel: list[CsatRow]
    csat_by_agent: list[CsatRow]


def _range(request: web.Request) -> tuple[datetime, datetime]:
    now = utcnow()
    q = request.query
    start = _when(q["from"], ZoneInfo("UTC"), "from") if q.get("from") else now - timedelta(days=1)
    end = _when(q["to"], ZoneInfo("UTC"), "to") if q.get("to") else now
    if end <= start:
        raise InvalidInput("to must be after from")
    return start, end


def _rate(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


async def workflow_report(s: AsyncSession, start: datetime, end: datetime) -> WorkflowReport:
    """SLA results per queue and metric (timers started in the range), complaints by category
    and severity (opened in the range), CSAT per channel and per agent (surveys and answers
    of conversations asked in the range)."""
    sla_rows = (
        await s.execute(
            select(
                SlaTimer.queue,
                SlaTimer.metric,
                SlaTimer.state,
                func.count(),
            )
            .where(SlaTimer.started_at >= start, SlaTimer.started_at < end)
            .where(SlaTimer.complaint_id.is_(None))
            .group_by(SlaTimer.queue, SlaTimer.metric, SlaTimer.state)
        )
    ).all()
    sla: dict[tuple[str, str], dict[str, int]] = {}
    for queue, metric, state, n in sla_rows:
        sla.setdefault((queue, metric), {})[state] = int(n)
    sla_out = [
        SlaRow(
            queue=queue,
            metric=metric,
            started=sum(c.values()),
            met=c.get("met", 0),
            warned=c.get("warned", 0),
            breached=c.get("breached", 0),
            breach_rate=_rate(c.get("breached", 0), sum(c.values())),
        )
        for (queue, metric), c in sorted(sla.items())
    ]
    comp = (
        await s.scalars(
            select(Complaint).where(Complaint.opened_at >= start, Complaint.opened_at < end)
        )
    ).all()
    groups: dict[tuple[str, str], list[Complaint]] = {}
    for c in comp:
        groups.setdefault((c.category, c.severity), []).append(c)
    comp_out = []
    for (category, severity), items in sorted(groups.items()):
        durations = [(c.resolved_at - c.opened_at).total_seconds() for c in items if c.resolved_at]
        comp_out.append(
            ComplaintRow(
                category=category,
                severity=severity,
                opened=len(items),
                resolved=sum(1 for c in items if c.state == "resolved"),
                escalated=sum(1 for c in items if c.escalation_level > 0),
                avg_resolution_s=round(sum(durations) / len(durations), 1) if durations else None,
            )
        )
    surveys = (
        await s.execute(
            select(Survey.channel, Survey.agent_id, Survey.state, Survey.score, Agent.display_name)
            .outerjoin(Agent, Agent.id == Survey.agent_id)
            .where(Survey.sent_at >= start, Survey.sent_at < end)
        )
    ).all()
    return WorkflowReport(
        start=start,
        end=end,
        sla=sla_out,
        complaints=comp_out,
        csat_by_channel=_csat_rows([(row[0], row[2], row[3]) for row in surveys]),
        csat_by_agent=_csat_rows(
            [(row[4] or f"agent {row[1]}" if row[1] else "-", row[2], row[3]) for row in surveys]
        ),
    )


def _csat_rows(items: list[tuple[str, str, int | None]]) -> list[CsatRow]:
    by: dict[str, list[tuple[str, int | None]]] = {}
    for key, state, score in items:
        by.setdefault(key, []).append((state, score))
    out = []
    for key, rows in sorted(by.items()):
        scores = [sc for st, sc in rows if sc is not None]
        out.append(
            CsatRow(
                key=key,
                surveys=len(rows),
                answers=len(scores),
                response_rate=_rate(len(scores), len(rows)),
                avg_score=round(sum(scores) / len(scores), 2) if scores else None,
                low_scores=sum(1 for sc in scores if sc <= 2),
            )
        )
    return out


@api.route(
    "GET",
    "/api/v1/reports/workflow",
    access="reports.read",
    summary="SLA results per queue, complaints by category and severity, CSAT per channel "
    "and agent; ?format=csv",
    tag="reports",
    query={
        "from": "ISO 8601 start (default: 24 hours ago)",
        "to": "ISO 8601 end (default: now)",
        "format": Param(description="json (default) or csv", schema={"enum": ["json", "csv"]}),
    },
    responses={200: WorkflowReport},
    also=("text/csv",),
)
async def report_workflow(request: web.Request) -> web.Response:
    start, end = _range(request)
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidInput("format must be json or csv")
    async with request.app[keys.HUB].read_sessions() as s:
        report = await workflow_report(s, start, end)
    if fmt == "json":
        return json_response(report)
    rows: list[dict[str, Any]] = [
        {"section": "sla", "key": sr.queue, "sub": sr.metric, **sr.model_dump()}
        for sr in report.sla
    ]
    rows.extend(
        {"section": "complaints", "key": cr.category, "sub": cr.severity, **cr.model_dump()}
        for cr in report.complaints
    )
    for section, items in (
        ("csat_channel", report.csat_by_channel),
        ("csat_agent", report.csat_by_agent),
    ):
        rows.extend({"section": section, **c.model_dump()} for c in items)
    header = [
        "section",
        "key",
        "sub",
        "started",
        "met",
        "warned",
        "breached",
        "breach_rate",
        "opened",
        "resolved",
        "escalated",
        "avg_resolution_s",
        "surveys",
        "answers",
        "response_rate",
        "avg_score",
        "low_scores",
    ]
    return csv_response("workflow", header, rows)
