"""Middlewares and operational endpoints: error translation, metrics, health."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout

from contract.errors import Conflict, Forbidden, HubError, InvalidInput, NotFound, Throttled
from hub.web import keys
from hub.web.api.openapi import Handler, error_response
from hub.web.auth import (
    SESSION_COOKIE,
    UNSAFE_METHODS,
    bearer_matches,
    bearer_ok,
    cross_site_problem,
)
from hub.web.metrics import Metrics
from storage.db import ping

logger = logging.getLogger(__name__)
# A readiness check waits this long for the database or Redis before calling it down.
READY_TIMEOUT_S = 2.0
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_STATUS = {
    InvalidInput: (400, "invalid_input"),
    NotFound: (404, "not_found"),
    Forbidden: (403, "forbidden"),
    Conflict: (409, "conflict"),
    Throttled: (429, "throttled"),
}


def client_address(remote: str, forwarded_for: str, trusted: Sequence[IPNetwork]) -> str:
    """The client's address: walking from the peer leftwards through ``X-Forwarded-For``,
    the first address that is not a trusted proxy (what a client writes further left is its
    own say, never believed)."""
    hops = [remote, *reversed([h.strip() for h in forwarded_for.split(",") if h.strip()])]
    last = remote
    for hop in hops:
        try:
            ip = ipaddress.ip_address(hop)
        except ValueError:
            return last  # not an address: nothing further left can be believed
        if not any(ip in net for net in trusted):
            return hop
        last = hop
    return last


def forwarded_middleware(trusted: Sequence[IPNetwork]) -> Middleware:
    """Behind a load balancer (``HUB_TRUSTED_PROXIES``): throttles, the audit log and web
    chat's per-address limits see the client's address, and the scheme it used, instead of
    the proxy's."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        remote = request.remote or ""
        if not trusted or not remote:
            return await handler(request)
        try:
            peer = ipaddress.ip_address(remote)
        except ValueError:
            return await handler(request)
        if not any(peer in net for net in trusted):
            return await handler(request)
        client = client_address(remote, request.headers.get("X-Forwarded-For", ""), trusted)
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        changes: dict[str, str] = {"remote": client}
        if proto in ("http", "https"):
            changes["scheme"] = proto
        return await handler(request.clone(**changes))  # type: ignore[arg-type]

    return middleware


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Translate errors at the boundary: typed hub errors and HTTP errors become JSON."""
    try:
        return await handler(request)
    except HubError as err:
        status, code = next(
            ((s, c) for t, (s, c) in _STATUS.items() if isinstance(err, t)), (400, "error")
        )
        logger.info("%s %s -> %s: %s", request.method, request.path, status, err)
        return error_response(status, code, str(err))
    except web.HTTPException as err:
        if err.status < 400 or err.content_type == "application/json":
            raise
        if err.status == 413:
            detail = f"body larger than {request.app[keys.SETTINGS].max_body_bytes} bytes"
            logger.info("%s %s -> 413 (body too large)", request.method, request.path)
            return error_response(413, "too_large", detail)
        return error_response(err.status, err.reason.lower().replace(" ", "_"), err.reason)
    except (DBAPIError, SQLAlchemyTimeout, ConnectionError):
        # Also a database that refuses connections (asyncpg raises the socket's error) and a
        # pool with no connection to give: nothing was stored, the caller should retry.
        logger.exception("database failure on %s %s", request.method, request.path)
        return error_response(503, "unavailable", "storage is unavailable; try again")
    except Exception:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error")


# Writes that ride on no cookie of ours but still change session state in a browser.
_SESSION_PATHS = frozenset({"/login", "/logout"})


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse cross-site writes that a browser would authenticate with our session cookie
    (SameSite=Lax alone still lets a sibling subdomain or a top-level form through)."""
    if request.method in UNSAFE_METHODS and (
        request.path in _SESSION_PATHS
        or (SESSION_COOKIE in request.cookies and not bearer_ok(request))
    ):
        problem = cross_site_problem(request)
        if problem is not None:
            logger.warning(
                "%s %s from %s refused: %s", request.method, request.path, request.remote, problem
            )
            return error_response(403, "cross_site", problem)
    return await handler(request)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count requests by route template (never by raw path: ids would explode the labels)."""
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
    except web.HTTPException as err:
        status = err.status
        raise
    else:
        status = response.status
        return response
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        metrics = request.app[METRICS]
        metrics.requests.labels(request.method, route, str(status)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - start)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database (and Redis when configured) answer, and no background loop is
    failing. The body says which, what this process runs and whether it routes."""
    hub = request.app[keys.HUB]
    settings = request.app[keys.SETTINGS]
    checks: dict[str, str] = {}
    try:
        # No asyncio timeout around a database call: a query cancelled half-way can leave
        # its pooled connection unusable. The engine's connect timeout bounds it.
        await ping(hub.engine)
        checks["database"] = "ok"
    except Exception as err:
        checks["database"] = f"error: {type(err).__name__}"
    if settings.redis_url:
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                await hub.bus.ping()
            checks["redis"] = "ok"
        except Exception as err:
            checks["redis"] = f"error: {type(err).__name__}"
    failing = hub.supervisor.failing()
    checks["loops"] = f"error: {', '.join(failing)}" if failing else "ok"
    ok = all(v == "ok" for v in checks.values())
    router = hub.supervisor.loops.get("router")
    body = {
        "status": "ok" if ok else "unavailable",
        "role": settings.role,
        "process": hub.process,
        "router": "off"
        if router is None
        else ("standby" if router.state == "standby" else "leader"),
        "checks": checks,
        "loops": {name: loop.as_json() for name, loop in sorted(hub.supervisor.loops.items())},
    }
    return web.json_response(body, status=200 if ok else 503)


class MetricsRefresh:
    """At most one storage read per ``interval_s`` however often /metrics is scraped; scrapes
    that arrive meanwhile share the read under way or reuse the last one."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.refreshes = 0
        self._at = float("-inf")
        self._lock = asyncio.Lock()

    async def ensure(self, request: web.Request) -> None:
        if time.monotonic() - self._at < self.interval_s:
            return
        async with self._lock:
            if time.monotonic() - self._at < self.interval_s:
                return  # another scrape refreshed while this one waited
            hub = request.app[keys.HUB]
            async with hub.sessions() as session:
                await request.app[METRICS].refresh(session, hub.stream.last_seq)
            self.refreshes += 1
            self._at = time.monotonic()


METRICS_REFRESH: web.AppKey[MetricsRefresh] = web.AppKey("metrics_refresh")


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition (behind ``HUB_METRICS_TOKEN`` when it is set)."""
    token = request.app[keys.SETTINGS].metrics_token.get_secret_value()
    if token and not bearer_matches(request, token):
        return error_response(401, "unauthorized", "metrics token required")
    hub = request.app[keys.HUB]
    request.app[METRICS].loops(hub.supervisor.loops.values(), bus=hub.bus)
    await request.app[METRICS_REFRESH].ensure(request)
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document."""
    from hub import __version__
    from hub.web.api.routes import api

    doc = api.openapi(title="Interaction hub API", version=__version__)
    return web.Response(text=json.dumps(doc), content_type="application/json")
