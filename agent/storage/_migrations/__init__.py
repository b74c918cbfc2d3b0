"""Alembic migrations of the agent schema; the models are ``agent.storage.tables``."""

from pathlib import Path

from agent.storage.tables import Base
from registry.server_kit.migrations import SchemaMigrations

__all__ = ["MIGRATIONS"]

MIGRATIONS = SchemaMigrations(
    name="agent", module=__name__, directory=Path(__file__).parent, metadata=lambda: Base.metadata
)
