"""keys: a requests-per-minute limit and a disabled flag (the admin API's `rpm`, `disabled`)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 11:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("keys") as batch:
        batch.add_column(sa.Column("rpm", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.text("false")))


def downgrade() -> None:
    with op.batch_alter_table("keys") as batch:
        batch.drop_column("disabled")
        batch.drop_column("rpm")
