"""Deadlines with two agent replicas on one PostgreSQL database: each fires once."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.core.deadlines import DeadlineHandler, schedule_deadline
from agent.core.tasks import open_task
from agent.service import AgentService
from agent.storage.database import Database
from agent.storage.tables import DeadlineRow, TaskRow
from protocol.clock import FrozenClock
from tests.agent.conftest import FakeDirectory, agent_settings
from tests.conftest import TEST_DATABASE_URL_VARIABLE

NOW = datetime(2025, 3, 10, 23, 30, tzinfo=UTC)
DEADLINES = 60
KIND = "test-replica-deadline"

pytestmark = pytest.mark.skipif(
    not os.environ.get(TEST_DATABASE_URL_VARIABLE),
    reason=f"needs PostgreSQL ({TEST_DATABASE_URL_VARIABLE})",
)


@pytest.fixture
async def replicas(database_url: str) -> AsyncIterator[list[AgentService]]:
    """Two agent services (own engine each) on one database, as two replicas would run."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite is single-process: replicas share a PostgreSQL database")
    settings = agent_settings(database_url, gemeente="amsterdam")
    clock = FrozenClock(NOW)
    services: list[AgentService] = []
    async with httpx.AsyncClient() as http:
        for _ in range(2):
            database = Database(database_url)
            await database.create_tables()
            services.append(
                AgentService(
                    settings,
                    database=database,
                    directory=FakeDirectory(),
                    http=http,
                    clock=clock,
                    random=lambda: 0.5,
                )
            )
        yield services
        for service in services:
            await service.database.dispose()


async def test_each_deadline_fires_once_across_two_replicas(replicas: list[AgentService]) -> None:
    fired: Counter[str] = Counter()

    def handler(name: str) -> DeadlineHandler:
        async def handle(session: AsyncSession, row: DeadlineRow, now: datetime) -> None:
            fired[row.subject] += 1
            await open_task(
                session, kind="manual-check", description=f"{name} {row.subject}", now=now
            )
            await session.flush()
            await asyncio.sleep(0)  # let the other replica run while this one holds the lock

        return handle

    for number, service in enumerate(replicas):
        service.deadlines.register(KIND, handler(f"replica-{number}"))
    async with replicas[0].database.transaction() as session:
        for number in range(DEADLINES):
            await schedule_deadline(
                session,
                kind=KIND,
                subject=f"subject-{number}",
                due_at=NOW - timedelta(minutes=number),
                now=NOW - timedelta(days=1),
            )

    totals = await asyncio.gather(*(service.deadlines.run_due() for service in replicas * 2))

    assert sum(totals) == DEADLINES
    assert fired == {f"subject-{number}": 1 for number in range(DEADLINES)}
    async with replicas[1].database.reading() as session:
        tasks = await session.scalar(select(func.count()).select_from(TaskRow))
        states = Counter((await session.scalars(select(DeadlineRow.state))).all())
    assert tasks == DEADLINES
    assert states == {"fired": DEADLINES}
    assert await replicas[0].deadlines.run_due() == 0


async def test_a_failing_deadline_stays_pending_and_the_others_fire(
    replicas: list[AgentService],
) -> None:
    async def handle(session: AsyncSession, row: DeadlineRow, now: datetime) -> None:
        if row.subject == "broken":
            raise RuntimeError("handler failed")
        await open_task(session, kind="manual-check", description=row.subject, now=now)

    for service in replicas:
        service.deadlines.register(KIND, handle)
    async with replicas[0].database.transaction() as session:
        for subject in ("first", "broken", "last"):
            await schedule_deadline(
                session, kind=KIND, subject=subject, due_at=NOW, now=NOW - timedelta(days=1)
            )

    totals = await asyncio.gather(*(service.deadlines.run_due() for service in replicas))

    assert sum(totals) == 2
    [pending] = await replicas[1].deadlines.pending(kind=KIND)
    assert pending.subject == "broken"
    async with replicas[1].database.reading() as session:
        descriptions = sorted((await session.scalars(select(TaskRow.description))).all())
    assert descriptions == ["first", "last"]
