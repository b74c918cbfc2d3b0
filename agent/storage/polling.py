"""Skipping a periodic job's poll while nothing it serves can be due.

A job that polls a table (due deadlines, due outbox messages, dossiers waiting for an answer)
costs a few statements on every run, also when it finds nothing. With hundreds of organisations
on one host (``agent.hosting``) those runs alone take most of a core. A :class:`PollGate` knows,
from one query, when the earliest pending work falls due, and answers from that until it may be
wrong: after a transaction of this organisation committed (``Database.commits``), after the job
ran, and at least every ``refresh`` seconds of wall time, for work that another replica on the
same database wrote. Until then a run costs no statement.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from agent.storage.database import Database
from protocol.clock import Clock

__all__ = ["Earliest", "PollGate"]

# When the earliest pending work falls due (None: nothing pending), read in one session.
Earliest = Callable[[AsyncSession], Awaitable[datetime | None]]

# Another replica's new work is seen within a minute (this replica's at once).
_REFRESH_SECONDS = 60.0


class PollGate:
    """Whether a periodic job has anything due, answered without a statement when it can be."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        earliest: Earliest,
        *,
        refresh_seconds: float = _REFRESH_SECONDS,
    ) -> None:
        self._database = database
        self._clock = clock
        self._earliest = earliest
        self._refresh_seconds = refresh_seconds
        self._due_at: datetime | None = None
        # (Database.commits, time.monotonic()) when the earliest due time was read; None: unread.
        self._read: tuple[int, float] | None = None

    async def due(self) -> bool:
        """True when some pending work is due now (the job should run)."""
        now = self._clock.now()
        if self._stale():
            commits = self._database.commits
            async with self._database.reading() as session:
                self._due_at = await self._earliest(session)
            self._read = (commits, time.monotonic())
        return self._due_at is not None and self._due_at <= now

    def ran(self) -> None:
        """The job ran (it may have changed what is pending): read again before the next run."""
        self._read = None

    def _stale(self) -> bool:
        if self._read is None:
            return True
        commits, at = self._read
        return commits != self._database.commits or time.monotonic() - at >= self._refresh_seconds
