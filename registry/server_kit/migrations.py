"""Alembic migrations of a service's schema: upgrade on start, offline SQL, drift, new revisions.

Used by the registry (``registry/_migrations/``) and the agent (``agent/storage/_migrations/``);
each has its own script directory, its own version table and its own revisions. There is no
``alembic.ini``: the configuration is built here, so the migrations ship inside the wheel.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, inspect, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.types import DateTime, TypeDecorator

__all__ = [
    "NAMING_CONVENTION",
    "SchemaMigrations",
    "SchemaNotMigrated",
    "UtcDateTime",
    "developer_command",
    "migrate_command",
]

# Constraint names are derived, so a migration can name what it drops (SQLite batch mode needs it).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
_FILE_TEMPLATE = "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s"


class SchemaNotMigrated(Exception):
    """The database has the service's tables but no version table: made before migrations."""

    code = "schema_not_migrated"


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        moment = value.astimezone(UTC)
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _render_item(type_: str, item: Any, _context: AutogenContext) -> str | Literal[False]:
    # A TypeDecorator (UTC datetimes) is stored as its plain type: revisions never import models.
    if type_ == "type" and isinstance(item, TypeDecorator):
        return f"sa.{item.impl!r}"
    return False


class SchemaMigrations:
    """The migrations of one service: ``name`` prefixes the version table and the lock."""

    def __init__(
        self, *, name: str, module: str, directory: Path, metadata: Callable[[], MetaData]
    ) -> None:
        self.name = name
        self.module = module
        self.directory = directory
        self._metadata = metadata
        self.version_table = f"{name}_alembic_version"
        digest = hashlib.sha256(f"meeverhuizen-{name}-migrations".encode()).digest()
        self._lock_key = int.from_bytes(digest[:8], "big", signed=True)

    def metadata(self) -> MetaData:
        """Every table of the service (the models, as the application maps them)."""
        return self._metadata()

    def config(
        self, *, database_url: str | None = None, output: io.StringIO | None = None
    ) -> Config:
        """An Alembic configuration for this service (no ``alembic.ini`` involved)."""
        config = Config(output_buffer=output)
        config.set_main_option("script_location", str(self.directory))
        config.set_main_option("path_separator", "os")
        config.set_main_option("file_template", _FILE_TEMPLATE)
        if database_url is not None:
            config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
        config.attributes["migrations"] = self
        return config

    def head(self) -> str | None:
        """The newest revision."""
        return ScriptDirectory.from_config(self.config()).get_current_head()

    async def upgrade(self, engine: AsyncEngine, revision: str = "head") -> None:
        """Upgrade to ``revision`` in one transaction; replicas starting together take turns."""
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Held until commit: a second replica waits, then finds the schema at head.
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": self._lock_key}
                )
            await connection.run_sync(self._refuse_unversioned)
            await connection.run_sync(self._run, command.upgrade, revision)

    def upgrade_database(
        self, database_url: str, *, schema: str | None = None
    ) -> tuple[str | None, str | None]:
        """Upgrade the database at ``database_url`` to head; its revisions before and after.

        ``schema`` (PostgreSQL): the tables of one organisation of several in the database.
        """
        return asyncio.run(self._upgrade_database(database_url, schema))

    async def downgrade(self, engine: AsyncEngine, revision: str = "base") -> None:
        """Downgrade to ``revision`` (``base``: no tables left)."""
        async with engine.begin() as connection:
            await connection.run_sync(self._run, command.downgrade, revision)

    async def current(self, engine: AsyncEngine) -> str | None:
        """The revision the database is at (None: not migrated)."""
        async with engine.connect() as connection:
            return await connection.run_sync(self._current)

    async def differences(self, engine: AsyncEngine) -> list[Any]:
        """What autogenerate finds between the database and the models (empty: no drift)."""
        async with engine.connect() as connection:
            return await connection.run_sync(self._compare)

    def offline_sql(self, database_url: str, revision: str = "head") -> str:
        """The SQL that upgrades an empty database of ``database_url``'s kind to ``revision``."""
        output = io.StringIO()
        command.upgrade(self.config(database_url=database_url, output=output), revision, sql=True)
        return output.getvalue()

    def new_revision(self, message: str, *, database_url: str | None = None) -> Path:
        """Autogenerate a revision from the models against a database at head; its file path.

        Without ``database_url`` a temporary SQLite database is upgraded to head first.
        """
        if database_url is not None:
            return asyncio.run(self._new_revision(database_url, message))
        with tempfile.TemporaryDirectory() as directory:
            url = f"sqlite+aiosqlite:///{Path(directory) / 'head.sqlite'}"
            return asyncio.run(self._new_revision(url, message))

    def run_environment(self) -> None:
        """The body of ``env.py``: run the migrations online (given connection) or offline."""
        from alembic import context

        options: dict[str, Any] = {
            "target_metadata": self.metadata(),
            "version_table": self.version_table,
            "compare_type": True,
            "render_item": _render_item,
        }
        connection = context.config.attributes.get("connection")
        if connection is None:
            url = context.config.get_main_option("sqlalchemy.url")
            is_sqlite = make_url(url or "").get_backend_name() == "sqlite"
            context.configure(url=url, literal_binds=True, render_as_batch=is_sqlite, **options)
        else:
            is_sqlite = connection.dialect.name == "sqlite"
            context.configure(connection=connection, render_as_batch=is_sqlite, **options)
        with context.begin_transaction():
            context.run_migrations()

    async def _upgrade_database(
        self, database_url: str, schema: str | None
    ) -> tuple[str | None, str | None]:
        url = make_url(database_url)
        if schema is not None:
            engine = create_async_engine(url)
            try:
                async with engine.begin() as connection:
                    await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            finally:
                await engine.dispose()
            url = url.update_query_dict({"options": f"-csearch_path={schema}"})
        engine = create_async_engine(url)
        try:
            before = await self.current(engine)
            await self.upgrade(engine)
            return before, await self.current(engine)
        finally:
            await engine.dispose()

    async def _new_revision(self, database_url: str, message: str) -> Path:
        engine = create_async_engine(database_url)
        try:
            await self.upgrade(engine)
            async with engine.connect() as connection:
                script = await connection.run_sync(
                    self._run, command.revision, message=message, autogenerate=True
                )
        finally:
            await engine.dispose()
        if script is None or isinstance(script, list):
            raise RuntimeError("alembic made no single revision")
        return Path(script.path)

    def _run(
        self, connection: Connection, action: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        config = self.config()
        config.attributes["connection"] = connection
        return action(config, *args, **kwargs)

    def _refuse_unversioned(self, connection: Connection) -> None:
        names = set(inspect(connection).get_table_names())
        if self.version_table not in names and names & set(self.metadata().tables):
            raise SchemaNotMigrated(
                f"the {self.name} database has tables but no {self.version_table}: it was made "
                "before migrations; see docs/operations.md, Upgrading"
            )

    def _current(self, connection: Connection) -> str | None:
        context = MigrationContext.configure(connection, opts={"version_table": self.version_table})
        return context.get_current_revision()

    def _compare(self, connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={"version_table": self.version_table, "compare_type": True},
        )
        return list(compare_metadata(context, self.metadata()))


def developer_command(migrations: SchemaMigrations, arguments: list[str] | None = None) -> int:
    """``python -m <migrations module>``: ``revision -m MESSAGE`` or ``check`` (drift)."""
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m {migrations.module}")
    actions = parser.add_subparsers(dest="action", required=True)
    revision = actions.add_parser("revision", help="autogenerate a revision from the models")
    revision.add_argument("-m", "--message", required=True)
    revision.add_argument("--database-url", help="compare against this database (default: SQLite)")
    actions.add_parser("check", help="exit 1 when the models differ from the migrations")
    options = parser.parse_args(arguments)
    if options.action == "check":
        differences = asyncio.run(_differences_at_head(migrations))
        for difference in differences:
            print(difference)
        return 1 if differences else 0
    path = migrations.new_revision(options.message, database_url=options.database_url)
    _format(path)
    print(f"wrote {path}; review it (types, defaults, names) before committing")
    return 0


async def _differences_at_head(migrations: SchemaMigrations) -> list[Any]:
    with tempfile.TemporaryDirectory() as directory:
        engine = create_async_engine(f"sqlite+aiosqlite:///{Path(directory) / 'head.sqlite'}")
        try:
            await migrations.upgrade(engine)
            return await migrations.differences(engine)
        finally:
            await engine.dispose()


def _format(path: Path) -> None:
    import shutil
    import subprocess
    import sys

    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        return
    # Generated code in the project's style; a failure here leaves the file as alembic wrote it.
    for arguments in (["format"], ["check", "--fix"], ["format"]):
        subprocess.run([ruff, *arguments, "--quiet", str(path)], check=False)  # noqa: S603


def migrate_command(
    migrations: SchemaMigrations, database_url: str, *, sql: bool, schema: str | None = None
) -> None:
    """What ``meeverhuizen agent|registry migrate`` does: upgrade to head, or print its SQL."""
    import click
    from sqlalchemy.exc import SQLAlchemyError

    if sql:
        click.echo(migrations.offline_sql(database_url), nl=False)
        return
    try:
        before, after = migrations.upgrade_database(database_url, schema=schema)
    except SchemaNotMigrated as exc:
        raise click.ClickException(str(exc)) from exc
    except (SQLAlchemyError, OSError) as exc:
        # The URL is not repeated: it may hold a password.
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise click.ClickException(f"{migrations.name} database not migrated: {reason}") from exc
    if before == after:
        click.echo(f"{migrations.name} schema already at {after} (head)")
    else:
        click.echo(f"{migrations.name} schema upgraded from {before or 'empty'} to {after} (head)")
