"""Customer profiles, merge and unmerge (audited, reversible, conflict-aware), and link
requests: an agent's word that a caller is the customer holding an address."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from contract.errors import Conflict, InvalidInput, NotFound
from hub import events
from hub.audit import record
from hub.customers import identity
from hub.uow import Transactor, UnitOfWork
from storage.models import AuditEntry, Conversation, Customer, Endpoint, Message

PROFILE_FIELDS = ("display_name", "segment", "language", "tags", "attributes")
SEGMENTS = ("standard", "vip", "blocked")
# The longest address a caller can give: an email path is at most 254 octets (RFC 5321).
LINK_ADDRESS_MAX = 254


def typed_address(raw: object, region: str) -> identity.EndpointAddress:
    """An address an agent typed for a caller: an email address or a phone number (E.164,
    national spellings read in ``region``), never a short code or a free-form id."""
    refused = InvalidInput("give the caller's email address or phone number")
    if not isinstance(raw, str) or not raw.strip():
        raise refused
    if len(raw) > LINK_ADDRESS_MAX:
        raise InvalidInput(f"an address is at most {LINK_ADDRESS_MAX} characters")
    try:
        norm = identity.guess(raw, default_region=region)
    except InvalidInput:
        raise refused from None
    # ``normalize_phone`` keeps short codes and sender ids as typed: no person is linked by one.
    if norm.kind == "email" or (norm.kind == "phone" and norm.address.startswith("+")):
        return norm
    raise refused


def _conflicts(a: list[Endpoint], b: list[Endpoint]) -> list[str]:
    """Verified identifiers of the same kind that differ: a person must decide."""
    found = []
    for kind in ("phone", "email"):
        va = {e.address for e in a if e.kind == kind and e.verified}
        vb = {e.address for e in b if e.kind == kind and e.verified}
        if va and vb and not va & vb:
            found.append(f"different verified {kind}s: {sorted(va)} vs {sorted(vb)}")
    return found


async def merge_customers(
    uow: UnitOfWork,
    survivor: Customer,
    absorbed: Customer,
    *,
    actor: str,
    force: bool = False,
    reason: str = "",
) -> int | list[str]:
    """Move everything of ``absorbed`` to ``survivor`` inside ``uow``: the audit entry's id,
    or the conflicting verified identifiers (nothing moved) unless ``force``."""
    s = uow.session
    eps_a = list(
        (await s.scalars(select(Endpoint).where(Endpoint.customer_id == survivor.id))).all()
    )
    eps_b = list(
        (await s.scalars(select(Endpoint).where(Endpoint.customer_id == absorbed.id))).all()
    )
    conflicts = _conflicts(eps_a, eps_b)
    if conflicts and not force:
        return conflicts
    conv_ids = list(
        (
            await s.scalars(select(Conversation.id).where(Conversation.customer_id == absorbed.id))
        ).all()
    )
    msg_ids = list(
        (await s.scalars(select(Message.id).where(Message.customer_id == absorbed.id))).all()
    )
    before = {
        "tags": list(survivor.tags),
        "attributes": dict(survivor.attributes),
        "display_name": survivor.display_name,
        "segment": survivor.segment,
        "language": survivor.language,
        "flags": list(survivor.flags),
    }
    await s.execute(
        update(Endpoint).where(Endpoint.customer_id == absorbed.id).values(customer_id=survivor.id)
    )
    await s.execute(
        update(Conversation)
        .where(Conversation.customer_id == absorbed.id)
        .values(customer_id=survivor.id)
    )
    await s.execute(
        update(Message).where(Message.customer_id == absorbed.id).values(customer_id=survivor.id)
    )
    survivor.tags = sorted(set(survivor.tags) | set(absorbed.tags))
    survivor.attributes = {**absorbed.attributes, **survivor.attributes}
    survivor.display_name = survivor.display_name or absorbed.display_name
    survivor.language = survivor.language or absorbed.language
    if absorbed.segment == "vip":
        survivor.segment = "vip"
    # Open questions about either customer stay for a person to answer, except those that
    # asked whether these two are one: the merge is that answer.
    flags: list[dict[str, Any]] = []
    for flag in [*survivor.flags, *absorbed.flags]:
        if flag.get("other_customer_id") not in (survivor.id, absorbed.id) and flag not in flags:
            flags.append(flag)
    survivor.flags = flags
    absorbed.merged_into_id = survivor.id
    audit = record(
        uow,
        actor=actor,
        action="customer.merge",
        target_type="customer",
        target_id=survivor.id,
        details={
            "absorbed_id": absorbed.id,
            "endpoint_ids": [e.id for e in eps_b],
            "conversation_ids": conv_ids,
            "message_ids": msg_ids,
            "survivor_before": before,
            "forced": bool(conflicts),
            "reason": reason,
        },
    )
    await s.flush()
    uow.emit(
        events.CustomerMerged(
            customer_id=survivor.id, absorbed_id=absorbed.id, actor=actor, audit_id=audit.id
        )
    )
    return audit.id


class CustomerService:
    """Profile edits, link requests and identity merges."""

    def __init__(self, tx: Transactor) -> None:
        self.tx = tx

    async def update_profile(
        self, customer_id: int, changes: dict[str, Any], *, actor: str
    ) -> None:
        unknown = set(changes) - set(PROFILE_FIELDS)
        if unknown:
            raise InvalidInput(f"unknown profile fields: {', '.join(sorted(unknown))}")
        if "segment" in changes and changes["segment"] not in SEGMENTS:
            raise InvalidInput(f"segment must be one of {', '.join(SEGMENTS)}")
        if "tags" in changes and not (
            isinstance(changes["tags"], list) and all(isinstance(t, str) for t in changes["tags"])
        ):
            raise InvalidInput("tags must be a list of strings")
        if "attributes" in changes and not isinstance(changes["attributes"], dict):
            raise InvalidInput("attributes must be an object")

        async def work(uow: UnitOfWork) -> None:
            customer = await uow.session.get(Customer, customer_id)
            if customer is None:
                raise NotFound(f"customer {customer_id} not found")
            clean: dict[str, Any] = {}
            for key, value in changes.items():
                if key == "tags":
                    value = sorted({t.strip()[:50] for t in value if t.strip()})
                elif key in ("display_name", "language"):
                    value = str(value).strip()[: 200 if key == "display_name" else 10]
                setattr(customer, key, value)
                clean[key] = value
            uow.emit(events.CustomerUpdated(customer_id=customer.id, actor=actor, changes=clean))

        await self.tx.run(work)

    async def link_request(
        self, customer_id: int, address: str, *, actor: str, region: str
    ) -> dict[str, str]:
        """``actor`` says this customer (an unknown caller) is whoever holds ``address``.

        The address of nobody becomes this customer's, unverified (``added``); the address
        of another customer is flagged here for a supervisor to merge (``pending_review``):
        an agent's word is no verified identifier, and the answer names no other customer.
        """
        norm = typed_address(address, region)

        async def work(uow: UnitOfWork) -> str:
            s = uow.session
            # Locked: two requests at once must not write over each other's flag.
            customer = await s.get(Customer, customer_id, with_for_update=True)
            if customer is None:
                raise NotFound(f"customer {customer_id} not found")
            if customer.merged_into_id is not None:
                raise Conflict("this customer was merged into another")
            owner_id = await s.scalar(
                select(Endpoint.customer_id).where(
                    Endpoint.kind == norm.kind, Endpoint.address == norm.address
                )
            )
            if owner_id == customer.id:
                return "already"
            details: dict[str, Any] = {"endpoint": f"{norm.kind}:{norm.address}"}
            if owner_id is None:
                s.add(
                    Endpoint(
                        customer_id=customer.id,
                        kind=norm.kind,
                        address=norm.address,
                        verified=False,
                    )
                )
                # A caller racing us to the address fails the flush; the unit of work is then
                # retried and finds it taken.
                await s.flush()
                uow.emit(
                    events.CustomerEndpointAdded(
                        customer_id=customer.id, endpoint=details["endpoint"], verified=False
                    )
                )
                outcome = "added"
            else:
                asked = any(
                    f.get("kind") == "link_request"
                    and f.get("endpoint_kind") == norm.kind
                    and f.get("address") == norm.address
                    and f.get("other_customer_id") == owner_id
                    for f in customer.flags
                )
                if asked:
                    return "pending_review"
                flag: dict[str, Any] = {
                    "kind": "link_request",
                    "address": norm.address,
                    "endpoint_kind": norm.kind,
                    "other_customer_id": owner_id,
                    "by": actor,
                    "reason": f"{actor} says the caller is the customer with this address",
                }
                customer.flags = [*customer.flags, flag]
                uow.emit(events.CustomerConflict(customer_id=customer.id, flag=flag))
                details["other_customer_id"] = owner_id
                outcome = "pending_review"
            record(
                uow,
                actor=actor,
                action="customer.link",
                target_type="customer",
                target_id=customer.id,
                details={**details, "outcome": outcome},
            )
            return outcome

        return {"status": await self.tx.run(work)}

    async def merge(
        self, survivor_id: int, absorbed_id: int, *, actor: str, force: bool = False
    ) -> int:
        """Move everything of ``absorbed`` to ``survivor``; returns the audit entry id."""
        if survivor_id == absorbed_id:
            raise InvalidInput("cannot merge a customer into itself")

        async def work(uow: UnitOfWork) -> int:
            s = uow.session
            survivor = await s.get(Customer, survivor_id)
            absorbed = await s.get(Customer, absorbed_id)
            if survivor is None or absorbed is None:
                raise NotFound("both customers must exist")
            if survivor.merged_into_id or absorbed.merged_into_id:
                raise Conflict("one of the customers was already merged")
            merged = await merge_customers(uow, survivor, absorbed, actor=actor, force=force)
            return -1 if isinstance(merged, list) else merged

        audit_id = await self.tx.run(work)
        if audit_id == -1:
            conflicts = await self._flag_conflict(survivor_id, absorbed_id)
            raise Conflict("not merged: " + "; ".join(conflicts) + " (merge with force)")
        return audit_id

    async def _flag_conflict(self, a_id: int, b_id: int) -> list[str]:
        """Record a refused merge on both customers, for a person to decide."""

        async def work(uow: UnitOfWork) -> list[str]:
            s = uow.session
            a = await s.get_one(Customer, a_id)
            b = await s.get_one(Customer, b_id)
            eps = {
                c.id: list(
                    (await s.scalars(select(Endpoint).where(Endpoint.customer_id == c.id))).all()
                )
                for c in (a, b)
            }
            conflicts = _conflicts(eps[a.id], eps[b.id])
            for c, other in ((a, b), (b, a)):
                flag = {
                    "reason": "merge conflict",
                    "other_customer_id": other.id,
                    "detail": "; ".join(conflicts),
                }
                if flag not in c.flags:
                    c.flags = [*c.flags, flag]
            uow.emit(
                events.CustomerConflict(customer_id=a.id, other_customer_id=b.id, detail=conflicts)
            )
            return conflicts

        return await self.tx.run(work)

    async def unmerge(self, audit_id: int, *, actor: str) -> int:
        """Undo a merge exactly: endpoints, conversations, messages and profile come back."""

        async def work(uow: UnitOfWork) -> int:
            s = uow.session
            audit = await s.get(AuditEntry, audit_id)
            if audit is None or audit.action != "customer.merge":
                raise NotFound(f"merge {audit_id} not found")
            if audit.details.get("undone"):
                raise Conflict("this merge was already undone")
            d = audit.details
            survivor = await s.get_one(Customer, audit.target_id)
            absorbed = await s.get_one(Customer, d["absorbed_id"])
            if d["endpoint_ids"]:
                await s.execute(
                    update(Endpoint)
                    .where(Endpoint.id.in_(d["endpoint_ids"]))
                    .values(customer_id=absorbed.id)
                )
            if d["conversation_ids"]:
                await s.execute(
                    update(Conversation)
                    .where(Conversation.id.in_(d["conversation_ids"]))
                    .values(customer_id=absorbed.id)
                )
            if d["message_ids"]:
                await s.execute(
                    update(Message)
                    .where(Message.id.in_(d["message_ids"]))
                    .values(customer_id=absorbed.id)
                )
            if d["conversation_ids"]:
                # Messages that arrived in those conversations since the merge go back with
                # them (the contact that proved the identity arrived in the merging batch).
                await s.execute(
                    update(Message)
                    .where(Message.conversation_id.in_(d["conversation_ids"]))
                    .values(customer_id=absorbed.id)
                )
            for key, value in d["survivor_before"].items():
                setattr(survivor, key, value)
            absorbed.merged_into_id = None
            audit.details = {**d, "undone": True}
            record(
                uow,
                actor=actor,
                action="customer.unmerge",
                target_type="customer",
                target_id=survivor.id,
                details={"merge_audit_id": audit.id, "restored_id": absorbed.id},
            )
            uow.emit(
                events.CustomerUnmerged(
                    customer_id=survivor.id, restored_id=absorbed.id, actor=actor, audit_id=audit.id
                )
            )
            return survivor.id

        return await self.tx.run(work)
