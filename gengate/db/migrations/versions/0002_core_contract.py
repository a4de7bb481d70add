"""core contract: task slots, origin view, consecutive submit errors, soft deletes; unused idempotency columns dropped

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("slots", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("submit_errors", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("origin", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("deleted_at", sa.Float(), nullable=True))
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("deleted_at", sa.Float(), nullable=True))
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("status_code")
        batch.drop_column("response")


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("response", sa.Text(), nullable=True))
        batch.add_column(sa.Column("status_code", sa.Integer(), nullable=True))
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("deleted_at")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("deleted_at")
        batch.drop_column("origin")
        batch.drop_column("submit_errors")
        batch.drop_column("slots")
