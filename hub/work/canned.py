"""Canned responses and dispositions: who sees and manages which, placeholder expansion,
search for the composer, and the rule that a queue may require a disposition to close."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from contract.errors import Forbidden, InvalidInput, NotFound
from hub.access import sees_everything
from hub.accounts.principal import Principal
from storage.models import Agent, CannedResponse, Conversation, Customer, Disposition, Queue

# The per-queue flag lives with the queue's other settings (``Queue.options``).
REQUIRED_OPTION = "disposition_required"
# Only ``{word}`` or ``{word.word}`` of lower-case letters and underscores is a placeholder;
# it is looked up in a fixed table, never evaluated (no str.format, no attribute access), so
# ``{customer.__class__}`` or ``{0.__init__}`` stay exactly as typed.
PLACEHOLDER = re.compile(r"\{([a-z_]+(?:\.[a-z_]+)?)\}")
PLACEHOLDERS = ("customer.first_name", "customer.name", "agent.name", "conversation.id")
# The names the console used before canned responses were data.
LEGACY = {"customer_name": "customer.name", "agent_name": "agent.name"}
SEARCH_LIMIT = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Placeholders:
    """The values a canned text may name, for one conversation and agent."""

    customer_name: str = ""
    customer_first_name: str = ""
    agent_name: str = ""
    conversation_id: int | None = None

    def table(self) -> dict[str, str]:
        values = {
            "customer.first_name": self.customer_first_name,
            "customer.name": self.customer_name,
            "agent.name": self.agent_name,
            "conversation.id": "" if self.conversation_id is None else str(self.conversation_id),
        }
        return values | {old: values[new] for old, new in LEGACY.items()}


def first_name(customer: Customer | None) -> str:
    """A customer's first name: ``attributes.first_name`` if set, else the first word of the
    display name (a name that is only a phone number or address gives nothing)."""
    if customer is None:
        return ""
    given = customer.attributes.get("first_name") if customer.attributes else None
    if isinstance(given, str) and given.strip():
        return given.strip()
    words = customer.display_name.split()
    if not words or any(ch.isdigit() or ch == "@" for ch in words[0]):
        return ""
    return words[0]


def expand(text: str, values: Mapping[str, str]) -> str:
    """Fill known placeholders; anything else in braces is left as typed."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


async def placeholders_for(
    s: AsyncSession, principal: Principal, conversation_id: int | None
) -> Placeholders:
    """The placeholder values of a conversation (already checked visible) for this caller."""
    agent_name = principal.display_name
    if principal.agent_id is not None:
        agent = await s.get(Agent, principal.agent_id)
        if agent is not None:
            agent_name = agent.display_name
    if conversation_id is None:
        return Placeholders(agent_name=agent_name)
    conv = await s.get(Conversation, conversation_id)
    customer = await s.get(Customer, conv.customer_id) if conv is not None else None
    return Placeholders(
        customer_name=customer.display_name if customer is not None else "",
        customer_first_name=first_name(customer),
        agent_name=agent_name,
        conversation_id=conversation_id,
    )


# ------------------------------------------------------------------ who sees and manages


def _manages_everything(principal: Principal) -> bool:
    # Admins, admin tokens and a supervisor of no team (the floor supervisor of a small
    # center, as in hub.access) manage all-team texts and all-queue codes.
    return sees_everything(principal)


def canned_filter(principal: Principal) -> ColumnElement[bool] | None:
    """SQL condition on ``CannedResponse``: all-team ones and the caller's team's."""
    if sees_everything(principal):
        return None
    teams = list(principal.team_ids)
    if not teams:
        return CannedResponse.team_id.is_(None)
    return or_(CannedResponse.team_id.is_(None), CannedResponse.team_id.in_(teams))


def ensure_team_manager(principal: Principal, team_id: int | None) -> None:
    """Forbidden unless the caller manages canned responses of ``team_id`` (None: all teams)."""
    if _manages_everything(principal):
        return
    if team_id is None or team_id not in principal.team_ids:
        raise Forbidden("supervisors manage their own team's canned responses only")


async def get_canned(s: AsyncSession, principal: Principal, canned_id: int) -> CannedResponse:
    """A canned response the caller may see; NotFound otherwise (no hint it exists)."""
    query = select(CannedResponse).where(CannedResponse.id == canned_id)
    visible = canned_filter(principal)
    if visible is not None:
        query = query.where(visible)
    row = await s.scalar(query)
    if row is None:
        raise NotFound(f"canned response {canned_id} not found")
    return row


