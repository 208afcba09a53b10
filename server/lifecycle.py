"""One ``cleanup_ctx`` context per resource: create, store, yield, close."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from sqlalchemy import select, text

from contract.errors import ConfigError
from hub.ingest.media import MediaWorker
from hub.outbox.delivery import OutboxSender
from hub.web import keys
from storage.models import Agent

logger = logging.getLogger(__name__)


class HttpClientHolder:
    """The shared outbound ClientSession, created inside the running loop."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=30, connect=5),
                headers={"User-Agent": "interaction-hub"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """Check the schema is migrated, start the stream at the committed head, dispose at exit."""
    hub = app[keys.HUB]
    try:
        async with hub.engine.connect() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except Exception as err:
        await hub.dispose()
        raise ConfigError(
            f"database at HUB_DATABASE_URL is not migrated or not reachable ({type(err).__name__}):"
            " run `hub migrate`"
        ) from None
    if not app[keys.SETTINGS].demo:
        await _refuse_demo_accounts(app)
    logger.info("database schema at revision %s", version)
    await hub.start()
    yield
    await hub.stream.close()
    await hub.dispose()


async def _refuse_demo_accounts(app: web.Application) -> None:
    """Fail closed: logins with the published demo password must not serve real traffic."""
    hub = app[keys.HUB]
    async with hub.sessions() as session:
        names = (
            await session.scalars(
                select(Agent.username)
                .where(Agent.demo.is_(True), Agent.active.is_(True))
                .order_by(Agent.id)
                .limit(4)
            )
        ).all()
    if names:
        await hub.dispose()
        raise ConfigError(
            f"demo accounts with the published password are active ({', '.join(names)}"
            f"{', ...' if len(names) == 4 else ''}) and HUB_DEMO is not true: "
            "run `hub demo --deactivate`, or set HUB_DEMO=true for a demo hub"
        )


def http_ctx(holder: HttpClientHolder) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        yield
        await holder.close()

    return ctx


async def adapters_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start every configured channel adapter (SMTP listener, bot sessions)."""
    started = []
    for adapter in dict.fromkeys(app[keys.ADAPTERS].values()):
        await adapter.start()
        started.append(adapter)
    yield
    for adapter in reversed(started):
        try:
            await adapter.stop()
        except Exception:
            logger.exception("stopping %s failed", type(adapter).__name__)


OUTBOX: web.AppKey[OutboxSender] = web.AppKey("outbox")


async def outbox_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the outbox sender for the app's lifetime."""
    hub = app[keys.HUB]
    sender = OutboxSender(
        hub.settings,
        hub.tx,
        app[keys.ADAPTERS],
        early_status=hub.feedback.early_status,
        apply_status=hub.feedback.update_status,
    )
    app[OUTBOX] = sender
    hub.supervisor.spawn("outbox", sender.run)
    yield
    await hub.supervisor.stop("outbox")


MEDIA: web.AppKey[MediaWorker] = web.AppKey("media")


async def media_ctx(app: web.Application) -> AsyncIterator[None]:
    """Fetch pending attachments (announced media whose first fetch failed) in the background."""
    hub = app[keys.HUB]
    worker = MediaWorker(hub.settings, hub.tx, app[keys.ADAPTERS])
    app[MEDIA] = worker
    hub.supervisor.spawn("media", worker.run)
    yield
    await hub.supervisor.stop("media")
