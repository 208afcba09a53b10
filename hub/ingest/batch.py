"""One ingest batch's working set: what its contacts look up, and what each one staged."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from contract.channel import InboundMessage, IngestResult
from contract.errors import InvalidInput
from hub.customers import identity
from hub.ingest.fast import KNOWN, lock_senders
from storage.models import Conversation, Customer, Endpoint, Message

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Staged:
    """An ingested contact whose message row may not be flushed yet."""

    customer_id: int | None
    conversation_id: int | None
    row: Message | None = None
    finished: IngestResult | None = None
    opened: bool = False
    duplicate: bool = False

    @classmethod
    def done(cls, result: IngestResult) -> Staged:
        return cls(
            customer_id=result.customer_id, conversation_id=result.conversation_id, finished=result
        )

    def as_duplicate(self) -> Staged:
        """The same provider id again within one batch."""
        return Staged(
            customer_id=self.customer_id,
            conversation_id=self.conversation_id,
            row=self.row,
            finished=self.finished,
            duplicate=True,
        )

    def result(self) -> IngestResult:
        """The outcome, once the transaction committed (ids assigned)."""
        if self.finished is not None:
            return self.finished
        assert self.row is not None
        return IngestResult(
            customer_id=self.customer_id,
            conversation_id=self.conversation_id,
            message_id=self.row.id,
            duplicate=self.duplicate,
            opened=self.opened,
        )


# Built once: a prepared statement's cache key is computed on first use and kept, where a
# statement built per batch pays for construction and key generation every time.

# Endpoints with their customer and, per (channel, our address), their newest conversation.
# The newest ids come from an uncorrelated derived table over the same addresses: a
# subquery correlated inside the join condition made PostgreSQL scan every conversation.
_asked = (Endpoint.kind == bindparam("kind")) & Endpoint.address.in_(
    bindparam("addresses", expanding=True)
)
_older = aliased(Conversation)
_asked_endpoint = aliased(Endpoint)
_newest = (
    select(func.max(_older.id).label("id"), _older.endpoint_id)
    .join(_asked_endpoint, _asked_endpoint.id == _older.endpoint_id)
    .where(
        _asked_endpoint.kind == bindparam("kind"),
        _asked_endpoint.address.in_(bindparam("addresses", expanding=True)),
    )
    .group_by(_older.endpoint_id, _older.channel, _older.our_address)
    .subquery()
)
_ENDPOINTS = (
    select(Endpoint, Customer, Conversation)
    .join(Customer, Customer.id == Endpoint.customer_id)
    .outerjoin(_newest, _newest.c.endpoint_id == Endpoint.id)
    .outerjoin(Conversation, Conversation.id == _newest.c.id)
    .where(_asked)
)


@dataclass(slots=True, kw_only=True)
class BatchView:
    """What a batch's contacts look up, read with two queries instead of three per contact.

    ``endpoints`` and ``latest`` are authoritative for the addresses and endpoints they
    hold: the ingest records every endpoint and conversation it creates in them, so a
    later contact of the same batch finds what an earlier one made.
    """

    staged: dict[tuple[str, str], Staged]
    known: dict[tuple[str, str], IngestResult]  # stored before this batch: duplicates
    endpoints: dict[tuple[str, str], tuple[Endpoint, Customer]]
    # endpoint id -> the latest conversation per (channel, our address)
    latest: dict[int, list[Conversation]]

    @classmethod
    async def load(
        cls,
        s: AsyncSession,
        contacts: list[tuple[InboundMessage, identity.EndpointAddress]],
        region: str,
    ) -> BatchView:
        view = cls(staged={}, known={}, endpoints={}, latest={})
        ids_by_channel: dict[str, list[str]] = {}
        by_kind: dict[str, set[str]] = {}
        for msg, address in contacts:
            ids_by_channel.setdefault(msg.channel, []).append(msg.provider_id)
            by_kind.setdefault(address.kind, set()).add(address.address)
            for norm in verified_identifiers(msg, region):
                by_kind.setdefault(norm.kind, set()).add(norm.address)
        conn = await s.connection()  # a plain Core read: no ORM objects needed
        await lock_senders(conn, contacts)
        for channel, ids in ids_by_channel.items():
            for row in await conn.execute(KNOWN, {"channel": channel, "ids": ids}):
                view.known[(channel, row.provider_id)] = IngestResult(
                    customer_id=row.customer_id,
                    conversation_id=row.conversation_id,
                    message_id=row.id,
                    duplicate=True,
                )
        for kind, addresses in by_kind.items():
            found = await s.execute(_ENDPOINTS, {"kind": kind, "addresses": list(addresses)})
            for endpoint, customer, conversation in found:
                view.endpoints[(endpoint.kind, endpoint.address)] = (endpoint, customer)
                newest = view.latest.setdefault(endpoint.id, [])
                if conversation is not None:
                    newest.append(conversation)
        return view

    def add_endpoint(self, endpoint: Endpoint, customer: Customer) -> None:
        self.endpoints[(endpoint.kind, endpoint.address)] = (endpoint, customer)

    def repoint(self, absorbed: Customer, survivor: Customer) -> None:
        """After a merge inside the batch, later contacts find the survivor."""
        for key, (endpoint, customer) in list(self.endpoints.items()):
            if customer.id == absorbed.id:
                self.endpoints[key] = (endpoint, survivor)

    def latest_conversation(
        self, endpoint_id: int, channel: str, our_address: str | None
    ) -> Conversation | None:
        """The newest conversation of an endpoint on a channel (and our address, if given)."""
        matches = [
            c
            for c in self.latest[endpoint_id]
            if c.channel == channel and (our_address is None or c.our_address == our_address)
        ]
        return max(matches, key=lambda c: c.id, default=None)


def verified_identifiers(msg: InboundMessage, region: str) -> list[identity.EndpointAddress]:
    out = []
    for ident in msg.identifiers:
        if not ident.verified:
            continue
        try:
            out.append(identity.normalize(ident.kind, ident.address, default_region=region))
        except InvalidInput:
            logger.info("ignored unusable %s identifier", ident.kind)
    return out
