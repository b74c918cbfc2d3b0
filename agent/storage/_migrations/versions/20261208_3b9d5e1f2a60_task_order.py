"""the takeover order a supplier's task is about

Revision ID: 3b9d5e1f2a60
Revises: 7c2e9a4b1d36
Create Date: 2026-12-08 01:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3b9d5e1f2a60"
down_revision: str | Sequence[str] | None = "7c2e9a4b1d36"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN: SQLite and PostgreSQL both do it in place, also in --sql mode.
    op.add_column("tasks", sa.Column("order_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    op.drop_column("tasks", "order_id")
