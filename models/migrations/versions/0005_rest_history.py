"""REST healing's candles and funding rates, kept apart from the trade bars.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _money(name: str, nullable: bool = False) -> sa.Column:
    kind = sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite")
    return sa.Column(name, kind, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "rest_bars",
        sa.Column("coin", sa.String(length=40), nullable=False),
        sa.Column("minute", sa.BigInteger(), nullable=False),
        *(_money(name) for name in ("open", "high", "low", "close", "volume")),
        sa.Column("trade_count", sa.Integer(), nullable=False),
        sa.Column("fetched_at", models.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("coin", "minute", name=op.f("pk_rest_bars")),
    )
    op.create_table(
        "funding_rates",
        sa.Column("coin", sa.String(length=40), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        _money("rate"),
        _money("premium", nullable=True),
        sa.PrimaryKeyConstraint("coin", "time", name=op.f("pk_funding_rates")),
    )


def downgrade() -> None:
    op.drop_table("funding_rates")
    op.drop_table("rest_bars")
