"""Database tables and engine of the agent (async SQLAlchemy 2; SQLite or PostgreSQL).

On start the schema is upgraded to the newest Alembic migration (``agent/_migrations/``).
Every write goes through :meth:`Database.transaction`; on SQLite one writer at a time (WAL,
``BEGIN IMMEDIATE``), with statements run on the event loop's thread (``agent._sqlite``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Insert,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Update,
    bindparam,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Result, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, make_transient_to_detached, mapped_column
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import FromClause
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from agent._claims import Leased
from agent._migrations import MIGRATIONS
from agent._prepared import Rows, prepared, run_on_driver, run_prepared
from agent._sqlite import LoopSession, begin_immediate, checkpointer, create_engine
from registry.schema_migrations import NAMING_CONVENTION, UtcDateTime

__all__ = [
    "SELECT_DOSSIER",
    "Base",
    "ClientRow",
    "ConsentRow",
    "Database",
    "DeliveryAttemptRow",
    "DeviceRow",
    "DossierRow",
    "InboundMessageRow",
    "OutboxRow",
    "ProvisionRow",
    "TransitionRow",
    "add_rows",
    "append",
    "execute",
    "insert_persistent",
    "load_dossier",
    "prepared",
    "update_dossier",
]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UtcDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
        bytes: LargeBinary,
    }


class ClientRow(Base):
    """A client in the register of current provisions."""

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bsn: Mapped[str] = mapped_column(String(9), unique=True)
    # Name, address, contact preferences, representative, indicatie: wire-shaped JSON.
    details: Mapped[dict[str, Any]]
    imported_at: Mapped[datetime]


class DeviceRow(Base):
    """A device provided to a client now."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("client_id", "device_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(64))
    iso_code: Mapped[str] = mapped_column(String(8))
    movable: Mapped[bool]
    details: Mapped[dict[str, Any]]


class DossierRow(Base):
    """One move of one client, seen from one side."""

    __tablename__ = "dossiers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    side: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(32), index=True)
    partner_oin: Mapped[str | None] = mapped_column(String(20))
    partner_gemeentecode: Mapped[str | None] = mapped_column(String(4))
    client_bsn: Mapped[str | None] = mapped_column(String(9))
    move_date: Mapped[date | None]
    # The new address for the offer (departing side), wire-shaped.
    new_address: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TransitionRow(Base):
    """One state change of a dossier, with time and cause."""

    __tablename__ = "transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossiers.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    cause: Mapped[str] = mapped_column(Text)


class ConsentRow(Base):
    """The client's consent (or refusal) as a recorded fact."""

    __tablename__ = "consents"

    consent_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossiers.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    data_kinds: Mapped[list[Any]]
    device_ids: Mapped[list[Any]]
    channel: Mapped[str] = mapped_column(String(16))
    granted_by: Mapped[str] = mapped_column(String(16))
    granted_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    # Issue 6: a representative's name and relation; the consulent who recorded it by hand.
    representative_name: Mapped[str | None] = mapped_column(String(200), default=None)
    representative_relation: Mapped[str | None] = mapped_column(String(32), default=None)
    recorded_by: Mapped[str | None] = mapped_column(String(100), default=None)
    withdrawn_at: Mapped[datetime | None] = mapped_column(default=None)


class InboundMessageRow(Base):
    """A received protocol message: exact bytes, signature, digest, and the receipt given."""

    __tablename__ = "inbound_messages"

    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dossier_id: Mapped[str] = mapped_column(String(36), index=True)
    sender_oin: Mapped[str] = mapped_column(String(20))
    message_type: Mapped[str] = mapped_column(String(32))
    body: Mapped[bytes]
    signature: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(60))
    received_at: Mapped[datetime]
    receipt_body: Mapped[bytes]


class OutboxRow(Leased, Base):
    """A message or CloudEvent to deliver; committed with the state change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dossier_id", "sequence"),
        Index("ix_outbox_due", "state", "execute_after"),
    )

    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dossier_id: Mapped[str] = mapped_column(String(36))
    sequence: Mapped[int]
    # Delivery order is kept per stream: one dossier's messages to one destination.
    stream: Mapped[str] = mapped_column(String(80), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    message_type: Mapped[str] = mapped_column(String(64))
    destination_oin: Mapped[str | None] = mapped_column(String(20))
    destination_url: Mapped[str | None] = mapped_column(Text)
    body: Mapped[bytes]
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    execute_after: Mapped[datetime]
    created_at: Mapped[datetime]
    # Dead after this moment (created_at + max age; reset by a requeue).
    deadline: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    receipt_body: Mapped[bytes | None]
    receipt_signature: Mapped[str | None] = mapped_column(Text)


class DeliveryAttemptRow(Base):
    """One delivery attempt of an outbox message."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("outbox.message_id"), index=True)
    at: Mapped[datetime]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)


