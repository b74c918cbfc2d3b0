"""daily reports

Revision ID: 7c2d4e6f8a10
Revises: 5b1e0c7a9d21
Create Date: 2026-12-07 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c2d4e6f8a10"
down_revision: str | Sequence[str] | None = "5b1e0c7a9d21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "daily_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_daily_reports_participant_id_participants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_reports")),
        sa.UniqueConstraint(
            "participant_id", "day", name=op.f("uq_daily_reports_participant_id_day")
        ),
    )
    op.create_index("ix_daily_reports_day", "daily_reports", ["day"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_daily_reports_day", table_name="daily_reports")
    op.drop_table("daily_reports")
