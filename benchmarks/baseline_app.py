"""The ingest baseline: a bare aiohttp handler that inserts one row into the same database."""

from __future__ import annotations

import os
import sys

from aiohttp import web
from sqlalchemy import text

from storage.db import create_engine


def make_app(database_url: str) -> web.Application:
    engine = create_engine(database_url)

    async def setup(app: web.Application) -> object:
        async with engine.begin() as conn:
            serial = "SERIAL" if engine.dialect.name == "postgresql" else "INTEGER"
            await conn.execute(
                text(f"CREATE TABLE IF NOT EXISTS baseline (id {serial} PRIMARY KEY, body TEXT)")
            )
        yield
        await engine.dispose()

    async def handler(request: web.Request) -> web.Response:
        body = await request.text()
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO baseline (body) VALUES (:b)"), {"b": body})
        return web.Response(text="<Response/>", content_type="text/xml")

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.cleanup_ctx.append(setup)  # type: ignore[arg-type]
    app.router.add_post("/webhooks/twilio/messaging", handler)
    app.router.add_get("/readyz", ready)
    return app


if __name__ == "__main__":
    web.run_app(
        make_app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), print=None, access_log=None
    )
    os._exit(0)
