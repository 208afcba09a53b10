"""Who a request or a console acts for: a person's session or an integration token."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """An authenticated caller: a logged-in person (``agent_id``) or an integration token
    (``is_token``: the bootstrap ``HUB_API_TOKEN`` or a named, scoped one)."""

    role: str  # admin / supervisor / agent; "token" for integration tokens
    agent_id: int | None = None
    name: str = "admin-token"
    display_name: str = "Admin token"
    team_ids: frozenset[int] = frozenset()
    scopes: frozenset[str] = frozenset()
    token_id: int | None = None  # a named token's row; None for HUB_API_TOKEN
    session_hash: str | None = None  # the login session a person's request rides on

    @property
    def is_token(self) -> bool:
        return self.agent_id is None


BOOTSTRAP = Principal(role="admin", scopes=frozenset({"admin"}))


def token_hash(token: str) -> str:
    """Sessions are stored by hash, so a leaked table does not leak live cookies."""
    return hashlib.sha256(token.encode()).hexdigest()
