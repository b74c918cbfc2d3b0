"""who answered a takeover price offer in the werkbak; the werkbak's dossier search index

Revision ID: 7c2e9a4b1d36
Revises: 6c2d1e8f4a37
Create Date: 2026-12-07 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c2e9a4b1d36"
down_revision: str | Sequence[str] | None = "6c2d1e8f4a37"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN: SQLite and PostgreSQL both do it in place, also in --sql mode.
    op.add_column("settlements", sa.Column("answered_by", sa.String(length=100), nullable=True))
    op.create_index(op.f("ix_dossiers_client_bsn"), "dossiers", ["client_bsn"], unique=False)
    # Filled for existing dossiers by the agent's search-index job at its next start.
    op.create_table(
        "dossier_search_terms",
        sa.Column("dossier_id", sa.String(length=36), nullable=False),
        sa.Column("term", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["dossier_id"],
            ["dossiers.id"],
            name=op.f("fk_dossier_search_terms_dossier_id_dossiers"),
        ),
        sa.PrimaryKeyConstraint("dossier_id", "term", name=op.f("pk_dossier_search_terms")),
    )
    op.create_index(
        op.f("ix_dossier_search_terms_term"), "dossier_search_terms", ["term"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_dossier_search_terms_term"), table_name="dossier_search_terms")
    op.drop_table("dossier_search_terms")
    op.drop_index(op.f("ix_dossiers_client_bsn"), table_name="dossiers")
    op.drop_column("settlements", "answered_by")
