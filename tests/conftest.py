"""Shared fixtures: an empty database per test, on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# The whole run fails when a test BSN appears in any log line.
from tests._log_scan import pytest_sessionfinish, pytest_sessionstart  # noqa: F401 - hooks

TEST_DATABASE_URL_VARIABLE = "MEEVERHUIZEN_TEST_DATABASE_URL"
REPOSITORY = Path(__file__).resolve().parent.parent


def _backends() -> list[str]:
    backends = ["sqlite"]
    if os.environ.get(TEST_DATABASE_URL_VARIABLE):
        backends.append("postgresql")
    return backends


def _postgresql_database(server_url: str) -> Iterator[str]:
    """Create a fresh database on the test server, yield its async URL, drop it afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(server_url)
    admin_dsn = server.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    name = f"meeverhuizen_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database private to this test: a SQLite file or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.sqlite'}"
    else:
        yield from _postgresql_database(os.environ[TEST_DATABASE_URL_VARIABLE])
