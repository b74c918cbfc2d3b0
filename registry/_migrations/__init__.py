"""Alembic migrations of the registry schema; the models are ``registry._db``."""

from pathlib import Path

from registry._db import Base
from registry.server_kit.migrations import SchemaMigrations

__all__ = ["MIGRATIONS"]

MIGRATIONS = SchemaMigrations(
    name="registry",
    module=__name__,
    directory=Path(__file__).parent,
    metadata=lambda: Base.metadata,
)
