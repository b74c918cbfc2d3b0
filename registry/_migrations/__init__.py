"""Alembic migrations of the registry schema (issue 8)."""

from pathlib import Path

from sqlalchemy import MetaData

from registry.schema_migrations import SchemaMigrations

__all__ = ["MIGRATIONS"]


def _metadata() -> MetaData:
    from registry._db import Base

    return Base.metadata


MIGRATIONS = SchemaMigrations(name="registry", directory=Path(__file__).parent, metadata=_metadata)
