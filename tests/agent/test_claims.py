"""agent.storage.claims: due rows fired once across replicas, leases that expire."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Integer, Select, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from agent.storage.claims import claim_leased, fire_due, lease_free
from agent.storage.database import Database
from agent.storage.tables import Leased
from registry.server_kit.migrations import UtcDateTime

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
JOBS = 120


class _Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime}  # noqa: RUF012 - SQLAlchemy reads it


class Reminder(_Base):
    """A test table shaped like a reminder job: due until fired."""

    __tablename__ = "test_reminders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fired_by: Mapped[str | None] = mapped_column(String(16), default=None)


class Delivery(Leased, _Base):
    __tablename__ = "test_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)


@pytest.fixture
async def replicas(database_url: str) -> AsyncIterator[list[Database]]:
    """Two engines on one database (two replicas); one on SQLite, which is single-process."""
    count = 1 if database_url.startswith("sqlite") else 2
    databases = [Database(database_url) for _ in range(count)]
    async with databases[0].engine.begin() as connection:
        await connection.run_sync(_Base.metadata.create_all)
    async with databases[0].transaction() as session:
        session.add_all(Reminder(id=number) for number in range(JOBS))
        session.add_all(Delivery(id=number) for number in range(10))
    yield databases
    for database in databases:
        await database.dispose()


async def test_every_due_row_fires_exactly_once_across_replicas(replicas: list[Database]) -> None:
    fired: Counter[int] = Counter()

    def firing(name: str) -> Callable[[AsyncSession, Reminder], Awaitable[None]]:
        async def fire(session: AsyncSession, row: Reminder) -> None:
            fired[row.id] += 1
            row.fired_by = name
            await session.flush()
            await asyncio.sleep(0)  # let the other replica run while this one holds its locks

        return fire

    async def replica(database: Database, name: str) -> int:
        due = select(Reminder).where(Reminder.fired_by.is_(None)).order_by(Reminder.id).limit(7)
        total = 0
        while count := await fire_due(database, due, firing(name)):
            total += count
        return total

    totals = await asyncio.gather(
        *(replica(database, f"replica-{n}") for n, database in enumerate(replicas * 2))
    )
    assert sum(totals) == JOBS
    assert fired == dict.fromkeys(range(JOBS), 1)
    async with replicas[0].reading() as session:
        left = await session.scalar(
            select(func.count()).select_from(Reminder).where(Reminder.fired_by.is_(None))
        )
    assert left == 0


async def test_a_claim_is_skipped_until_its_lease_ends(replicas: list[Database]) -> None:
    database = replicas[-1]
    lease = timedelta(minutes=5)

    def due(now: datetime) -> Select[Delivery]:
        return select(Delivery).where(lease_free(Delivery, now)).order_by(Delivery.id).limit(4)

    first = await claim_leased(database, due(NOW), owner="a", now=NOW, lease=lease)
    second = await claim_leased(database, due(NOW), owner="b", now=NOW, lease=lease)
    assert [row.id for row in first] == [0, 1, 2, 3]
    assert [row.id for row in second] == [4, 5, 6, 7]
    # Replica "a" crashed: after its lease another replica takes its rows over.
    later = NOW + lease
    third = await claim_leased(database, due(later), owner="c", now=later, lease=lease)
    assert [row.id for row in third] == [0, 1, 2, 3]
    assert {row.claimed_by for row in third} == {"c"}
    assert {row.claimed_until for row in third} == {later + lease}


async def test_work_that_deadlocks_with_another_transaction_runs_again(
    replicas: list[Database],
) -> None:
    """Two writers lock two rows in opposite order: PostgreSQL aborts one, which runs again."""
    if len(replicas) == 1:
        pytest.skip("SQLite has one writer at a time: two writers never deadlock")
    first_locked, second_locked = asyncio.Event(), asyncio.Event()
    attempts: Counter[str] = Counter()

    def crossing(
        name: str, rows: tuple[int, int], mine: asyncio.Event, other: asyncio.Event
    ) -> Callable[[AsyncSession], Awaitable[str]]:
        async def work(session: AsyncSession) -> str:
            attempts[name] += 1
            for number, row_id in enumerate(rows):
                row = await session.get(Reminder, row_id, with_for_update=True)
                assert row is not None
                row.fired_by = name
                await session.flush()
                if number == 0:
                    mine.set()
                    await other.wait()
            return name

        return work

    done = await asyncio.gather(
        replicas[0].retrying(crossing("a", (1, 2), first_locked, second_locked)),
        replicas[1].retrying(crossing("b", (2, 1), second_locked, first_locked)),
    )
    assert list(done) == ["a", "b"]
    assert sorted(attempts.values()) == [1, 2]  # the one aborted ran once more, and succeeded
    assert [database.write_failure for database in replicas] == [None, None]  # no fault
    async with replicas[0].reading() as session:
        both = await session.scalars(select(Reminder).where(Reminder.id.in_((1, 2))))
        owners = {row.fired_by for row in both}
    assert len(owners) == 1  # the later of the two wrote both rows
