"""SQLite on the event loop's own thread: the standard library's ``sqlite3`` as an async dialect.

aiosqlite runs every cursor step in a worker thread; a statement on a WAL database takes a few
microseconds, the hand-over to the thread and back costs more than that (about a third of an
agent's CPU per handover, docs/performance.md). This dialect is SQLAlchemy's own pysqlite dialect
marked as async, so an ``AsyncEngine`` runs its statements directly, without a thread.

Sessions are :class:`LoopSession`: an ``AsyncSession`` whose methods call its synchronous session
directly instead of through a greenlet (nothing in this dialect ever awaits), and the pool never
waits for a free connection (it opens another) and hands out the most recently used one first
(its page cache is warm). Commits never checkpoint; a :class:`Checkpointer` thread does.

A statement that waited for a lock would stop the whole event loop, so no statement waits:

- reads never wait in WAL mode (a short busy timeout covers WAL recovery after a crash);
- a write transaction starts with ``BEGIN IMMEDIATE`` through :func:`begin_immediate`, which
  takes the write lock without waiting and, while another process holds it, sleeps on the event
  loop and tries again; once it holds the lock, no statement of the transaction can be refused.

Inside one process, writers take turns on an ``asyncio.Lock`` (``agent._db.Database``) before
they begin, so they never contend for the SQLite lock among themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from typing import Any

from sqlalchemy import event, pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = [
    "Checkpointer",
    "LoopSQLiteDialect",
    "LoopSession",
    "begin_immediate",
    "checkpointer",
    "create_engine",
]

# Reads only: the longest a statement may stall the event loop (WAL recovery by another process).
_READ_BUSY_MILLISECONDS = 100
_POOL_SIZE = 16
# BEGIN IMMEDIATE while another process writes: retried after 1, 2, 4 ... up to 50 ms.
_FIRST_RETRY_SECONDS = 0.001
_LONGEST_RETRY_SECONDS = 0.05
# SQLite's own default is every 1000 WAL pages (5 to 10 commits of an agent); fewer checkpoints
# copy each often-written page (index ends, the newest rows) fewer times. The WAL reaches about
# 500 commits of 20 pages (40 MB) before a checkpoint empties it.
_CHECKPOINT_EVERY_COMMITS = 500
# And at the first commit a minute or more after the last checkpoint (a quiet agent's WAL).
_CHECKPOINT_AFTER_SECONDS = 60.0
_log = logging.getLogger("meeverhuizen.sqlite")


class _Cursor(sqlite3.Cursor):
    async def _async_soft_close(self) -> None:
        """What an ``AsyncSession`` awaits after a statement: rows stay readable without I/O."""


class _Connection(sqlite3.Connection):
    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)


class LoopSQLiteDialect(SQLiteDialect_pysqlite):
    """pysqlite, declared async: an ``AsyncEngine`` calls ``sqlite3`` on the loop's thread."""

    driver = "loop"
    is_async = True
    supports_statement_cache = True

    def create_connect_args(self, url: URL) -> Any:
        arguments, options = super().create_connect_args(url)
        return arguments, {**options, "factory": _Connection}

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        if cls._is_url_file_db(url):
            return pool.AsyncAdaptedQueuePool
        return pool.StaticPool


registry.register("sqlite.loop", __name__, "LoopSQLiteDialect")


