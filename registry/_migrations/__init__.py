"""Alembic migrations of the registry schema."""

from pathlib import Path

from sqlalchemy import MetaData

from registry.server_kit.migrations import SchemaMigrations

__all__ = ["MIGRATIONS"]


def _metadata() -> MetaData:
    from registry._db import Base

    return Base.metadata


MIGRATIONS = SchemaMigrations(
    name="registry",
    module="registry._migrations",
    directory=Path(__file__).parent,
    metadata=_metadata,
)
