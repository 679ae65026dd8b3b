"""Gaps: every window in which data may be missing, from the moment a connection ends.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gaps",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("stream", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("from_ms", sa.BigInteger(), nullable=False),
        sa.Column("to_ms", sa.BigInteger(), nullable=True),
        sa.Column("ended_by", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("healed_by", sa.String(length=16), nullable=True),
        sa.Column("filled", sa.BigInteger(), nullable=False),
        sa.Column("opened_at", models.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", models.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("settled_at", models.base.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gaps")),
    )
    with op.batch_alter_table("gaps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gaps_stream_key_from_ms"), ["stream", "key", "from_ms"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_gaps_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gaps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gaps_status"))
        batch_op.drop_index(batch_op.f("ix_gaps_stream_key_from_ms"))
    op.drop_table("gaps")
