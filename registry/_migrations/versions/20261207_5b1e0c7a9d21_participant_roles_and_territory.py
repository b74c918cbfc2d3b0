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

_SQLITE = (
    'UPDATE participants SET roles = \'["departing-gemeente", "receiving-gemeente"]\' '
    "WHERE kind = 'gemeente'",
    'UPDATE participants SET roles = \'["departing-supplier", "receiving-supplier"]\' '
    "WHERE kind = 'supplier'",
    "UPDATE participants SET gemeentecodes = '[\"' || gemeentecode || '\"]' "
    "WHERE kind = 'gemeente'",
    "UPDATE participants SET gemeentecodes = '[]' WHERE kind = 'supplier'",
)
_POSTGRESQL = (
    "UPDATE participants SET roles = "
    "CAST('[\"departing-gemeente\", \"receiving-gemeente\"]' AS JSON) WHERE kind = 'gemeente'",
    "UPDATE participants SET roles = "
    "CAST('[\"departing-supplier\", \"receiving-supplier\"]' AS JSON) WHERE kind = 'supplier'",
    "UPDATE participants SET gemeentecodes = CAST('[\"' || gemeentecode || '\"]' AS JSON) "
    "WHERE kind = 'gemeente'",
    "UPDATE participants SET gemeentecodes = CAST('[]' AS JSON) WHERE kind = 'supplier'",
)


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
    # Plain SQL, so that the offline script (--sql) can write it out as well.
    statements = _POSTGRESQL if op.get_context().dialect.name == "postgresql" else _SQLITE
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_participants_served_by_id_participants"), type_="foreignkey"
        )
        batch_op.drop_column("served_by_id")
        batch_op.drop_column("gemeentecodes")
        batch_op.drop_column("roles")
