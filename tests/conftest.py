"""Shared fixtures: an empty database per test, on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocol.jwk import generate_private_jwk, public_jwk

# The whole run fails when a test BSN appears in any log line.
from tests._log_scan import pytest_sessionfinish, pytest_sessionstart  # noqa: F401 - hooks

TEST_DATABASE_URL_VARIABLE = "MEEVERHUIZEN_TEST_DATABASE_URL"
REPOSITORY = Path(__file__).resolve().parent.parent
VECTORS = REPOSITORY / "tests" / "vectors"


def load_vector(name: str) -> Any:
    """A test vector file of ``tests/vectors``, parsed."""
    return json.loads((VECTORS / name).read_text("utf-8"))


def write_agent_config(path: Path, values: dict[str, str]) -> Path:
    """An agent's TOML config at ``path``, with a new signing key and registry trust anchor."""
    key = path.parent / "key.jwk"
    key.write_text(json.dumps(generate_private_jwk("EdDSA")))
    anchor = path.parent / "anchor.jwk"
    anchor.write_text(json.dumps(public_jwk(generate_private_jwk("EdDSA"))))
    settings = values | {
        "signing_key_file": str(key),
        "registry_url": "http://registry.test",
        "registry_trust_anchor_file": str(anchor),
    }
    path.write_text("".join(f"{name} = {json.dumps(value)}\n" for name, value in settings.items()))
    return path


def write_utrecht_config(path: Path, database_url: str) -> Path:
    """The config of Utrecht's agent at ``path``, on the database at ``database_url``."""
    utrecht = {
        "oin": "00000001002220647000",
        "gemeentecode": "0344",
        "name": "Gemeente Utrecht",
        "database_url": database_url,
        "public_base_url": "http://utrecht.test",
    }
    return write_agent_config(path, utrecht)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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


# The slowest test file is handed out first, so it does not run alone at the end of a run; then
# the files with the most tests (xdist hands files out in this order: --no-loadscope-reorder).
_FIRST = ("tests/simulation/test_simulate.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    per_file = Counter(item.nodeid.split("::")[0] for item in items)
    items.sort(
        key=lambda item: (
            not item.nodeid.startswith(_FIRST),
            -per_file[item.nodeid.split("::")[0]],
        )
    )
