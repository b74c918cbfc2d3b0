"""werkbak sessions, task assignment, urgent dossiers, processing log actor

Revision ID: 08464062f83f
Revises: 4f30f5acec5a
Create Date: 2026-12-07 10:19:54.574736
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "08464062f83f"
down_revision: str | Sequence[str] | None = "4f30f5acec5a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN (no batch): SQLite supports it, and `migrate --sql` works.
    op.create_table(
        "werkbak_sessions",
        sa.Column("session_sha256", sa.String(length=64), nullable=False),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("user_name", sa.String(length=200), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("sign_in", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_sha256", name=op.f("pk_werkbak_sessions")),
    )
    op.create_index(
        op.f("ix_werkbak_sessions_expires_at"), "werkbak_sessions", ["expires_at"], unique=False
    )
    op.add_column(
        "dossiers", sa.Column("urgent", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("processing_log", sa.Column("actor", sa.String(length=100), nullable=True))
    op.add_column("tasks", sa.Column("assigned_to", sa.String(length=100), nullable=True))
    op.add_column("tasks", sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("note")
        batch_op.drop_column("assigned_to")

    with op.batch_alter_table("processing_log", schema=None) as batch_op:
        batch_op.drop_column("actor")

    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        batch_op.drop_column("urgent")

    with op.batch_alter_table("werkbak_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_werkbak_sessions_expires_at"))

    op.drop_table("werkbak_sessions")
