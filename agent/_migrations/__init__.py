"""Alembic migrations of the agent schema (issue 8)."""

from pathlib import Path

from sqlalchemy import MetaData

from registry.schema_migrations import SchemaMigrations

__all__ = ["MIGRATIONS"]


def _metadata() -> MetaData:
    # The app imports every module that adds a table to agent._db.Base (see _service.py).
    import agent.app  # noqa: F401
    from agent._db import Base

    return Base.metadata


MIGRATIONS = SchemaMigrations(name="agent", directory=Path(__file__).parent, metadata=_metadata)
