"""archive_imports: per-file progress of `hyperwatch archive import` (resumable imports)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "archive_imports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("head_digest", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=24), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("lines_done", sa.BigInteger(), nullable=False),
        sa.Column("trades_new", sa.BigInteger(), nullable=False),
        sa.Column("trades_duplicate", sa.BigInteger(), nullable=False),
        sa.Column("fills_new", sa.BigInteger(), nullable=False),
        sa.Column("fills_duplicate", sa.BigInteger(), nullable=False),
        sa.Column("bad_lines", sa.BigInteger(), nullable=False),
        sa.Column("bad_samples", sa.Text(), nullable=False),
        sa.Column("min_time", sa.BigInteger(), nullable=True),
        sa.Column("max_time", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", models.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", models.base.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_imports")),
        sa.UniqueConstraint(
            "key", "size", "head_digest", name=op.f("uq_archive_imports_key_size_head_digest")
        ),
    )
    with op.batch_alter_table("archive_imports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_archive_imports_updated_at"), ["updated_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("archive_imports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_archive_imports_updated_at"))
    op.drop_table("archive_imports")
