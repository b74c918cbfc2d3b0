"""The agent's database: SQLAlchemy's async engine on SQLite (aiosqlite) or PostgreSQL (psycopg).

Every write goes through :meth:`Database.transaction`, every read through :meth:`Database.reading`.
On SQLite one transaction writes at a time: writers of this process take turns on a lock, and
a write transaction starts with ``BEGIN IMMEDIATE`` (SQLite's own documented form), so a
second process that writes (a CLI import) is waited for by SQLite's busy timeout in aiosqlite's
thread, never on the event loop. On PostgreSQL, transactions run side by side and rows that must
not be handled twice are locked (``agent.storage.claims``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from agent.storage._migrations import MIGRATIONS
from registry.server_kit.deployment import create_private_sqlite_file

__all__ = ["MIGRATIONS", "Database"]

# How long a write waits for another process (a CLI command) that holds the SQLite write lock.
_SQLITE_BUSY_MILLISECONDS = 10_000
_BEGIN = "meeverhuizen_sqlite_begin"


def _sqlite_connect(connection: Any, _record: ConnectionPoolEntry) -> None:
    # SQLAlchemy's documented recipe: the driver begins nothing itself, the "begin" event does.
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MILLISECONDS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql(connection.get_execution_options().get(_BEGIN, "BEGIN"))


class Database:
    """The agent's engine and sessions; one writer at a time on SQLite."""

    def __init__(self, url: str) -> None:
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        create_private_sqlite_file(url)  # a new SQLite file holds BSNs: the owner's only (0600)
        self.engine: AsyncEngine = create_async_engine(url)
        writer = self.engine
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_connect)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
            writer = self.engine.execution_options(**{_BEGIN: "BEGIN IMMEDIATE"})
        self._readers = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writers = async_sessionmaker(writer, expire_on_commit=False)
        self._write_lock = asyncio.Lock()

    async def create_tables(self) -> None:
        """Bring the schema to the newest migration (an Alembic upgrade to head)."""
        await MIGRATIONS.upgrade(self.engine)

    async def dispose(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error."""
        if not self.is_sqlite:
            async with self._writers.begin() as session:
                yield session
            return
        async with self._write_lock, self._writers.begin() as session:
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only (the rows as committed when it first reads)."""
        async with self._readers() as session:
            yield session
