"""credit_leases: slices of limited keys' balances held by one process (gengate/core/leases.py)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 16:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_leases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["keys.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_credit_leases_key", "credit_leases", ["key_id"])
    op.create_index("ix_credit_leases_owner", "credit_leases", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_credit_leases_owner", table_name="credit_leases")
    op.drop_index("ix_credit_leases_key", table_name="credit_leases")
    op.drop_table("credit_leases")
