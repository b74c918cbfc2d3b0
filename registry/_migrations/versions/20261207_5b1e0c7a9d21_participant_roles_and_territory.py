"""participant roles and territory

Revision ID: 5b1e0c7a9d21
Revises: 4e37a88dabc1
Create Date: 2026-12-07 10:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b1e0c7a9d21"
down_revision: str | Sequence[str] | None = "4e37a88dabc1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLES = {
    "gemeente": ["departing-gemeente", "receiving-gemeente"],
    "supplier": ["departing-supplier", "receiving-supplier"],
}


def upgrade() -> None:
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("roles", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("gemeentecodes", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("served_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_participants_served_by_id_participants"),
            "participants",
            ["served_by_id"],
            ["id"],
        )
    # Existing participants get the roles of their kind; a gemeente serves its own code.
    participants = sa.table(
        "participants",
        sa.column("id", sa.Integer()),
        sa.column("kind", sa.String()),
        sa.column("gemeentecode", sa.String()),
        sa.column("roles", sa.JSON()),
        sa.column("gemeentecodes", sa.JSON()),
    )
    connection = op.get_bind()
    for kind, roles in _ROLES.items():
        connection.execute(
            participants.update().where(participants.c.kind == kind).values(roles=roles)
        )
    rows = connection.execute(
        sa.select(participants.c.id, participants.c.gemeentecode).where(
            participants.c.kind == "gemeente"
        )
    ).all()
    for row in rows:
        connection.execute(
            participants.update()
            .where(participants.c.id == row.id)
            .values(gemeentecodes=[row.gemeentecode])
        )
    connection.execute(
        participants.update().where(participants.c.kind == "supplier").values(gemeentecodes=[])
    )


def downgrade() -> None:
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_participants_served_by_id_participants"), type_="foreignkey"
        )
        batch_op.drop_column("served_by_id")
        batch_op.drop_column("gemeentecodes")
        batch_op.drop_column("roles")
