"""files: uploads of the /v1/files service (and their extracted text for purpose=file-extract)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 10:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("public_id", sa.String(length=64), nullable=False, unique=True),
        sa.Column("key_id", sa.Integer(), sa.ForeignKey("keys.id"), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("storage_key", sa.String(length=400), nullable=False),
        sa.Column("extract_key", sa.String(length=400), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_details", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_files_key", "files", ["key_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_files_key", table_name="files")
    op.drop_table("files")
