"""SQLite on the event loop's thread (agent._sqlite): a write waits for another process's lock
without stopping the loop, gives up with "database is locked" after its wait, and sessions take
turns inside one process."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

import agent._db
import agent._sqlite
from agent._db import Database, DossierRow

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

# Another process that holds the write lock until its stdin closes.
_HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
connection.execute("UPDATE dossiers SET state = 'held' WHERE id = 'other'")
print("locked", flush=True)
sys.stdin.read()
connection.execute("COMMIT")
"""


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'agent.sqlite'}")
    await database.create_tables()
    async with database.transaction() as session:
        session.add(_dossier("other"))
    yield database
    await database.dispose()


def _dossier(dossier_id: str) -> DossierRow:
    return DossierRow(
        id=dossier_id, side="departing", state="started", created_at=NOW, updated_at=NOW
    )


@contextmanager
def _lock_held_by_another_process(path: Path) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(10)
        for pipe in (holder.stdin, holder.stdout):
            if pipe is not None:
                pipe.close()


async def _count(database: Database) -> int:
    async with database.reading() as session:
        return int(await session.scalar(select(func.count()).select_from(DossierRow)) or 0)


async def test_a_write_waits_for_another_process_while_the_loop_runs_on(
    database: Database, tmp_path: Path
) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    async def write() -> None:
        async with database.transaction() as session:
            session.add(_dossier("mine"))

    ticking = asyncio.create_task(ticker())
    try:
        with _lock_held_by_another_process(tmp_path / "agent.sqlite") as holder:
            writing = asyncio.create_task(write())
            before = ticks
            await asyncio.sleep(0.3)
            assert not writing.done()  # it waits for the lock ...
            assert ticks - before >= 20  # ... and the loop keeps running meanwhile
            # Reads are not blocked by the other process's write lock (WAL).
            assert await _count(database) == 1
            assert holder.stdin is not None
            holder.stdin.close()
            await asyncio.wait_for(writing, 5)
    finally:
        ticking.cancel()
    assert await _count(database) == 2
    with sqlite3.connect(tmp_path / "agent.sqlite") as connection:
        states = dict(connection.execute("SELECT id, state FROM dossiers").fetchall())
    assert states == {"other": "held", "mine": "started"}


async def test_a_write_gives_up_when_the_lock_is_not_released(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent._db, "_SQLITE_WRITE_WAIT_SECONDS", 0.2)
    with (
        _lock_held_by_another_process(tmp_path / "agent.sqlite"),
        pytest.raises(OperationalError, match="database is locked"),
    ):
        async with database.transaction() as session:
            session.add(_dossier("mine"))
    assert await _count(database) == 1  # nothing of the failed write was applied


async def test_writers_in_one_process_take_turns_and_a_failed_one_leaves_nothing(
    database: Database,
) -> None:
    order: list[str] = []

    async def write(name: str, *, fail: bool = False) -> None:
        async with database.transaction() as session:
            order.append(f"{name} begins")
            session.add(_dossier(name))
            await session.flush()
            await asyncio.sleep(0.01)  # the other writer must not start in between
            if fail:
                raise RuntimeError("rolled back")
            order.append(f"{name} ends")

    results = await asyncio.gather(
        write("a"), write("b", fail=True), write("c"), return_exceptions=True
    )
    assert [type(r) for r in results] == [type(None), RuntimeError, type(None)]
    assert order == ["a begins", "a ends", "b begins", "c begins", "c ends"]
    async with database.reading() as session:
        names = set(await session.scalars(select(DossierRow.id)))
    assert names == {"other", "a", "c"}


def _main_file_pages(path: Path) -> int:
    return path.stat().st_size // 4096


async def _write_dossiers(database: Database, count: int) -> None:
    for number in range(count):
        async with database.transaction() as session:
            session.add(_dossier(f"d{number}"))


@pytest.mark.parametrize(
    ("every", "after_seconds", "checkpointed"),
    [(10, 3600.0, True), (10**9, 0.0, True), (10**9, 3600.0, False)],
)
async def test_commits_leave_checkpoints_to_the_checkpointer_thread(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    every: int,
    after_seconds: float,
    checkpointed: bool,
) -> None:
    monkeypatch.setattr(agent._sqlite, "_CHECKPOINT_EVERY_COMMITS", every)
    monkeypatch.setattr(agent._sqlite, "_CHECKPOINT_AFTER_SECONDS", after_seconds)
    path = tmp_path / "agent.sqlite"
    database = Database(f"sqlite+aiosqlite:///{path}")
    await database.create_tables()
    before = _main_file_pages(path)
    await _write_dossiers(database, 300)
    checkpointer = database._checkpointer
    assert checkpointer is not None
    await checkpointer.close()  # waits for a running checkpoint
    # Commits themselves never copy the WAL into the file; only the checkpointer does, after
    # enough commits or enough time.
    assert (_main_file_pages(path) > before) == checkpointed
    await database.dispose()
    assert await _rows_in(path) == 300


async def _rows_in(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM dossiers").fetchone()[0])
