"""Alembic migrations of the agent and the registry: upgrade, drift, downgrade, CLI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Column, MetaData, String, inspect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from agent.cli import cli
from agent.storage.database import MIGRATIONS as AGENT_MIGRATIONS
from registry._migrations import MIGRATIONS as REGISTRY_MIGRATIONS
from registry.server_kit.migrations import SchemaMigrations, SchemaNotMigrated
from tests.conftest import write_utrecht_config

SCHEMAS = {"agent": AGENT_MIGRATIONS, "registry": REGISTRY_MIGRATIONS}


@pytest.fixture(params=sorted(SCHEMAS))
def migrations(request: pytest.FixtureRequest) -> SchemaMigrations:
    return SCHEMAS[request.param]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def migrated(migrations: SchemaMigrations, engine: AsyncEngine) -> AsyncEngine:
    """The engine, its database upgraded to the head of the schema."""
    await migrations.upgrade(engine)
    return engine


async def _table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_upgrade_from_empty_reaches_head_with_every_table(
    migrations: SchemaMigrations, engine: AsyncEngine
) -> None:
    assert await migrations.current(engine) is None
    await migrations.upgrade(engine)
    assert await migrations.current(engine) == migrations.head()
    expected = set(migrations.metadata().tables) | {migrations.version_table}
    assert await _table_names(engine) == expected


async def test_models_and_migrations_do_not_drift(
    migrations: SchemaMigrations, migrated: AsyncEngine
) -> None:
    """A model change without a revision fails here: add one (docs/operations.md, Upgrading)."""
    assert await migrations.differences(migrated) == []


async def test_a_model_change_without_revision_is_found(
    migrations: SchemaMigrations, migrated: AsyncEngine
) -> None:
    changed = MetaData(naming_convention=migrations.metadata().naming_convention)
    for table in migrations.metadata().tables.values():
        table.to_metadata(changed)
    first = sorted(changed.tables)[0]
    changed.tables[first].append_column(Column("added_later", String(10)))
    drifted = SchemaMigrations(
        name=migrations.name,
        module=migrations.module,
        directory=migrations.directory,
        metadata=lambda: changed,
    )
    differences = await drifted.differences(migrated)
    assert [(d[0], d[3].name) for d in differences] == [("add_column", "added_later")]


async def test_downgrade_to_base_then_upgrade_again(
    migrations: SchemaMigrations, migrated: AsyncEngine
) -> None:
    await migrations.downgrade(migrated)
    assert await migrations.current(migrated) is None
    assert await _table_names(migrated) <= {migrations.version_table}
    await migrations.upgrade(migrated)
    assert await migrations.differences(migrated) == []


async def test_upgrading_twice_changes_nothing(
    migrations: SchemaMigrations, migrated: AsyncEngine
) -> None:
    await migrations.upgrade(migrated)
    assert await migrations.current(migrated) == migrations.head()


async def test_tables_made_before_migrations_are_refused(
    migrations: SchemaMigrations, engine: AsyncEngine
) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(migrations.metadata().create_all)
    with pytest.raises(SchemaNotMigrated, match="made before migrations"):
        await migrations.upgrade(engine)


async def test_agent_and_registry_share_one_database(engine: AsyncEngine) -> None:
    """Each schema keeps its own version table, so one database can hold both."""
    await AGENT_MIGRATIONS.upgrade(engine)
    await REGISTRY_MIGRATIONS.upgrade(engine)
    assert await AGENT_MIGRATIONS.current(engine) == AGENT_MIGRATIONS.head()
    assert await REGISTRY_MIGRATIONS.current(engine) == REGISTRY_MIGRATIONS.head()


async def test_replicas_starting_together_take_turns(
    migrations: SchemaMigrations, database_url: str
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite serves one process; the advisory lock is PostgreSQL's")
    engines = [create_async_engine(database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(migrations.upgrade(engine) for engine in engines))
        assert await migrations.current(engines[0]) == migrations.head()
    finally:
        for engine in engines:
            await engine.dispose()


def test_offline_sql_creates_every_table(migrations: SchemaMigrations) -> None:
    sql = migrations.offline_sql("postgresql+psycopg://user@host/database")
    for name in migrations.metadata().tables:
        assert f"CREATE TABLE {name} (" in sql
    assert f"INSERT INTO {migrations.version_table}" in sql


def test_registry_migrate_command(database_url: str) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["registry", "migrate", "--database-url", database_url])
    assert first.exit_code == 0, first.output
    assert f"from empty to {REGISTRY_MIGRATIONS.head()}" in first.output
    again = runner.invoke(cli, ["registry", "migrate", "--database-url", database_url])
    assert again.exit_code == 0, again.output
    assert "already at" in again.output


def test_agent_migrate_command(database_url: str, tmp_path: Path) -> None:
    config = write_utrecht_config(tmp_path / "agent.toml", database_url)
    result = CliRunner().invoke(cli, ["agent", "migrate", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert f"from empty to {AGENT_MIGRATIONS.head()}" in result.output
    printed = CliRunner().invoke(cli, ["agent", "migrate", "--sql", "--config", str(config)])
    assert printed.exit_code == 0, printed.output
    assert "CREATE TABLE dossiers (" in printed.output


def test_agent_migrate_command_migrates_one_organisations_schema(
    database_url: str, tmp_path: Path
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("a schema per organisation is PostgreSQL's; SQLite has a file each")
    config = write_utrecht_config(tmp_path / "agent.toml", database_url)
    with config.open("a", encoding="utf-8") as handle:
        handle.write('database_schema = "utrecht"\n')
    result = CliRunner().invoke(cli, ["agent", "migrate", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert f"from empty to {AGENT_MIGRATIONS.head()}" in result.output

    async def tables() -> tuple[set[str], set[str]]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: (
                        set(inspect(sync).get_table_names(schema="utrecht")),
                        set(inspect(sync).get_table_names(schema="public")),
                    )
                )
        finally:
            await engine.dispose()

    utrecht, public = asyncio.run(tables())
    assert set(AGENT_MIGRATIONS.metadata().tables) <= utrecht
    assert public == set()
