"""``create_app(settings)``: the one aiohttp application serving every web surface."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from aiohttp import web

from agent_console import gateway, pages
from channels import registry
from config.settings import Settings
from contract.channel import ChannelAdapter, ChannelContext
from hub.chat.observers import observers_ctx
from hub.customers.privacy import retention_ctx
from hub.reports.rollup import rollup_ctx
from hub.services import Hub, process_name
from hub.voice.bridge import call_bridge_ctx
from hub.web import keys
from hub.web import middleware as hubweb
from hub.web.api import admin as _admin  # noqa: F401 - registers routes
from hub.web.api import audit as _audit  # noqa: F401 - registers routes
from hub.web.api import canned as _canned  # noqa: F401 - registers routes
from hub.web.api import inbound as _inbound  # noqa: F401 - registers routes
from hub.web.api import me as _me  # noqa: F401 - registers routes
from hub.web.api import privacy as _privacy  # noqa: F401 - registers routes
from hub.web.api import reports as _reports  # noqa: F401 - registers routes
from hub.web.api import setup as _setup  # noqa: F401 - registers routes
from hub.web.api import tokens as _tokens  # noqa: F401 - registers routes
from hub.web.api import workflow as _workflow
from hub.web.api.routes import api
from hub.web.metrics import Metrics, watch_pauses
from hub.work.dispatcher import dispatcher_ctx
from hub.workflow.engine import workflow_ctx
from server.lifecycle import (
    HttpClientHolder,
    adapters_ctx,
    database_ctx,
    http_ctx,
    media_ctx,
    outbox_ctx,
)
from storage.db import create_engine, create_read_engine

logger = logging.getLogger(__name__)


async def pauses_ctx(app: web.Application) -> AsyncIterator[None]:
    """Event-loop lag and GC pauses in ``/metrics`` for as long as the app runs."""
    task = asyncio.create_task(watch_pauses(app[hubweb.METRICS]), name="pause-watch")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def drain_adapters(app: web.Application) -> None:
    """At shutdown, before in-flight requests are waited for: adapters with live client
    connections (web chat visitors) tell them to reconnect elsewhere."""
    for adapter in dict.fromkeys(app[keys.ADAPTERS].values()):
        draining = getattr(adapter, "draining", None)
        if draining is not None:
            try:
                await draining()
            except Exception:
                logger.exception("draining %s failed", type(adapter).__name__)


def build_adapters(
    ctx: ChannelContext, packages: Sequence[str] = registry.CHANNELS
) -> dict[str, ChannelAdapter]:
    """Every configured adapter, keyed by each channel name it sends on."""
    by_channel: dict[str, ChannelAdapter] = {}
    for factory in registry.factories(packages):
        adapter = factory(ctx)
        if adapter is None:
            continue
        for channel in adapter.channels:
            if channel in by_channel:
                raise RuntimeError(f"two adapters claim channel {channel!r}")
            by_channel[channel] = adapter
    return by_channel


def create_app(
    settings: Settings, *, channels: Sequence[str] = registry.CHANNELS
) -> web.Application:
    """Build the application; resources open in ``cleanup_ctx`` when it starts.

    ``channels`` are the channel packages to run (``channels.registry.CHANNELS``; a test
    adds its own channel here)."""
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            hubweb.forwarded_middleware(settings.trusted_proxies),
            hubweb.metrics_middleware,
            hubweb.errors_middleware,
            hubweb.csrf_middleware,
        ],
    )
    app[keys.SETTINGS] = settings
    app[hubweb.METRICS] = Metrics()
    app[hubweb.METRICS_REFRESH] = hubweb.MetricsRefresh(settings.metrics_refresh_s)
    url = settings.database_url
    hub = Hub(
        settings,
        create_engine(url, application_name=process_name(settings)),
        create_read_engine(url),
        channels=registry.channels(channels),
    )
    app[keys.HUB] = hub
    holder = HttpClientHolder()
    app[keys.HTTP] = holder.get
    adapters = build_adapters(ChannelContext(settings=settings, hub=hub, http=holder.get), channels)
    undeclared = sorted(set(adapters) - {info.name for info in hub.channels})
    if undeclared:
        raise RuntimeError(f"channel(s) {', '.join(undeclared)} send without a ChannelInfo")
    app[keys.ADAPTERS] = adapters
    hub.adapters.update(adapters)
    hub.reply_options.update(
        {name: adapter.reply_options.get(name, frozenset()) for name, adapter in adapters.items()}
    )

    serves = settings.role in ("web", "all")  # webhooks, API, console and visitor sockets
    works = settings.role in ("worker", "all")  # router, outbox, media, rollups, call bridge
    if serves:
        app.router.add_routes(api.routes())
        for adapter in dict.fromkeys(adapters.values()):
            app.router.add_routes(adapter.routes())
    app.router.add_get("/healthz", hubweb.healthz)
    app.router.add_get("/readyz", hubweb.readyz)
    app.router.add_get("/metrics", hubweb.metrics)
    app.router.add_get("/api/openapi.json", hubweb.openapi)
    if serves:
        app.router.add_routes(pages.routes())
        app.router.add_routes(_workflow.survey_routes())
        app.router.add_get("/ws/agent", gateway.agent_ws)
        app.router.add_get("/ws/supervisor", gateway.supervisor_ws)

    app.cleanup_ctx.append(pauses_ctx)
    app.cleanup_ctx.append(database_ctx)
    if works:
        app.cleanup_ctx.append(rollup_ctx)
    app.cleanup_ctx.append(http_ctx(holder))
    app.cleanup_ctx.append(adapters_ctx)
    if works:
        app.cleanup_ctx.append(dispatcher_ctx)
        app.cleanup_ctx.append(call_bridge_ctx)
    if serves:
        app.cleanup_ctx.append(observers_ctx)
    if works:
        app.cleanup_ctx.append(outbox_ctx)
        app.cleanup_ctx.append(media_ctx)
        app.cleanup_ctx.append(retention_ctx)
        app.cleanup_ctx.append(workflow_ctx)
    if serves:
        app.cleanup_ctx.append(gateway.gateway_ctx)
        app.on_shutdown.append(drain_adapters)
    return app
