"""Data protection API: export everything about a customer, erase a customer (audited)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from contract.errors import InvalidInput
from hub.access import ensure_customer
from hub.customers import privacy
from hub.web import keys
from hub.web.api.openapi import Param, json_response, principal_of
from hub.web.api.routes import api, path_int

logger = logging.getLogger(__name__)
ZIP = ("application/zip",)


@api.route(
    "GET",
    "/api/v1/customers/{customer_id}/export",
    access="customers.privacy",
    summary="Everything stored about a customer: a ZIP of customer.json, conversations.json "
    "and the attachments (audited); ?format=json for the two documents without files",
    tag="customers",
    responses={200: privacy.ExportOut},
    query={"format": Param(description="zip (default) or json", schema={"enum": ["zip", "json"]})},
    also=ZIP,
)
async def export_customer(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    cid = path_int(request, "customer_id")
    fmt = request.query.get("format", "zip")
    if fmt not in ("zip", "json"):
        raise InvalidInput("format must be zip or json")

    async def read(s: AsyncSession) -> privacy.Export:
        await ensure_customer(s, principal, cid)
        return await privacy.export_customer(s, cid)

    export = await hub.tx.read(read)
    if fmt == "json":
        await privacy.record_export(hub.tx, cid, export, actor=principal.name, ip=_ip(request))
        return json_response(export.document)
    spool = await privacy.write_archive(hub.tx, export)
    try:
        await privacy.record_export(hub.tx, cid, export, actor=principal.name, ip=_ip(request))
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="customer-{cid}.zip"',
                "Cache-Control": "no-store",
            }
        )
        await response.prepare(request)
        while chunk := await asyncio.to_thread(spool.read, privacy.CHUNK):
            await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:
        # The client went away mid-download; the export is audited all the same.
        logger.info("export of customer %s: client disconnected", cid)
    finally:
        spool.close()
    return response


@api.route(
    "POST",
    "/api/v1/customers/{customer_id}/erase",
    access="customers.privacy",
    summary="Erase a customer's personal data (texts, files, addresses, profile, event "
    "fields); conversations stay counted in reports. 409 for a merged-away customer",
    tag="customers",
    responses={200: privacy.ErasedOut},
)
async def erase_customer(request: web.Request) -> web.Response:
    principal = principal_of(request)
    hub = request.app[keys.HUB]
    cid = path_int(request, "customer_id")

    await hub.tx.read(lambda s: ensure_customer(s, principal, cid))
    erased = await privacy.erase_customer(hub.tx, cid, actor=principal.name, ip=_ip(request))
    return json_response(erased)


def _ip(request: web.Request) -> str:
    return request.remote or ""
