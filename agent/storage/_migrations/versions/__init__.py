"""Revisions of the agent schema, oldest first by file name (loaded by Alembic, not imported)."""
