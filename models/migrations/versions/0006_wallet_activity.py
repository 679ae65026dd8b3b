"""Wallet activity from the public trades: user_fills rows without a fill's own fields.

A tracked wallet's side of a public trade is stored in ``user_fills`` before (or without)
the wallet's own fill, so the fields only a fill carries become nullable; ``counterparty``
(the other address of the trade) and ``source`` (``trade``: derived from the public trade
only; ``fill``: the wallet's own fill is stored) are added. Rows already stored are fills.

Downgrade deletes the rows no fill has completed (``source = 'trade'``): the old schema
cannot hold them.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _money() -> sa.types.TypeEngine:
    return sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite")


# The fields only the wallet's own fill carries, with their types.
FILL_ONLY = (
    ("oid", sa.BigInteger()),
    ("dir", sa.String(length=32)),
    ("start_position", _money()),
    ("closed_pnl", _money()),
    ("fee", _money()),
    ("fee_token", sa.String(length=16)),
    ("crossed", sa.Boolean()),
)


def upgrade() -> None:
    with op.batch_alter_table("user_fills", schema=None) as batch_op:
        for name, kind in FILL_ONLY:
            batch_op.alter_column(name, existing_type=kind, nullable=True)
        batch_op.add_column(sa.Column("counterparty", sa.String(length=42), nullable=True))
        batch_op.add_column(
            sa.Column("source", sa.String(length=5), server_default="fill", nullable=False)
        )


def downgrade() -> None:
    op.execute("DELETE FROM user_fills WHERE source = 'trade'")
    with op.batch_alter_table("user_fills", schema=None) as batch_op:
        batch_op.drop_column("source")
        batch_op.drop_column("counterparty")
        for name, kind in FILL_ONLY:
            batch_op.alter_column(name, existing_type=kind, nullable=False)
