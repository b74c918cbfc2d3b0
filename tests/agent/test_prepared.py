"""Prepared statements (agent._prepared): on SQLite they store and read exactly what SQLAlchemy's
own execution stores and reads, raise SQLAlchemy's errors, and leave what they cannot do to it."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

import agent._prepared
from agent._db import Database, execute, prepared
from registry.schema_migrations import UtcDateTime

METADATA = MetaData()
THINGS = Table(
    "things",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(20), unique=True, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("day", Date),
    Column("details", JSON),
    Column("flag", Boolean),
    Column("blob", LargeBinary),
    Column("count", Integer, nullable=False, default=7),
    Column("token", String(36), default=lambda: str(uuid.uuid4())),
)

AT = datetime(2025, 3, 3, 9, 30, 15, 123456, tzinfo=UTC)
VALUES = {
    "name": "first",
    "at": AT,
    "day": date(2025, 4, 1),
    "details": {"a": [1, "b"], "ü": None},
    "flag": True,
    "blob": b"\x00\xff bytes",
    "token": "fixed",
}
# Built once, as the agent's own prepared statements are.
INSERT = prepared(insert(THINGS))
BY_NAME = prepared(select(THINGS).where(THINGS.c.name == bindparam("name")))
RENAME = prepared(
    update(THINGS).where(THINGS.c.name == bindparam("old")).values(name=bindparam("new"))
)
WITH_LITERAL = prepared(
    insert(THINGS).from_select(
        ["name", "at", "count"],
        select(bindparam("name", type_=String), bindparam("at", type_=UtcDateTime), literal(3)),
    )
)
IN_LIST = prepared(
    select(THINGS.c.name).where(THINGS.c.name.in_(bindparam("names", expanding=True)))
)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'things.sqlite'}")
    async with database.engine.begin() as connection:
        await connection.run_sync(METADATA.create_all)
    yield database
    await database.dispose()


def _stored(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT * FROM things ORDER BY name").fetchall()


def _plans_used() -> list[bool]:
    return [plan is not None for plan in agent._prepared._PLANS.values()]


async def test_prepared_insert_stores_what_sqlalchemy_stores(
    database: Database, tmp_path: Path
) -> None:
    async with database.transaction() as session:
        await execute(session, INSERT, VALUES)
        # The same row through SQLAlchemy's own execution (not a prepared statement).
        await execute(session, insert(THINGS), VALUES | {"name": "second"})
    first, second = _stored(tmp_path / "things.sqlite")
    assert first[2:] == second[2:]  # all but the key and the name
    assert first[0] != second[0]
    assert first[7] == 7  # the column's fixed default


async def test_none_is_stored_as_sqlalchemy_stores_it(database: Database, tmp_path: Path) -> None:
    empty = VALUES | {"details": None, "day": None, "flag": None, "blob": None}
    async with database.transaction() as session:
        await execute(session, INSERT, empty)
        await execute(session, insert(THINGS), empty | {"name": "second"})
    first, second = _stored(tmp_path / "things.sqlite")
    assert first[2:] == second[2:]
    assert first[4] == "null"  # a JSON column keeps None as JSON null, not SQL NULL


async def test_prepared_select_reads_what_sqlalchemy_reads(database: Database) -> None:
    async with database.transaction() as session:
        await execute(session, INSERT, VALUES)
    async with database.reading() as session:
        mine = (await execute(session, BY_NAME, {"name": "first"})).first()
        theirs = (await session.execute(select(THINGS).where(THINGS.c.name == "first"))).one()
    assert tuple(mine) == tuple(theirs)
    assert mine.at == AT
    assert mine.at.tzinfo is not None
    assert mine.details == VALUES["details"]
    assert mine.flag is True
    assert (await _missing(database)) is None


async def _missing(database: Database) -> Any:
    async with database.reading() as session:
        return (await execute(session, BY_NAME, {"name": "nobody"})).first()


async def test_update_many_literal_and_default_values(database: Database, tmp_path: Path) -> None:
    async with database.transaction() as session:
        await execute(session, INSERT, [VALUES, VALUES | {"name": "other"}])
        await execute(session, RENAME, [{"old": "first", "new": "one"}, {"old": "x", "new": "y"}])
        await execute(session, WITH_LITERAL, {"name": "from select", "at": AT})
    names = {row[1]: row for row in _stored(tmp_path / "things.sqlite")}
    assert set(names) == {"one", "other", "from select"}
    assert names["from select"][7] == 3
    assert names["from select"][2] == "2025-03-03 09:30:15.123456"


async def test_a_constraint_violation_is_sqlalchemys_error_and_nothing_stays(
    database: Database, tmp_path: Path
) -> None:
    async def twice() -> None:
        async with database.transaction() as session:
            await execute(session, INSERT, VALUES | {"name": "before"})
            await execute(session, INSERT, VALUES)
            await execute(session, INSERT, VALUES)

    with pytest.raises(IntegrityError):
        await twice()
    assert _stored(tmp_path / "things.sqlite") == []


async def test_what_it_cannot_run_goes_through_sqlalchemy(database: Database) -> None:
    agent._prepared._PLANS.clear()
    async with database.transaction() as session:
        # A default computed per row (the token) and an expanding IN list.
        await execute(session, INSERT, {k: v for k, v in VALUES.items() if k != "token"})
        found = (await execute(session, IN_LIST, {"names": ["first", "second"]})).all()
    assert [row.name for row in found] == ["first"]
    assert _plans_used() == [False, False]
    async with database.reading() as session:
        row = (await execute(session, BY_NAME, {"name": "first"})).first()
    assert len(row.token) == 36
