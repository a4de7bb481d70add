"""synchronous relay: per-request usage records, channel model maps

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 10:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("model_map", sa.Text(), nullable=True))
    op.create_table(
        "usage_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("price_model", sa.String(length=200), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("credits", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("stream", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_usage_records_created", "usage_records", ["created_at"])
    op.create_index("ix_usage_records_key", "usage_records", ["key_id"])


def downgrade() -> None:
    op.drop_index("ix_usage_records_key", table_name="usage_records")
    op.drop_index("ix_usage_records_created", table_name="usage_records")
    op.drop_table("usage_records")
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("model_map")
