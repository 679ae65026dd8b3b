"""The cold tier's record of day partitions exported to Parquet (``cold_exports``).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cold_exports",
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(length=80), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", models.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("table_name", "day", name=op.f("pk_cold_exports")),
    )
    with op.batch_alter_table("cold_exports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cold_exports_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cold_exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cold_exports_status"))
    op.drop_table("cold_exports")
