"""Persistent deadlines: a due-time table polled by a scheduled job.

A deadline is a row, written in the same transaction as the fact that causes it, so a restart
keeps every deadline; the job (``run_due``) fires each due row once, in its own transaction, and
a handler that fails leaves the row pending for the next pass. A passed deadline is escalated to
a person, never dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.storage.claims import fire_due
from agent.storage.database import Database
from agent.storage.polling import PollGate
from agent.storage.tables import DeadlineRow
from protocol.clock import Clock

__all__ = [
    "DeadlineHandler",
    "Deadlines",
    "cancel_deadlines",
    "schedule_deadline",
]

_log = logging.getLogger("meeverhuizen.agent.deadlines")


DeadlineHandler = Callable[[AsyncSession, DeadlineRow, datetime], Awaitable[None]]


async def schedule_deadline(
    session: AsyncSession,
    *,
    kind: str,
    subject: str,
    due_at: datetime,
    now: datetime,
    dossier_id: str | None = None,
) -> None:
    """Add (or move) a pending deadline inside the caller's transaction."""
    existing = await session.scalar(
        select(DeadlineRow).where(DeadlineRow.kind == kind, DeadlineRow.subject == subject)
    )
    if existing is not None:
        existing.due_at, existing.state, existing.fired_at = due_at, "pending", None
        return
    session.add(
        DeadlineRow(
            kind=kind,
            subject=subject,
            dossier_id=dossier_id,
            due_at=due_at,
            state="pending",
            created_at=now,
            fired_at=None,
        )
    )


async def cancel_deadlines(session: AsyncSession, *, subject: str, kinds: Iterable[str]) -> None:
    """Cancel the pending deadlines of ``subject`` (the fact they watch was stopped)."""
    pending = await session.scalars(
        select(DeadlineRow).where(
            DeadlineRow.subject == subject,
            DeadlineRow.kind.in_(list(kinds)),
            DeadlineRow.state == "pending",
        )
    )
    for row in pending:
        row.state = "cancelled"


class Deadlines:
    """Fires due deadlines through the handler registered for their kind."""

    def __init__(self, *, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock
        self._handlers: dict[str, DeadlineHandler] = {}
        # The scheduled job runs only when a deadline is due (agent.storage.polling).
        self.gate = PollGate(database, clock, _earliest_pending)

    def register(self, kind: str, handler: DeadlineHandler) -> None:
        """Handle deadlines of ``kind`` with ``handler`` (called inside a transaction)."""
        self._handlers[kind] = handler

    async def run_due(self) -> int:
        """Fire every pending deadline whose time has come; return how many fired.

        Each deadline fires in its own transaction through :func:`agent.storage.claims.fire_due`: on
        PostgreSQL the row is locked with ``SKIP LOCKED``, so with several replicas on one
        database a deadline fires once. A failing handler leaves its row pending for the next pass.
        """
        now = self._clock.now()
        failed: list[int] = []
        fired = 0
        while True:
            current: list[int] = []
            try:
                count = await fire_due(
                    self._database, self._due(now, failed), self._firing(now, current)
                )
            except Exception:
                if not current:
                    raise
                # The row stays pending and is tried again on the next pass.
                _log.exception("deadline_failed", extra={"deadline_id": current[-1]})
                failed.append(current[-1])
                continue
            if not count:
                return fired
            fired += count

    @staticmethod
    def _due(now: datetime, failed: list[int]) -> Select[DeadlineRow]:
        query = select(DeadlineRow).where(DeadlineRow.state == "pending", DeadlineRow.due_at <= now)
        if failed:
            query = query.where(DeadlineRow.id.not_in(failed))
        return query.order_by(DeadlineRow.due_at, DeadlineRow.id).limit(1)

    def _firing(
        self, now: datetime, current: list[int]
    ) -> Callable[[AsyncSession, DeadlineRow], Awaitable[None]]:
        async def fire(session: AsyncSession, row: DeadlineRow) -> None:
            current.append(row.id)
            handler = self._handlers.get(row.kind)
            if handler is not None:
                await handler(session, row, now)
            row.state, row.fired_at = "fired", now

        return fire

    async def pending(self, *, kind: str | None = None) -> list[DeadlineRow]:
        """Pending deadlines, soonest first."""
        query = select(DeadlineRow).where(DeadlineRow.state == "pending")
        if kind is not None:
            query = query.where(DeadlineRow.kind == kind)
        async with self._database.reading() as session:
            return list(await session.scalars(query.order_by(DeadlineRow.due_at, DeadlineRow.id)))


async def _earliest_pending(session: AsyncSession) -> datetime | None:
    return await session.scalar(
        select(func.min(DeadlineRow.due_at)).where(DeadlineRow.state == "pending")
    )