class ProvisionRow(Base):
    """Receiving side: the decision on one device and the continued provision."""

    __tablename__ = "continued_provisions"
    __table_args__ = (UniqueConstraint("dossier_id", "device_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossiers.id"), index=True)
    device_id: Mapped[str] = mapped_column(String(64))
    iso_code: Mapped[str] = mapped_column(String(8))
    outcome: Mapped[str] = mapped_column(String(16))
    reason_code: Mapped[str | None] = mapped_column(String(32))
    reason_text: Mapped[str | None] = mapped_column(Text)
    alternative: Mapped[str | None] = mapped_column(Text)
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]


# How long a write waits for another process (a CLI command) that holds the SQLite write lock.
_SQLITE_WRITE_WAIT_SECONDS = 10.0


class Database:
    """The agent's engine and sessions; one writer at a time on SQLite."""

    def __init__(self, url: str) -> None:
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        # SQLite: statements on the event loop's thread (agent._sqlite), sessions without greenlets.
        self.engine: AsyncEngine = (
            create_engine(url) if self.is_sqlite else create_async_engine(url)
        )
        self._checkpointer = checkpointer(url) if self.is_sqlite else None
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock()
        self._reader: PoolProxiedConnection | None = None
        self._writer: LoopSession | None = None

    async def create_tables(self) -> None:
        """Bring the schema to the newest migration (Alembic upgrade to head; issue 8)."""
        await MIGRATIONS.upgrade(self.engine)

    async def dispose(self) -> None:
        if self._reader is not None:
            self._reader.close()  # back to the pool, which closes it below
            self._reader = None
        if self._checkpointer is not None:
            await self._checkpointer.close()
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error."""
        if not self.is_sqlite:
            async with self._sessions.begin() as session:
                yield session
            return
        # SQLite (agent._sqlite): no greenlet; the write lock is taken before the first statement.
        async with self._write_lock:
            # One writer at a time, so one session object serves them all (closed in between).
            session = self._writer = self._writer or LoopSession(
                self.engine, expire_on_commit=False
            )
            session.sync_session.info.clear()
            try:
                with session.sync_session.begin():
                    await begin_immediate(session, wait_seconds=_SQLITE_WRITE_WAIT_SECONDS)
                    yield session
            finally:
                session.sync_session.close()
            if self._checkpointer is not None:
                self._checkpointer.committed()

    async def read(self, statement: Executable, parameters: Any = None) -> Result[Any] | Rows:
        """One read statement outside any transaction (the rows as committed now).

        On SQLite a prepared statement runs on one connection kept for such reads, with no
        session around it.
        """
        if self.is_sqlite:
            if self._reader is None:
                self._reader = self.engine.sync_engine.raw_connection()
            driver = self._reader.driver_connection
            assert isinstance(driver, sqlite3.Connection)
            found = run_on_driver(driver, self.engine.dialect, statement, parameters)
            if found is not None:
                return found
        async with self.reading() as session:
            return Rows((await execute(session, statement, parameters)).all())

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only."""
        if not self.is_sqlite:
            async with self._sessions() as session:
                yield session
            return
        session = LoopSession(self.engine, expire_on_commit=False)
        try:
            yield session
        finally:
            session.sync_session.close()


# --- Core statements on the hot path ------------------------------------------------------------
# The ORM's unit of work costs several times a row's own INSERT (docs/performance.md, Agent). Rows
# that are only ever added (history, logs, attempts, received messages) are written with one
# prebuilt INSERT per table, and the reads of a handover use prebuilt Core statements.


async def execute(
    session: AsyncSession, statement: Executable, parameters: Any = None
) -> Result[Any] | Rows:
    """Run a Core statement in the session's transaction, past the ORM's execute path.

    No autoflush: what the statement reads or refers to must be flushed already. On SQLite a
    statement marked :func:`prepared` runs straight on ``sqlite3`` (``agent._prepared``).
    """
    if isinstance(session, LoopSession):
        connection = session.sync_session.connection()
        found = run_prepared(connection, statement, parameters)
        return found if found is not None else connection.execute(statement, parameters)
    return await (await session.connection()).execute(statement, parameters)


