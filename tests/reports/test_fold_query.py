"""The fold reads a slice of the event log by seq range, however long the log has grown."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import sqlite

from hub.reports import rollup
from storage.db import create_engine
from storage.models import Event

AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _event(
    seq: int, kind: str, *, agent_id: int | None = None, payload: dict[str, str]
) -> dict[str, Any]:
    return {
        "seq": seq,
        "type": kind,
        "created_at": AT,
        "conversation_id": seq % 7 + 1,
        "agent_id": agent_id,
        "queue": "support",
        "channel": "sms",
        "payload": payload,
    }


async def test_sqlite_reads_the_slice_by_seq_not_by_the_type_index(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    rows = [
        _event(1, "conversation.created", payload={}),
        _event(2, "message.received", payload={"kind": "message"}),
        _event(3, "message.received", payload={"kind": "csat"}),
        _event(4, "message.sent", payload={"kind": "message"}),  # an automatic send
        _event(5, "message.sent", agent_id=1, payload={"kind": "message"}),
        _event(6, "offer.created", payload={}),  # not folded
        _event(7, "conversation.closed", payload={}),
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(Event), rows)
        params = {"last": 1, "upto": 6}
        literal = rollup.FOLDED_EVENTS.params(params).compile(
            dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
        )
        steps = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {literal}")
        plan = " ".join(str(step[-1]) for step in steps)
        found = [row.seq for row in await conn.execute(rollup.FOLDED_EVENTS, params)]
    await engine.dispose()
    # A search of the primary key's range; the type index would read the whole log's events.
    assert "seq>? AND seq<?" in plan, plan
    assert "ix_events_type_created" not in plan, plan
    assert found == [3, 5]
