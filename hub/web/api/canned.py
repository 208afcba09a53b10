"""Canned responses and dispositions API: agents read their team's and all-team ones;
supervisors manage their team's (and their team's queues' codes), admins everything."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contract.errors import Conflict, InvalidInput, NotFound
from hub import events
from hub.access import ensure_conversation, sees_everything
from hub.accounts.principal import Principal
from hub.audit import record
from hub.uow import UnitOfWork
from hub.web import keys
from hub.web.api.openapi import Param, json_response, parse_body, principal_of
from hub.web.api.routes import api, as_int, path_int
from hub.web.api.schemas import Int32, Model, Name
from hub.work import canned
from storage.models import CannedResponse, Disposition, Queue, Team, utcnow

# No NUL anywhere: PostgreSQL text cannot hold it.
Text = Annotated[str, Field(pattern=r"^[^\x00]*$")]
Shortcut = Annotated[
    str,
    Field(
        min_length=1,
        max_length=50,
        pattern=r"^[^\s/{}\x00]+$",
        description="what the agent types after '/', e.g. refund",
    ),
]
Language = Annotated[
    str,
    Field(max_length=10, pattern=r"^[A-Za-z]{0,3}(-[A-Za-z0-9]{1,8})?$", description="'' : any"),
]
Code = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")]
TEAM_DOC = "team name; null: every team (admins only)"
PLACEHOLDER_DOC = "placeholders: " + ", ".join(f"{{{p}}}" for p in canned.PLACEHOLDERS)
QUEUE_PARAM = Param(
    description="queue name", schema={"type": "string", "minLength": 1, "maxLength": 100}
)


class CannedIn(Model):
    shortcut: Shortcut
    title: Annotated[Text, Field(max_length=200)] = ""
    text: Annotated[Text, Field(min_length=1, max_length=10_000, description=PLACEHOLDER_DOC)]
    team: Name | None = Field(default=None, description=TEAM_DOC)
    language: Language = ""


class CannedPatch(Model):
    shortcut: Shortcut | None = None
    title: Annotated[Text, Field(max_length=200)] | None = None
    text: Annotated[Text, Field(min_length=1, max_length=10_000)] | None = None
    team: Name | None = Field(default=None, description=TEAM_DOC + " (absent: unchanged)")
    language: Language | None = None


class CannedOut(Model):
    id: int
    shortcut: str
    title: str
    text: str
    team: str | None
    language: str
    created_by: str
    updated_at: datetime
    expanded: str | None = Field(
        default=None, description="the text filled for ?conversation_id (placeholders)"
    )


class CannedList(Model):
    items: list[CannedOut]


class DispositionIn(Model):
    queue: Name = Field(default="", description="queue name; '' : every queue (admins only)")
    code: Code
    label: Annotated[Text, Field(max_length=200)] = ""
    active: bool = True
    sort_order: Int32 = 0


class DispositionPatch(Model):
    label: Annotated[Text, Field(max_length=200)] | None = None
    active: bool | None = None
    sort_order: Int32 | None = None


class DispositionOut(Model):
    id: int
    queue: str
    code: str
    label: str
    active: bool
    sort_order: int


class QueueDispositions(Model):
    name: str
    team: str | None
    required: bool = Field(description="closing needs one of the queue's active codes")


class DispositionList(Model):
    items: list[DispositionOut]
    queues: list[QueueDispositions]


class RequiredIn(Model):
    required: bool


def _ip(request: web.Request) -> str:
    return (request.remote or "")[:64]


def _audit(
    s: AsyncSession, principal: Principal, request: web.Request, action: str, target: Any
) -> None:
    kind = "canned" if isinstance(target, CannedResponse) else "disposition"
    details = {
        c: getattr(target, c)
        for c in ("shortcut", "team_id", "language", "queue", "code", "label", "active")
        if hasattr(target, c)
    }
    record(
        s,
        actor=principal.name,
        action=f"{kind}.{action}",
        target_type=kind,
        target_id=target.id,
        details=details,
        ip=_ip(request),
    )


async def _team_names(s: AsyncSession) -> dict[int, str]:
    return {t.id: t.name for t in (await s.scalars(select(Team))).all()}


async def _team_id(s: AsyncSession, name: str | None) -> int | None:
    if name is None:
        return None
    team_id = await s.scalar(select(Team.id).where(Team.name == name))
    if team_id is None:
        raise InvalidInput(f"team {name!r} does not exist")
    return team_id


def _out(row: CannedResponse, teams: dict[int, str], expanded: str | None = None) -> CannedOut:
    return CannedOut(
        id=row.id,
        shortcut=row.shortcut,
        title=row.title,
        text=row.text,
        team=teams.get(row.team_id) if row.team_id is not None else None,
        language=row.language,
        created_by=row.created_by,
        updated_at=row.updated_at,
        expanded=expanded,
    )


@api.route(
    "GET",
    "/api/v1/canned-responses",
    access="canned.read",
    summary="Canned responses the caller may use (their team's and all-team ones)",
    tag="canned",
    query={
        "q": "search shortcut, title and text (case-insensitive)",
        "conversation_id": Param(
            description="fill placeholders for this conversation; its customer's language first",
            schema={"type": "integer", "minimum": 1},
        ),
        "team": "only this team's",
    },
    responses={200: CannedList},
)
async def list_canned(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    q = request.query.get("q")
    raw_conv = request.query.get("conversation_id")
    conv_id = as_int(raw_conv, "conversation_id") if raw_conv is not None else None
    team = request.query.get("team")

    async def work(s: AsyncSession) -> CannedList:
        if conv_id is not None:
            await ensure_conversation(s, principal, conv_id)
        teams = await _team_names(s)
        if q is not None or conv_id is not None:
            langs = await canned.search_languages(s, principal, conv_id)
            rows: Any = await canned.search(s, principal, q or "", languages=langs, limit=200)
            if team is not None:
                rows = [r for r in rows if r.team_id is not None and teams[r.team_id] == team]
        else:
            team_id = await _team_id(s, team) if team is not None else None
            rows = await canned.list_canned(s, principal, team_id=team_id)
        values = (await canned.placeholders_for(s, principal, conv_id)).table()
        return CannedList(
            items=[
                _out(r, teams, canned.expand(r.text, values) if conv_id is not None else None)
                for r in rows
            ]
        )

    return json_response(await hub.tx.read(work))


@api.route(
    "POST",
    "/api/v1/canned-responses",
    access="canned.write",
    summary="Create a canned response (supervisors: for their team)",
    tag="canned",
    body=CannedIn,
    responses={201: CannedOut},
)
async def create_canned(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    body = await parse_body(request, CannedIn)

    async def work(uow: UnitOfWork) -> CannedOut:
        s = uow.session
        team_id = await _team_id(s, body.team)
        if body.team is None and not sees_everything(principal) and principal.team_ids:
            # A team supervisor writes for their own team unless they name one.
            team_id = min(principal.team_ids)
        canned.ensure_team_manager(principal, team_id)
        row = CannedResponse(
            shortcut=body.shortcut,
            title=body.title,
            text=body.text,
            team_id=team_id,
            language=body.language.lower(),
            created_by=principal.name,
            updated_at=utcnow(),
        )
        s.add(row)
        await s.flush()
        _audit(s, principal, request, "create", row)
        return _out(row, await _team_names(s))

    return json_response(await hub.tx.run(work), status=201)


@api.route(
    "PATCH",
    "/api/v1/canned-responses/{canned_id}",
    access="canned.write",
    summary="Edit a canned response",
    tag="canned",
    body=CannedPatch,
    responses={200: CannedOut},
)
async def patch_canned(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    canned_id = path_int(request, "canned_id")
    body = await parse_body(request, CannedPatch)

    async def work(uow: UnitOfWork) -> CannedOut:
        s = uow.session
        row = await canned.get_canned(s, principal, canned_id)
        canned.ensure_team_manager(principal, row.team_id)
        if "team" in body.model_fields_set:
            team_id = await _team_id(s, body.team)
            canned.ensure_team_manager(principal, team_id)
            row.team_id = team_id
        if body.shortcut is not None:
            row.shortcut = body.shortcut
        if body.title is not None:
            row.title = body.title
        if body.text is not None:
            row.text = body.text
        if body.language is not None:
            row.language = body.language.lower()
        row.updated_at = utcnow()
        await s.flush()
        _audit(s, principal, request, "update", row)
        return _out(row, await _team_names(s))

    return json_response(await hub.tx.run(work))


@api.route(
    "DELETE",
    "/api/v1/canned-responses/{canned_id}",
    access="canned.write",
    summary="Delete a canned response",
    tag="canned",
    responses={204: None},
)
async def delete_canned(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    canned_id = path_int(request, "canned_id")

    async def work(uow: UnitOfWork) -> None:
        s = uow.session
        row = await canned.get_canned(s, principal, canned_id)
        canned.ensure_team_manager(principal, row.team_id)
        _audit(s, principal, request, "delete", row)
        await s.delete(row)

    await hub.tx.run(work)
    return web.Response(status=204)


# ------------------------------------------------------------------ dispositions


def _disp_out(row: Disposition) -> DispositionOut:
    return DispositionOut(
        id=row.id,
        queue=row.queue,
        code=row.code,
        label=row.label,
        active=row.active,
        sort_order=row.sort_order,
    )


@api.route(
    "GET",
    "/api/v1/dispositions",
    access="canned.read",
    summary="Disposition codes (with ?queue: that queue's active ones) and each queue's "
    "required flag",
    tag="canned",
    query={"queue": "the codes a conversation of this queue may close with"},
    responses={200: DispositionList},
)
async def list_dispositions(request: web.Request) -> web.Response:
    hub = request.app[keys.HUB]
    queue = request.query.get("queue")

    async def work(s: AsyncSession) -> DispositionList:
        if queue is not None:
            rows = await canned.dispositions_for(s, queue)
        else:
            rows = list(
                (
                    await s.scalars(
                        select(Disposition).order_by(
                            Disposition.queue, Disposition.sort_order, Disposition.code
                        )
                    )
                ).all()
            )
        teams = await _team_names(s)
        stmt = select(Queue).order_by(Queue.name)
        if queue is not None:
            stmt = stmt.where(Queue.name == queue)
        queues = [
            QueueDispositions(
                name=q.name,
                team=teams.get(q.team_id) if q.team_id is not None else None,
                required=bool((q.options or {}).get(canned.REQUIRED_OPTION)),
            )
            for q in (await s.scalars(stmt)).all()
        ]
        return DispositionList(items=[_disp_out(r) for r in rows], queues=queues)

    return json_response(await hub.tx.read(work))


@api.route(
    "POST",
    "/api/v1/dispositions",
    access="canned.write",
    summary="Add a disposition code to a queue ('' : every queue)",
    tag="canned",
    body=DispositionIn,
    responses={201: DispositionOut},
)
async def create_disposition(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    body = await parse_body(request, DispositionIn)

    async def work(uow: UnitOfWork) -> DispositionOut:
        s = uow.session
        await canned.ensure_queue_manager(s, principal, body.queue)
        taken = await s.scalar(
            select(Disposition.id).where(
                Disposition.queue == body.queue, Disposition.code == body.code
            )
        )
        if taken is not None:
            raise Conflict(f"code {body.code!r} already exists for this queue")
        row = Disposition(
            queue=body.queue,
            code=body.code,
            label=body.label,
            active=body.active,
            sort_order=body.sort_order,
        )
        s.add(row)
        await s.flush()
        _audit(s, principal, request, "create", row)
        return _disp_out(row)

    try:
        out = await hub.tx.run(work)
    except IntegrityError:  # the same code added concurrently
        raise Conflict(f"code {body.code!r} already exists for this queue") from None
    return json_response(out, status=201)


async def _disposition(s: AsyncSession, principal: Principal, disposition_id: int) -> Disposition:
    row = await s.get(Disposition, disposition_id)
    if row is None:
        raise NotFound(f"disposition {disposition_id} not found")
    await canned.ensure_queue_manager(s, principal, row.queue)
    return row


@api.route(
    "PATCH",
    "/api/v1/dispositions/{disposition_id}",
    access="canned.write",
    summary="Edit a disposition's label, order or active flag (the code stays: reports use it)",
    tag="canned",
    body=DispositionPatch,
    responses={200: DispositionOut},
)
async def patch_disposition(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    disposition_id = path_int(request, "disposition_id")
    body = await parse_body(request, DispositionPatch)

    async def work(uow: UnitOfWork) -> DispositionOut:
        row = await _disposition(uow.session, principal, disposition_id)
        if body.label is not None:
            row.label = body.label
        if body.active is not None:
            row.active = body.active
        if body.sort_order is not None:
            row.sort_order = body.sort_order
        _audit(uow.session, principal, request, "update", row)
        return _disp_out(row)

    return json_response(await hub.tx.run(work))


@api.route(
    "DELETE",
    "/api/v1/dispositions/{disposition_id}",
    access="canned.write",
    summary="Delete a disposition code (closed conversations keep theirs)",
    tag="canned",
    responses={204: None},
)
async def delete_disposition(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    disposition_id = path_int(request, "disposition_id")

    async def work(uow: UnitOfWork) -> None:
        row = await _disposition(uow.session, principal, disposition_id)
        _audit(uow.session, principal, request, "delete", row)
        await uow.session.delete(row)

    await hub.tx.run(work)
    return web.Response(status=204)


@api.route(
    "PUT",
    "/api/v1/queues/{name}/disposition-required",
    access="canned.write",
    summary="Whether closing a conversation of this queue needs a disposition code",
    tag="canned",
    body=RequiredIn,
    responses={200: QueueDispositions},
    path_params={"name": QUEUE_PARAM},
)
async def put_disposition_required(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    name = request.match_info["name"]
    body = await parse_body(request, RequiredIn)

    async def work(uow: UnitOfWork) -> QueueDispositions:
        s = uow.session
        queue = await s.scalar(select(Queue).where(Queue.name == name))
        if queue is None:
            raise NotFound(f"queue {name!r} not found")
        await canned.ensure_queue_manager(s, principal, name)
        # A new dict: the JSON column notices assignment, not mutation in place.
        queue.options = {**(queue.options or {}), canned.REQUIRED_OPTION: body.required}
        record(
            s,
            actor=principal.name,
            action="queue.disposition_required",
            target_type="queue",
            target_id=queue.id,
            details={"queue": name, "required": body.required},
            ip=_ip(request),
        )
        uow.emit(events.QueueUpdated(queue=name))
        team = await s.scalar(select(Team.name).where(Team.id == queue.team_id))
        return QueueDispositions(name=name, team=team, required=body.required)

    return json_response(await hub.tx.run(work))
