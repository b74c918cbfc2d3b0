"""who answered a takeover price offer in the werkbak

Revision ID: 7c2e9a4b1d36
Revises: 5a1f0c2e7b90
Create Date: 2026-12-07 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c2e9a4b1d36"
down_revision: str | Sequence[str] | None = "5a1f0c2e7b90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN: SQLite and PostgreSQL both do it in place, also in --sql mode.
    op.add_column("settlements", sa.Column("answered_by", sa.String(length=100), nullable=True))


def downgrade() -> None:
    op.drop_column("settlements", "answered_by")