async def append(session: AsyncSession, *rows: Base) -> None:
    """Insert new ORM rows, one INSERT per table (executemany), without the unit of work.

    For rows that nothing changes later in the same transaction and whose generated keys nobody
    reads. Pending ORM changes are flushed first, since a row may refer to them.
    """
    for row in rows:
        await add_rows(session, type(row), _column_values(row))


async def add_rows(session: AsyncSession, model: type[Base], *rows: dict[str, Any]) -> None:
    """Insert new rows of ``model`` given as column values, as :func:`append` does.

    Cheaper than ORM objects (no instrumentation) where a flow only writes a record.
    """
    await session.flush()
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for values in rows:
        groups.setdefault(tuple(values), []).append(values)
    for group in groups.values():
        await execute(session, _insert(model.__table__), group)


async def load_dossier(
    session: AsyncSession, dossier_id: str, *, lock: bool = False
) -> DossierRow | None:
    """The dossier as a persistent ORM object of this session, or None.

    ``lock``: ``FOR UPDATE`` on PostgreSQL (replicas take turns per dossier; SQLite has one
    writer). On SQLite the row is read with one prepared statement and attached to the session
    as loaded, which costs a fraction of the ORM's query.
    """
    if not isinstance(session, LoopSession):
        query = _LOCKED_DOSSIER_ROW if lock else _DOSSIER_ROW
        loaded: DossierRow | None = (await session.scalars(query, {"id": dossier_id})).first()
        return loaded
    sync = session.sync_session
    known = sync.identity_map.get(sync.identity_key(DossierRow, dossier_id))
    if isinstance(known, DossierRow):
        return known
    await session.flush()
    found = (await execute(session, SELECT_DOSSIER, {"id": dossier_id})).first()
    if found is None:
        return None
    dossier = DossierRow(**found._asdict())
    make_transient_to_detached(dossier)
    session.add(dossier)
    return dossier


async def insert_persistent(session: AsyncSession, row: Base) -> None:
    """Insert a new row with one INSERT and keep it in the session as a persistent object.

    Later attribute changes are tracked as usual. The row's primary key must be set; columns not
    given hold their default, as the database does.
    """
    await append(session, row)
    given = row.__dict__
    missing = [(key, column) for key, column in _columns(type(row)) if key not in given]
    make_transient_to_detached(row)
    session.add(row)
    table = row.__table__
    for key, column in missing:
        default = table.c[column].default
        value = default.arg if isinstance(default, ScalarElementColumnDefault) else None
        set_committed_value(row, key, value)


@cache
def _insert(table: FromClause) -> Insert:
    assert isinstance(table, Table)
    return prepared(insert(table))


@cache
def _columns(mapped: type[Base]) -> tuple[tuple[str, str], ...]:
    return tuple((prop.key, prop.columns[0].key) for prop in inspect(mapped).column_attrs)


def _column_values(row: Base) -> dict[str, Any]:
    # Only the attributes given: a column left out gets its default, as with the ORM.
    given = row.__dict__
    return {column: given[key] for key, column in _columns(type(row)) if key in given}


async def update_dossier(session: AsyncSession, dossier: DossierRow, **values: Any) -> None:
    """Change columns of a dossier with one UPDATE now, instead of the unit of work later."""
    if not inspect(dossier).persistent:  # not inserted yet: the INSERT will carry the values
        for key, value in values.items():
            setattr(dossier, key, value)
        return
    parameters = {f"new_{key}": value for key, value in values.items()}
    await execute(
        session, _dossier_update(frozenset(values)), {"dossier": dossier.id, **parameters}
    )
    for key, value in values.items():
        set_committed_value(dossier, key, value)


@cache
def _dossier_update(keys: frozenset[str]) -> Update:
    columns = DossierRow.__table__.c
    return prepared(
        update(DossierRow)
        .where(columns.id == bindparam("dossier"))
        .values({key: bindparam(f"new_{key}") for key in keys})
    )


_DOSSIER_ROW = select(DossierRow).where(DossierRow.id == bindparam("id"))
_LOCKED_DOSSIER_ROW = _DOSSIER_ROW.with_for_update()
# One dossier's columns as a row (parameter ``id``).
SELECT_DOSSIER = prepared(
    select(DossierRow.__table__).where(DossierRow.__table__.c.id == bindparam("id"))
)
