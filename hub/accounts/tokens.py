"""Integration API tokens: named, scoped, stored hashed, shown once, revocable."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contract.errors import Conflict, InvalidInput, NotFound
from hub.accounts.principal import Principal, token_hash
from hub.audit import record
from hub.uow import Transactor, UnitOfWork
from storage.models import ApiToken, utcnow

TOKEN_PREFIX = "hub_"  # noqa: S105 - a prefix, recognisable in a leaked config or by a secret scanner
SCOPES = ("inbound", "read", "reports", "admin")
# last_used_at is written at most this often per token (a busy integration calls many times
# a second; the time is for "is this token still used?", not for auditing each call).
LAST_USED_EVERY_S = 60.0


class Tokens:
    """Create, list, revoke and resolve integration tokens."""

    def __init__(self, tx: Transactor) -> None:
        self.tx = tx
        self._touched: dict[int, float] = {}

    async def create(
        self, *, name: str, scopes: Sequence[str], created_by: str, ip: str = ""
    ) -> tuple[int, str]:
        """A new token's id and its secret (returned this once; only its hash is stored);
        audited as ``token.create`` by ``created_by`` from ``ip``."""
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInput("name must be 1-100 characters")
        wanted = sorted(set(scopes))
        unknown = [s for s in wanted if s not in SCOPES]
        if not wanted or unknown:
            raise InvalidInput(f"scopes must be some of {', '.join(SCOPES)}")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)

        async def work(uow: UnitOfWork) -> int:
            if await uow.session.scalar(select(ApiToken.id).where(ApiToken.name == name)):
                raise Conflict(f"a token named {name!r} exists")
            row = ApiToken(
                name=name, token_hash=token_hash(secret), scopes=wanted, created_by=created_by
            )
            uow.session.add(row)
            await uow.session.flush()
            record(
                uow,
                actor=created_by,
                action="token.create",
                target_type="token",
                target_id=row.id,
                details={"name": name, "scopes": wanted},
                ip=ip,
            )
            return row.id

        return await self.tx.run(work), secret

    async def revoke(self, token_id: int, *, actor: str, ip: str = "") -> ApiToken:
        """Revoke a token (its next call gets 401); revoking twice is harmless and audited
        once, as ``token.revoke`` by ``actor`` from ``ip``."""

        async def work(uow: UnitOfWork) -> ApiToken:
            row = await uow.session.get(ApiToken, token_id)
            if row is None:
                raise NotFound(f"token {token_id} not found")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                record(
                    uow,
                    actor=actor,
                    action="token.revoke",
                    target_type="token",
                    target_id=row.id,
                    details={"name": row.name},
                    ip=ip,
                )
            return row

        row = await self.tx.run(work)
        self._touched.pop(token_id, None)
        return row

    async def list(self) -> list[ApiToken]:
        async def work(s: AsyncSession) -> list[ApiToken]:
            return list((await s.scalars(select(ApiToken).order_by(ApiToken.id))).all())

        return await self.tx.read(work)

    async def principal_for(self, secret: str) -> Principal | None:
        """The token's principal, or None when unknown or revoked."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        hashed = token_hash(secret)

        async def find(s: AsyncSession) -> ApiToken | None:
            return await s.scalar(
                select(ApiToken).where(ApiToken.token_hash == hashed, ApiToken.revoked_at.is_(None))
            )

        row = await self.tx.read(find)
        if row is None:
            return None
        now = time.monotonic()
        if now - self._touched.get(row.id, float("-inf")) >= LAST_USED_EVERY_S:
            self._touched[row.id] = now

            async def touch(uow: UnitOfWork) -> None:
                await uow.session.execute(
                    update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=utcnow())
                )

            await self.tx.run(touch)
        return Principal(
            role="token",
            name=f"token:{row.name}",
            display_name=row.name,
            scopes=frozenset(row.scopes),
            token_id=row.id,
        )