def _pragmas(connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={_READ_BUSY_MILLISECONDS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _no_automatic_checkpoint(connection: Any, _record: ConnectionPoolEntry) -> None:
    connection.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer does it off the loop


def create_engine(url: str | URL) -> AsyncEngine:
    """An async engine for a ``sqlite+aiosqlite`` or ``sqlite`` URL on the loop's thread.

    On a database file, commits never checkpoint: run a :class:`Checkpointer` beside it.
    """
    parsed = make_url(url).set(drivername="sqlite+loop")
    # A checkout must never wait (it would need a greenlet): past the pool size it opens another.
    on_file = LoopSQLiteDialect._is_url_file_db(parsed)
    options: dict[str, Any] = (
        {"pool_size": _POOL_SIZE, "max_overflow": -1, "pool_use_lifo": True} if on_file else {}
    )
    engine = create_async_engine(parsed, **options)
    event.listen(engine.sync_engine, "connect", _pragmas)
    if on_file:
        event.listen(engine.sync_engine, "connect", _no_automatic_checkpoint)
    return engine


def checkpointer(url: str | URL) -> Checkpointer | None:
    """The checkpointer an engine from :func:`create_engine` needs: one per database file."""
    parsed = make_url(url)
    on_file = LoopSQLiteDialect._is_url_file_db(parsed)
    return Checkpointer(parsed.database) if on_file and parsed.database else None


class Checkpointer:
    """Copies committed pages from the WAL into the database file in a worker thread.

    SQLite's automatic checkpoint runs inside a commit, on the event loop, and waits for two
    fsyncs (milliseconds each). Here every ``every``-th commit, or the first commit after
    ``_CHECKPOINT_AFTER_SECONDS`` without one, starts one PASSIVE checkpoint in a thread instead
    (at most one at a time); it waits for no reader or writer, and neither waits for it.
    Durability is the same: a commit is in the WAL when it returns.
    """

    def __init__(self, path: str, *, every: int | None = None) -> None:
        self._path = path
        self._every = every or _CHECKPOINT_EVERY_COMMITS
        self._commits = 0
        self._last = time.monotonic()
        self._running: asyncio.Future[None] | None = None
        self._connection: sqlite3.Connection | None = None

    def committed(self) -> None:
        """Count a commit; start a checkpoint when it is time and none runs."""
        self._commits += 1
        due = self._commits >= self._every or (
            time.monotonic() - self._last >= _CHECKPOINT_AFTER_SECONDS
        )
        if not due or (self._running is not None and not self._running.done()):
            return
        self._commits, self._last = 0, time.monotonic()
        self._running = asyncio.get_running_loop().run_in_executor(None, self._checkpoint)
        self._running.add_done_callback(_report_failure)

    def _checkpoint(self) -> None:
        if self._connection is None:
            self._connection = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False
            )
            self._connection.execute(f"PRAGMA busy_timeout={_READ_BUSY_MILLISECONDS}")
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def close(self) -> None:
        """Wait for a running checkpoint and close its connection."""
        if self._running is not None:
            with contextlib.suppress(Exception):  # reported by the callback already
                await self._running
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _report_failure(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        # The WAL grows until a later checkpoint succeeds; nothing committed is lost.
        _log.warning(
            "wal_checkpoint_failed", extra={"error_class": type(done.exception()).__name__}
        )


async def begin_immediate(session: LoopSession, *, wait_seconds: float) -> None:
    """``BEGIN IMMEDIATE`` on the session's connection, waiting on the loop while another process
    writes; raises ``OperationalError`` (database is locked) after ``wait_seconds``.
    """
    connection = session.sync_session.connection().connection.driver_connection
    assert isinstance(connection, sqlite3.Connection)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + wait_seconds
    delay = _FIRST_RETRY_SECONDS
    while True:
        connection.execute("PRAGMA busy_timeout=0")
        try:
            connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or loop.time() >= give_up:
                raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
        finally:
            connection.execute(f"PRAGMA busy_timeout={_READ_BUSY_MILLISECONDS}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, _LONGEST_RETRY_SECONDS)


class LoopSession(AsyncSession):
    """An ``AsyncSession`` on a :func:`create_engine` engine that runs without greenlets.

    The methods the agent uses call the synchronous session directly; results are buffered as
    an ``AsyncSession`` buffers them. Every other method keeps the greenlet path.
    """

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.get(*args, **kwargs)

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.execute(*args, **_buffered(kwargs))

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.scalar(*args, **_buffered(kwargs))

    async def scalars(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.scalars(*args, **_buffered(kwargs))

    async def flush(self, *args: Any, **kwargs: Any) -> None:
        self.sync_session.flush(*args, **kwargs)

    async def delete(self, *args: Any, **kwargs: Any) -> None:
        self.sync_session.delete(*args, **kwargs)


def _buffered(kwargs: dict[str, Any]) -> dict[str, Any]:
    options = kwargs.get("execution_options") or {}
    return kwargs | {"execution_options": {**options, "prebuffer_rows": True}}
