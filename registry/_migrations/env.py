"""Alembic environment of the registry schema: see :mod:`registry.server_kit.migrations`."""

from registry._migrations import MIGRATIONS

MIGRATIONS.run_environment()