async def list_canned(
    s: AsyncSession, principal: Principal, *, team_id: int | None = None
) -> Sequence[CannedResponse]:
    """Everything the caller may see, optionally one team's, by shortcut."""
    query = select(CannedResponse).order_by(CannedResponse.shortcut, CannedResponse.id)
    visible = canned_filter(principal)
    if visible is not None:
        query = query.where(visible)
    if team_id is not None:
        query = query.where(CannedResponse.team_id == team_id)
    return (await s.scalars(query)).all()


async def search(
    s: AsyncSession,
    principal: Principal,
    query: str,
    *,
    languages: Sequence[str] = (),
    limit: int = SEARCH_LIMIT,
) -> list[CannedResponse]:
    """Canned responses whose shortcut, title or text contains ``query`` (case-insensitive),
    for the composer's ``/`` list: the preferred languages first (in order), then any-language
    ones, then the rest; within that shortcut prefix matches first, then by shortcut."""
    needle = query.strip().lower()
    stmt = select(CannedResponse)
    visible = canned_filter(principal)
    if visible is not None:
        stmt = stmt.where(visible)
    if needle:
        stmt = stmt.where(
            or_(
                func.lower(CannedResponse.shortcut).contains(needle, autoescape=True),
                func.lower(CannedResponse.title).contains(needle, autoescape=True),
                func.lower(CannedResponse.text).contains(needle, autoescape=True),
            )
        )
    rows = (await s.scalars(stmt.order_by(CannedResponse.shortcut).limit(500))).all()
    prefs = [lang.lower() for lang in languages if lang]

    def rank(row: CannedResponse) -> tuple[int, int, str, int]:
        lang = row.language.lower()
        by_lang = prefs.index(lang) if lang in prefs else len(prefs) + (0 if not lang else 1)
        prefix = 0 if needle and row.shortcut.lower().startswith(needle) else 1
        return (by_lang, prefix, row.shortcut.lower(), row.id)

    return sorted(rows, key=rank)[:limit]


async def search_languages(
    s: AsyncSession, principal: Principal, conversation_id: int | None
) -> list[str]:
    """The languages to prefer: the conversation's customer's, then the agent's own."""
    out: list[str] = []
    if conversation_id is not None:
        lang = await s.scalar(
            select(Customer.language)
            .join(Conversation, Conversation.customer_id == Customer.id)
            .where(Conversation.id == conversation_id)
        )
        if lang:
            out.append(lang)
    if principal.agent_id is not None:
        lang = await s.scalar(select(Agent.language).where(Agent.id == principal.agent_id))
        if lang and lang not in out:
            out.append(lang)
    return out


# ------------------------------------------------------------------ dispositions


async def queue_team(s: AsyncSession, queue: str) -> int | None:
    """The team of a queue; NotFound for an unknown queue name."""
    row = (await s.execute(select(Queue.id, Queue.team_id).where(Queue.name == queue))).first()
    if row is None:
        raise NotFound(f"queue {queue!r} not found")
    team_id: int | None = row[1]
    return team_id


async def ensure_queue_manager(s: AsyncSession, principal: Principal, queue: str) -> None:
    """Forbidden unless the caller manages the dispositions of ``queue`` ('' : all queues)."""
    if queue:
        team_id = await queue_team(s, queue)
    else:
        team_id = None
    if _manages_everything(principal):
        return
    if team_id is None or team_id not in principal.team_ids:
        raise Forbidden("supervisors manage their own team's queues only")


async def dispositions_for(
    s: AsyncSession, queue: str, *, include_inactive: bool = False
) -> list[Disposition]:
    """A queue's codes: its own and the all-queue ones (its own win on the same code)."""
    stmt = select(Disposition).where(Disposition.queue.in_({queue, ""}))
    if not include_inactive:
        stmt = stmt.where(Disposition.active.is_(True))
    rows = (await s.scalars(stmt)).all()
    by_code: dict[str, Disposition] = {}
    for row in sorted(rows, key=lambda r: r.queue != ""):
        by_code.setdefault(row.code, row)
    return sorted(by_code.values(), key=lambda r: (r.sort_order, r.code))


async def disposition_required(s: AsyncSession, queue: str) -> bool:
    """Whether closing a conversation of ``queue`` needs a disposition code."""
    if not queue:
        return False
    options = await s.scalar(select(Queue.options).where(Queue.name == queue))
    return bool(options and options.get(REQUIRED_OPTION))


async def check_close(s: AsyncSession, queue: str, disposition: str) -> None:
    """InvalidInput when the queue requires a disposition and ``disposition`` is not one of
    its active codes; queues that do not require one accept any code (or none)."""
    if not await disposition_required(s, queue):
        return
    codes = {row.code for row in await dispositions_for(s, queue)}
    if not disposition.strip():
        raise InvalidInput(f"queue {queue!r} requires a disposition to close")
    if disposition not in codes:
        raise InvalidInput(f"{disposition!r} is not a disposition of queue {queue!r}")
