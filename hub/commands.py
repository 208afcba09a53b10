"""The command log: one idempotency record per (actor, key), for the console and REST alike.

A client names each command it may repeat (the console's ``client_msg_id`` on every
command, ``client_msg_id`` in a REST reply's body). The first answer is stored under that
name and a repeat gets the same answer back instead of acting twice. A key reused for a
different command is refused rather than answered with another command's result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contract.errors import Conflict
from hub.uow import Transactor, UnitOfWork
from storage.models import CommandRecord

# The log's command name of a stored reply or note (console ``reply``/``note``, REST POST).
MESSAGE = "message"
# What every console command and REST reply builds its answer from.
Result = dict[str, Any]


def agent_actor(agent_id: int) -> str:
    """The log's name for a person (their commands are keyed per person, across devices)."""
    return f"agent:{agent_id}"


async def recall(s: AsyncSession, *, actor: str, key: str, command: str) -> Result | None:
    """The stored answer of ``key``, or None when it was never used."""
    row = await s.get(CommandRecord, (actor, key))
    if row is None:
        return None
    if row.command and row.command != command:
        raise Conflict(f"client_msg_id {key!r} was already used for {row.command!r}")
    return dict(row.result)


def record(s: AsyncSession, *, actor: str, key: str, command: str, result: Result) -> None:
    """Store the answer of ``key`` in the caller's transaction."""
    s.add(CommandRecord(actor=actor, key=key, command=command, result=result))


class CommandLog:
    """Runs commands that commit through the hub's services at most once per key."""

    def __init__(self, tx: Transactor) -> None:
        self.tx = tx

    async def once(
        self, *, actor: str, key: str, command: str, run: Callable[[], Awaitable[Result]]
    ) -> Result:
        """The stored answer of ``key``, else ``run()``'s, stored.

        ``run`` commits on its own, so the answer is written just after it: a crash in
        between leaves the command done and unlogged (its repeat acts again), and of two
        repeats racing, the one whose record loses returns the winner's answer. Commands that
        must be exact (a reply, a note) call ``recall``/``record`` inside their own
        transaction instead.
        """
        done = await self.tx.read(lambda s: recall(s, actor=actor, key=key, command=command))
        if done is not None:
            return done
        result = await run()

        async def keep(uow: UnitOfWork) -> Result:
            # A retry after a unique-key race finds the winner's row here.
            stored = await recall(uow.session, actor=actor, key=key, command=command)
            if stored is not None:
                return stored
            record(uow.session, actor=actor, key=key, command=command, result=result)
            return result

        return await self.tx.run(keep)
