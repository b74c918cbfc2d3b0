"""the gemeente a dossier is handled for (a regional service serves several)

Revision ID: 6c2d1e8f4a37
Revises: 5a1f0c2e7b90
Create Date: 2026-12-07 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6c2d1e8f4a37"
down_revision: str | Sequence[str] | None = "5a1f0c2e7b90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN: SQLite and PostgreSQL both do it in place, also in --sql mode. A dossier
    # of before stays NULL: the agent's configured gemeentecode.
    op.add_column("dossiers", sa.Column("gemeentecode", sa.String(length=4), nullable=True))


def downgrade() -> None:
    op.drop_column("dossiers", "gemeentecode")
