"""Poll gates: a periodic job skips its statements while nothing it serves can be due."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.core.deadlines import Deadlines, schedule_deadline
from agent.runtime import open_service, run_scheduler
from agent.storage.database import Database
from agent.storage.polling import PollGate
from agent.storage.tables import DeadlineRow
from protocol.clock import FrozenClock
from tests.agent.conftest import agent_settings

NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    """The SQL statements the database runs inside the block."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _schedule(database: Database, due_at: datetime, subject: str = "order-1") -> None:
    async with database.transaction() as session:
        await schedule_deadline(
            session, kind="test-deadline", subject=subject, due_at=due_at, now=NOW
        )


async def test_a_gate_reads_once_and_then_answers_without_a_statement(database: Database) -> None:
    clock = FrozenClock(NOW)
    gate = Deadlines(database=database, clock=clock).gate
    await _schedule(database, NOW + timedelta(days=2))

    with statements(database) as first:
        assert not await gate.due()
    assert first, "the first question reads the earliest due time"
    with statements(database) as later:
        assert not await gate.due()
        clock.advance(timedelta(days=2))
        # Due now: known from the first read, without reading again.
        assert await gate.due()
    assert later == []


async def test_a_commit_or_a_run_makes_the_gate_read_again(database: Database) -> None:
    clock = FrozenClock(NOW)
    gate = Deadlines(database=database, clock=clock).gate
    assert not await gate.due()  # nothing pending at all

    # Written in this process: the next question reads again and sees it.
    await _schedule(database, NOW - timedelta(minutes=1))
    assert await gate.due()

    async with database.transaction() as session:
        row = (await session.scalars(select(DeadlineRow))).one()
        row.state = "fired"
    assert not await gate.due()

    gate.ran()
    with statements(database) as after_run:
        assert not await gate.due()
    assert after_run


async def _earliest(session: AsyncSession) -> datetime | None:
    return await session.scalar(select(func.min(DeadlineRow.due_at)))


async def test_another_replicas_work_is_seen_after_the_refresh(database: Database) -> None:
    gate = PollGate(database, FrozenClock(NOW), _earliest, refresh_seconds=0.2)
    assert not await gate.due()
    # Another replica on the same database: its commits are not counted here.
    other = Database(database.url)
    try:
        await _schedule(other, NOW - timedelta(minutes=1))
    finally:
        await other.dispose()
    assert not await gate.due(), "within the refresh time the gate answers from memory"
    await asyncio.sleep(0.25)
    assert await gate.due()


async def test_the_scheduled_deadline_job_fires_a_due_deadline_and_idles_without_statements(
    tmp_path: Path,
) -> None:
    settings = agent_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'agent.sqlite'}",
        gemeente="utrecht",
        **{"takeover": {"deadline_interval_seconds": 0.05}, "delivery_interval_seconds": 0.05},
    )
    fired: list[str] = []
    async with open_service(settings) as service:

        async def handle(_session: object, row: DeadlineRow, _now: datetime) -> None:
            fired.append(row.subject)

        service.deadlines.register("test-deadline", handle)
        async with run_scheduler(service):
            # After the jobs' first runs (they read what is pending), half a second (about ten
            # runs of each job) passes without a statement.
            windows = []
            for _ in range(20):
                with statements(service.database) as idle:
                    await asyncio.sleep(0.5)
                windows.append(len(idle))
                if not idle:
                    break
            assert windows[-1] == 0, f"statements in each half second: {windows}"

            await _schedule(service.database, service.clock.now() - timedelta(seconds=1))
            for _ in range(100):
                if fired:
                    break
                await asyncio.sleep(0.05)
    assert fired == ["order-1"]
