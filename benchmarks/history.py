"""History benchmark: a customer's first history page at 10k and at 1M stored messages.

Runs on a PostgreSQL database created for the run (dropped afterwards). Rows are generated
server-side with ``generate_series``; the timed part is the hub's own history query
(``hub.queries.history``), the same code the API serves.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

from benchmarks.common import pg_admin, summary, write_result
from hub import queries
from storage.db import create_engine, migrate, session_factory

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
# The measured customer keeps the same history while the database around it grows.
TARGET_CUSTOMER = 1
TARGET_MESSAGES = 60


async def _fill(url: str, total: int, customers: int) -> None:
    """Grow the database to ``total`` messages spread over ``customers`` customers."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        have = await conn.fetchval("SELECT count(*) FROM messages")
        if have == 0:
            await conn.execute(
                f"""
                INSERT INTO customers (id, display_name, segment, language, tags, attributes,
                                       flags, created_at, updated_at)
                SELECT g, 'Customer ' || g, 'standard', '', '[]', '{{}}', '[]', now(), now()
                FROM generate_series(1, {customers}) g;
                INSERT INTO endpoints (id, customer_id, kind, address, verified, opted_out,
                                       undeliverable, created_at)
                SELECT g, g, 'phone', '+1555' || lpad(g::text, 7, '0'), false, '[]', '', now()
                FROM generate_series(1, {customers}) g;
                INSERT INTO conversations (id, customer_id, endpoint_id, channel, our_address,
                    reply_token, subject, state, queue, priority, labels, participants,
                    disposition, created_at, last_activity_at)
                SELECT g, g, g, 'sms', '', md5(g::text), '', 'closed', 'support', 0, '[]',
                       '[]', '', now(), now()
                FROM generate_series(1, {customers}) g;
                SELECT setval(pg_get_serial_sequence('customers', 'id'), {customers});
                INSERT INTO messages (conversation_id, customer_id, channel, direction, kind,
                    text, provider_id, status, error_code, error_message, metadata, created_at)
                SELECT 1, 1, 'sms', 'in', 'message', 'target ' || g, 'TG' || g, 'received',
                       '', '', '{{}}', now() - (g || ' minutes')::interval
                FROM generate_series(1, {TARGET_MESSAGES}) g;
                """
            )
        if have < total:
            await conn.execute(
                f"""
                INSERT INTO messages (conversation_id, customer_id, channel, direction, kind,
                    text, provider_id, status, error_code, error_message, metadata, created_at)
                SELECT c, c, 'sms', CASE WHEN g % 2 = 0 THEN 'in' ELSE 'out' END, 'message',
                       'message number ' || g, 'SM' || md5(g::text), 'delivered', '', '', '{{}}',
                       now() - (g || ' seconds')::interval
                FROM (SELECT g, 2 + (g % {customers - 1}) AS c
                      FROM generate_series({max(have, TARGET_MESSAGES) + 1}, {total}) g) s;
                """
            )
            await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _time_pages(url: str, customer_id: int, runs: int) -> list[float]:
    engine = create_engine(url)
    sessions = session_factory(engine)
    timings: list[float] = []
    try:
        for i in range(runs + 5):
            async with sessions() as s:
                start = time.perf_counter()
                page = await queries.history(s, customer_id, limit=50, before=None)
                elapsed = time.perf_counter() - start
            assert len(page.items) == 50
            if i >= 5:  # warm-up: connection, plan cache
                timings.append(elapsed * 1000)
    finally:
        await engine.dispose()
    return timings


async def run(
    small: int, large: int, customers: int, runs: int, admin_url: str
) -> dict[str, object]:
    name = f"hubbench_{uuid.uuid4().hex[:8]}"
    await pg_admin(f'CREATE DATABASE "{name}"', admin_url)
    url = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    try:
        await migrate(url)
        await _fill(url, small, customers)
        at_small = summary(await _time_pages(url, TARGET_CUSTOMER, runs))
        started = time.perf_counter()
        await _fill(url, large, customers)
        fill_s = time.perf_counter() - started
        at_large = summary(await _time_pages(url, TARGET_CUSTOMER, runs))
    finally:
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', admin_url)
    ratio = at_large["median"] / at_small["median"]
    return {
        "small_messages": small,
        "large_messages": large,
        "customers": customers,
        "first_page_ms_small": at_small,
        "first_page_ms_large": at_large,
        "ratio_median_large_over_small": round(ratio, 3),
        "target": "ratio <= 1.5",
        "fill_seconds": round(fill_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hub bench history", description=__doc__)
    parser.add_argument("--small", type=int, default=10_000, help="messages in the small run")
    parser.add_argument("--large", type=int, default=1_000_000, help="messages in the large run")
    parser.add_argument("--customers", type=int, default=2_000, help="customers sharing them")
    parser.add_argument("--runs", type=int, default=200, help="timed queries per size")
    parser.add_argument(
        "--admin-url", default=ADMIN_URL, help="PostgreSQL server to create a DB on"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.small, args.large, args.customers, args.runs, args.admin_url))
    path = write_result("history", result)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        small: dict[str, float] = result["first_page_ms_small"]  # type: ignore[assignment]
        large: dict[str, float] = result["first_page_ms_large"]  # type: ignore[assignment]
        ratio = result["ratio_median_large_over_small"]
        print(
            f"first history page: {small['median']:.2f} ms at {args.small:,} messages, "
            f"{large['median']:.2f} ms at {args.large:,} (ratio {ratio})"
        )
        print(f"written to {path}")
    return 0
