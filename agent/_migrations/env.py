"""Alembic environment of the agent schema: see :mod:`registry.schema_migrations`."""

from agent._migrations import MIGRATIONS

MIGRATIONS.run_environment()
