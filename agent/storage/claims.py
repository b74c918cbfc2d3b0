"""Claiming due work so that several agent replicas on one PostgreSQL database never do it twice.

Two patterns:

* :func:`fire_due` - work that is only database writes (a deadline that changes a state, a reminder
  that enqueues an outbox message). The due rows are locked with ``SELECT ... FOR UPDATE SKIP
  LOCKED`` and handled in the same transaction; the handler must make the row no longer due. A row
  is therefore fired by exactly one replica, and a crash rolls the whole firing back.
* :func:`claim_leased` - work with a network call outside the transaction (the outbox). Rows are
  locked with ``SKIP LOCKED`` and stamped with ``claimed_by`` and ``claimed_until`` (the columns of
  :class:`Leased`) in a short transaction; other replicas skip them until the lease ends, so the
  claim of a replica that crashed expires by itself.

SQLite is single-process: it has no row locks, and :meth:`Database.transaction` serialises
writers inside the one process, which gives the same guarantee there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, or_
from sqlalchemy.ext.asyncio import AsyncSession

from agent.storage.database import Database
from agent.storage.tables import Leased

__all__ = [
    "claim_leased",
    "fire_due",
    "lease_free",
    "replica_id",
    "skip_locked",
]

_Row = TypeVar("_Row")
_LeasedRow = TypeVar("_LeasedRow", bound="Leased")


def replica_id() -> str:
    """A name for this process's claims: host, process id and a random part (no secrets)."""
    return f"{os.uname().nodename[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def skip_locked(query: Select[Any], database: Database) -> Select[Any]:
    """``query`` with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; unchanged on SQLite."""
    if database.is_sqlite:
        return query
    # OF the selected table only: rows read in subqueries (e.g. the stream's head) stay unlocked.
    return query.with_for_update(skip_locked=True, of=query.column_descriptions[0]["entity"])


def lease_free(entity: Any, now: datetime) -> Any:
    """SQL condition: the row has no claim, or its lease has ended."""
    return or_(entity.claimed_until.is_(None), entity.claimed_until <= now)


async def fire_due(
    database: Database,
    query: Select[_Row],
    fire: Callable[[AsyncSession, _Row], Awaitable[None]],
) -> int:
    """Lock the rows of ``query`` that no other replica holds and ``fire`` each, in one transaction.

    ``query`` selects the due rows of one mapped class (add a ``limit``); ``fire`` must change the
    row so it is no longer due (mark it fired, move its deadline). Returns how many were fired.
    """

    async def fire_each(session: AsyncSession) -> int:
        rows = (await session.scalars(skip_locked(query, database))).all()
        for row in rows:
            await fire(session, row)
        return len(rows)

    return await database.retrying(fire_each)


async def claim_leased(
    database: Database,
    query: Select[_LeasedRow],
    *,
    owner: str,
    now: datetime,
    lease: timedelta,
) -> Sequence[_LeasedRow]:
    """Claim the rows of ``query`` for ``owner`` until ``now + lease``; committed on return.

    ``query`` must already exclude rows whose lease has not ended (see :func:`lease_free`).
    """
    async with database.transaction() as session:
        rows = (await session.scalars(skip_locked(query, database))).all()
        for row in rows:
            row.claimed_by, row.claimed_until = owner, now + lease
        return rows
