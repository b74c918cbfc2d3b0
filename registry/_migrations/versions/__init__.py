"""Revisions of the registry schema, oldest first by file name (loaded by Alembic, not imported)."""
