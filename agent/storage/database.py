"""The agent's database: SQLAlchemy's async engine on SQLite (aiosqlite) or PostgreSQL (psycopg).

Every write goes through :meth:`Database.transaction`, every read through :meth:`Database.reading`.
On SQLite one transaction writes at a time: writers of this process take turns on a lock, and
a write transaction starts with ``BEGIN IMMEDIATE`` (SQLite's own documented form), so a
second process that writes (a CLI import) is waited for by SQLite's busy timeout in aiosqlite's
thread, never on the event loop. On PostgreSQL, transactions run side by side and rows that must
not be handled twice are locked (``agent.storage.claims``).

A database that cannot be used (a full disk, a read-only file or transaction, a server that is
down) is converted at this boundary: :class:`agent.errors.StorageUnavailable` (503), one log line
``storage_unavailable`` with the kind of fault, and ``write_failure`` set for readiness until a
write succeeds again. A transaction that PostgreSQL aborted for a concurrent one (a deadlock, a
serialization failure) is no fault of the database: it raises :class:`agent.errors.StorageConflict`,
and :meth:`Database.retrying` runs such work again, as PostgreSQL's documentation advises.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import InternalError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from agent.errors import StorageConflict, StorageUnavailable
from agent.storage._migrations import MIGRATIONS
from protocol.logs import log_event
from registry.server_kit.deployment import create_private_sqlite_file

__all__ = ["MIGRATIONS", "Database"]

# How long a write waits for another process (a CLI command) that holds the SQLite write lock.
_SQLITE_BUSY_MILLISECONDS = 10_000
_BEGIN = "meeverhuizen_sqlite_begin"
_SCHEMA = "meeverhuizen_schema"
_log = logging.getLogger("meeverhuizen.agent.storage")
# What a database that cannot be used now raises; IntegrityError and others are the caller's.
_UNUSABLE = (OperationalError, InternalError)
# SQLite result texts and PostgreSQL SQLSTATEs (53100 disk_full, 25006 read_only_sql_transaction).
_FAULTS = (
    ("disk full", ("database or disk is full", "no space left", "53100")),
    ("read-only", ("readonly database", "read-only", "25006")),
)
# PostgreSQL SQLSTATEs of a transaction aborted for a concurrent one: serialization_failure,
# deadlock_detected. Done again, the work succeeds.
_CONFLICTS = frozenset({"40001", "40P01"})
# How often :meth:`Database.retrying` runs work that keeps meeting a conflict.
_ATTEMPTS = 4
_T = TypeVar("_T")


def _fault(error: Exception) -> str:
    """The kind of fault, from the driver's error; its text (SQL, parameters) is never logged."""
    original = getattr(error, "orig", error)
    text = f"{original} {getattr(original, 'sqlstate', '')}".lower()
    for kind, markers in _FAULTS:
        if any(marker in text for marker in markers):
            return kind
    return "database unavailable"


def _conflict(error: Exception) -> bool:
    return getattr(getattr(error, "orig", None), "sqlstate", None) in _CONFLICTS


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


def _postgresql_begin(connection: Connection) -> None:
    # For this transaction only: the connection goes back to the shared pool without it.
    schema = connection.get_execution_options().get(_SCHEMA)
    if schema is not None:
        connection.exec_driver_sql(f'SET LOCAL search_path TO "{schema}"')


class Database:
    """The agent's engine and sessions; one writer at a time on SQLite.

    ``schema`` (PostgreSQL): the organisation's own schema, when one database holds several
    organisations (``agent.hosting``); every transaction then sees only that schema's tables.
    """

    def __init__(self, url: str, *, schema: str | None = None, pool: AsyncEngine | None = None):
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        if schema is not None and self.is_sqlite:
            raise ValueError("a schema per organisation needs PostgreSQL; SQLite has a file each")
        self._owns_pool = pool is None
        if pool is None:
            create_private_sqlite_file(url)  # a new SQLite file holds BSNs: the owner's only (0600)
            pool = create_async_engine(url)
            if self.is_sqlite:
                event.listen(pool.sync_engine, "connect", _sqlite_connect)
                event.listen(pool.sync_engine, "begin", _sqlite_begin)
            else:
                event.listen(pool.sync_engine, "begin", _postgresql_begin)
        self._pool = pool
        self.schema = schema
        self.engine: AsyncEngine = (
            pool if schema is None else pool.execution_options(**{_SCHEMA: schema})
        )
        writer = self.engine
        if self.is_sqlite:
            writer = self.engine.execution_options(**{_BEGIN: "BEGIN IMMEDIATE"})
        self._readers = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writers = async_sessionmaker(writer, expire_on_commit=False)
        self._write_lock = asyncio.Lock()
        # Why the latest write failed (disk full, read-only ...); None once a write succeeds.
        self.write_failure: str | None = None
        # Transactions committed through this object: a poll gate reads again when it grew.
        self.commits = 0

    def scoped(self, schema: str) -> Database:
        """This database's connection pool, with every transaction in ``schema`` (PostgreSQL)."""
        return Database(self.url, schema=schema, pool=self._pool)

    async def create_tables(self) -> None:
        """Bring the schema to the newest migration (an Alembic upgrade to head)."""
        if self.schema is not None:
            async with self._pool.begin() as connection:
                await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
        await MIGRATIONS.upgrade(self.engine)

    async def dispose(self) -> None:
        if self._owns_pool:
            await self._pool.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error."""
        try:
            if not self.is_sqlite:
                async with self._writers.begin() as session:
                    yield session
            else:
                async with self._write_lock, self._writers.begin() as session:
                    yield session
        except _UNUSABLE as exc:
            if _conflict(exc):
                raise StorageConflict("a concurrent change conflicted; try again") from exc
            raise self._unusable(exc, writing=True) from exc
        self.write_failure = None
        self.commits += 1

    async def retrying(self, work: Callable[[AsyncSession], Awaitable[_T]]) -> _T:
        """``work`` in one :meth:`transaction`, run again (a few times) after a conflict.

        ``work`` must keep its effects inside the session: a conflict rolls all of it back.
        """
        attempt = 1
        while True:
            try:
                async with self.transaction() as session:
                    return await work(session)
            except StorageConflict:
                log_event(_log, "storage_conflict", level=logging.WARNING, attempt=attempt)
                if attempt == _ATTEMPTS:
                    raise
            # A short pause, different per writer, so the two do not meet again at once.
            await asyncio.sleep(random.uniform(0.01, 0.05) * attempt)  # noqa: S311 - not a secret
            attempt += 1

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only (the rows as committed when it first reads)."""
        try:
            async with self._readers() as session:
                yield session
        except _UNUSABLE as exc:
            raise self._unusable(exc, writing=False) from exc

    def _unusable(self, error: Exception, *, writing: bool) -> StorageUnavailable:
        kind = _fault(error)
        if writing:
            self.write_failure = kind
        log_event(
            _log,
            "storage_unavailable",
            level=logging.ERROR,
            kind=kind,
            reason=f"the agent cannot {'write to' if writing else 'read'} its database "
            f"({kind}); requests get 503 until it can",
        )
        return StorageUnavailable(f"the database cannot be used now: {kind}")
