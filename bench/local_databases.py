"""Fresh agent databases for the benchmarks: a SQLite file or a PostgreSQL database each.

PostgreSQL: the server at 127.0.0.1:5432 (user postgres, trust authentication); every database
made here is dropped again when the ``fresh_databases`` block ends.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

DatabaseKind = Literal["sqlite", "postgresql"]
DATABASE_KINDS: tuple[DatabaseKind, ...] = ("sqlite", "postgresql")
POSTGRESQL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
_COMPLETED = "SELECT COUNT(*) FROM dossiers WHERE state = 'completed'"
# FORCE ends the connections an agent process may still hold.
_DROP = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")


class Databases:
    """Makes one fresh database per name and reads completion counts from them."""

    def __init__(self, kind: DatabaseKind, folder: Path) -> None:
        self.kind = kind
        self._folder = folder
        self._created: list[str] = []
        self._readers: dict[str, psycopg.Connection[tuple[int]]] = {}

    def create(self, name: str) -> str:
        """A new, empty database: its SQLAlchemy URL for the agent's ``database_url``."""
        if self.kind == "sqlite":
            return f"sqlite+aiosqlite:///{self._folder / f'{name}.sqlite'}"
        database = f"bench_{os.getpid()}_{name}"
        with psycopg.connect(POSTGRESQL_SERVER, autocommit=True) as server:
            server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        self._created.append(database)
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"

    def drop(self, url: str) -> None:
        """Drop a PostgreSQL database made here (a SQLite file stays in the folder)."""
        database = make_url(url).database
        if self.kind == "sqlite" or database not in self._created:
            return
        reader = self._readers.pop(url, None)
        if reader is not None:
            reader.close()
        with psycopg.connect(POSTGRESQL_SERVER, autocommit=True) as server:
            server.execute(_DROP.format(sql.Identifier(database)))
        self._created.remove(database)

    def completed(self, url: str) -> int:
        """How many dossiers are ``completed`` (read by SQL, not through the agent's API)."""
        if self.kind == "sqlite":
            path = make_url(url).database
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
                return int(connection.execute(_COMPLETED).fetchone()[0])
        if url not in self._readers:
            dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
            self._readers[url] = psycopg.connect(dsn, autocommit=True)
        row = self._readers[url].execute(_COMPLETED).fetchone()
        return 0 if row is None else int(row[0])

    def drop_all(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()
        with psycopg.connect(POSTGRESQL_SERVER, autocommit=True) as server:
            for database in self._created:
                server.execute(_DROP.format(sql.Identifier(database)))
        self._created.clear()


@contextmanager
def fresh_databases(kind: DatabaseKind, folder: Path) -> Iterator[Databases]:
    """Databases made in the block; PostgreSQL ones are dropped at its end."""
    databases = Databases(kind, folder)
    try:
        yield databases
    finally:
        if kind == "postgresql":
            databases.drop_all()
