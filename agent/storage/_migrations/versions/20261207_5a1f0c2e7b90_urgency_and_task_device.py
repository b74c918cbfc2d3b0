"""why a dossier is urgent, the device a task is about

Revision ID: 5a1f0c2e7b90
Revises: 08464062f83f
Create Date: 2026-12-07 10:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5a1f0c2e7b90"
down_revision: str | Sequence[str] | None = "08464062f83f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN: SQLite and PostgreSQL both do it in place, also in --sql mode.
    op.add_column("dossiers", sa.Column("urgency_reason", sa.Text(), nullable=True))
    op.add_column("tasks", sa.Column("device_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("tasks", "device_id")
    op.drop_column("dossiers", "urgency_reason")
