"""registry answers

Revision ID: 8f3a2d6b4c10
Revises: c1eda95d554a
Create Date: 2026-12-07 11:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8f3a2d6b4c10"
down_revision: str | Sequence[str] | None = "c1eda95d554a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registry_answers",
        sa.Column("resource", sa.String(length=600), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("etag", sa.String(length=100), nullable=True),
        sa.Column("fresh_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stale_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("resource", name=op.f("pk_registry_answers")),
    )


def downgrade() -> None:
    op.drop_table("registry_answers")
