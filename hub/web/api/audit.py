"""The audit log, read-only: who did what, when, from where (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.web import keys
from hub.web.api.openapi import Param, json_response
from hub.web.api.routes import api, as_int, limit_param
from hub.web.api.schemas import MAX_ID, Model
from storage.models import AuditEntry


class AuditOut(Model):
    id: int
    actor: str
    action: str
    target_type: str
    target_id: int | None
    details: dict[str, Any]
    ip: str
    created_at: datetime


class AuditPage(Model):
    items: list[AuditOut]
    next: int | None = Field(description="pass as before= for the next (older) page")


@api.route(
    "GET",
    "/api/v1/audit",
    access="audit.read",
    summary="The audit log, newest first: logins, merges, exports, erasures, tokens, accounts",
    tag="operations",
    responses={200: AuditPage},
    query={
        "actor": "exact actor (username, token:<name>, admin-token)",
        "action": "exact action, e.g. login.failed, customer.merge, token.revoke",
        "target_type": "customer, agent, token, ...",
        "target_id": Param(
            description="row id", schema={"type": "integer", "minimum": 1, "maximum": MAX_ID}
        ),
        "before": Param(
            description="entries older than this id",
            schema={"type": "integer", "minimum": 1, "maximum": MAX_ID},
        ),
        "limit": limit_param(50, 500),
    },
)
async def list_audit(request: web.Request) -> web.Response:
    q = request.query
    limit = as_int(q.get("limit", "50"), "limit", least=1, most=500)
    query = select(AuditEntry)
    for name in ("actor", "action", "target_type"):
        if q.get(name):
            query = query.where(getattr(AuditEntry, name) == q[name][:100])
    if q.get("target_id"):
        query = query.where(
            AuditEntry.target_id == as_int(q["target_id"], "target_id", least=1, most=MAX_ID)
        )
    if q.get("before"):
        query = query.where(AuditEntry.id < as_int(q["before"], "before", least=1, most=MAX_ID))

    async def work(s: AsyncSession) -> AuditPage:
        rows = (await s.scalars(query.order_by(AuditEntry.id.desc()).limit(limit + 1))).all()
        items = [
            AuditOut(
                id=r.id,
                actor=r.actor,
                action=r.action,
                target_type=r.target_type,
                target_id=r.target_id,
                details=dict(r.details),
                ip=r.ip,
                created_at=r.created_at,
            )
            for r in rows[:limit]
        ]
        return AuditPage(items=items, next=items[-1].id if len(rows) > limit else None)

    return json_response(await request.app[keys.HUB].tx.read(work))
