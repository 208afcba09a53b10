"""``POST /api/v1/inbound``: the API channel's entry point, part of the hub's REST API.

The API channel has no provider to verify: its callers are integrations holding a token
with the ``inbound`` scope, so its one route lives with the rest of the REST API (its
OpenAPI description, authorization and error handling), while ``channels/api/`` keeps the
channel's facts and its outbound side.
"""

from __future__ import annotations

from aiohttp import web

from contract.channel import InboundMessage
from contract.errors import InvalidInput
from hub.customers.identity import guess
from hub.web import keys
from hub.web.api.openapi import json_response, parse_body
from hub.web.api.routes import api
from hub.web.api.schemas import InboundIn, InboundOut

CHANNEL = "api"


@api.route(
    "POST",
    "/api/v1/inbound",
    summary="Post a customer contact through the generic API channel (idempotent on "
    "external_id: a repeat answers 200 with the same ids)",
    tag="channels",
    body=InboundIn,
    responses={201: InboundOut, 200: InboundOut},
    # Integration tokens only: a logged-in person never posts as a customer.
    access="inbound",
)
async def inbound(request: web.Request) -> web.Response:
    hub = request.app[keys.HUB]
    body = await parse_body(request, InboundIn)
    endpoint = guess(body.from_, default_region=hub.settings.default_phone_region)
    result = await hub.ingest(
        InboundMessage(
            channel=CHANNEL,
            sender_kind=endpoint.kind,
            sender=endpoint.address,
            provider_id=body.external_id,
            text=body.text,
            display_name=body.name,
        )
    )
    if result.customer_id is None or result.conversation_id is None or result.message_id is None:
        raise InvalidInput("the contact was not stored")
    out = InboundOut(
        customer_id=result.customer_id,
        conversation_id=result.conversation_id,
        message_id=result.message_id,
    )
    return json_response(out, status=200 if result.duplicate else 201)
