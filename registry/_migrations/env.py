"""Alembic environment of the registry schema: see :mod:`registry.schema_migrations`."""

from registry._migrations import MIGRATIONS

MIGRATIONS.run_environment()
