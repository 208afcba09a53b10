"""``POST /api/v1/inbound``: the API channel's entry point."""

from __future__ import annotations

from aiohttp import web

from contract.channel import HubPort, InboundMessage
from contract.errors import InvalidInput
from hub.customers.identity import guess
from hub.web.api.openapi import Operation, guard, json_response, parse_body
from hub.web.api.routes import api
from hub.web.api.schemas import InboundIn, InboundOut

CHANNEL = "api"


def make_handler(hub: HubPort, default_region: str) -> web.RouteDef:
    """The inbound route bound to the hub port."""

    async def inbound(request: web.Request) -> web.Response:
        body = await parse_body(request, InboundIn)
        endpoint = guess(body.from_, default_region=default_region)
        result = await hub.ingest(
            InboundMessage(
                channel=CHANNEL,
                sender_kind=endpoint.kind,  # type: ignore[arg-type]
                sender=endpoint.address,
                provider_id=body.external_id,
                text=body.text,
                display_name=body.name,
            )
        )
        if result.customer_id is None or result.conversation_id is None:
            raise InvalidInput("the contact was not stored")
        if result.message_id is None:
            raise InvalidInput("the contact was not stored")
        out = InboundOut(
            customer_id=result.customer_id,
            conversation_id=result.conversation_id,
            message_id=result.message_id,
        )
        return json_response(out, status=200 if result.duplicate else 201)

    return web.post("/api/v1/inbound", guard(INBOUND, inbound))


INBOUND = Operation(
    method="POST",
    path="/api/v1/inbound",
    operation_id="inbound",
    handler=None,
    summary="Post a customer contact through the generic API channel (idempotent on "
    "external_id: a repeat answers 200 with the same ids)",
    tag="channels",
    body=InboundIn,
    responses={201: InboundOut, 200: InboundOut},
    # Integration tokens only: a logged-in person never posts as a customer.
    access="inbound",
)
api.describe(INBOUND)
