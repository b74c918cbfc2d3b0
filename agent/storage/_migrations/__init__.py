"""Alembic migrations of the agent schema; the models are ``agent.storage.tables``."""

from pathlib import Path

from sqlalchemy import MetaData

from registry.server_kit.migrations import SchemaMigrations

__all__ = ["MIGRATIONS"]


def _metadata() -> MetaData:
    from agent.storage.tables import Base

    return Base.metadata


MIGRATIONS = SchemaMigrations(
    name="agent",
    module="agent.storage._migrations",
    directory=Path(__file__).parent,
    metadata=_metadata,
)
