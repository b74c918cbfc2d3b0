"""Alembic environment of the agent schema: see :mod:`registry.server_kit.migrations`."""

from agent.storage._migrations import MIGRATIONS

MIGRATIONS.run_environment()
