"""Notification channel target and secret without a length limit on PostgreSQL.

They are encrypted at rest when CHANNEL_SECRET_KEYS is set (models/secret_box.py), and a
sealed value is about a third longer than its input plus ~100 characters; the input limits
(2,048 and 256 characters) are checked when a channel is created instead. SQLite never
enforced the declared lengths, so nothing changes there.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("target", 2048), ("secret", 256))


def _alter(unbounded: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column, length in COLUMNS:
        bounded = sa.String(length)
        op.alter_column(
            "notification_channels",
            column,
            type_=sa.String() if unbounded else bounded,
            existing_type=bounded if unbounded else sa.String(),
            existing_nullable=column == "secret",
        )


def upgrade() -> None:
    _alter(unbounded=True)


def downgrade() -> None:
    # Fails on a value too long while encrypted credentials are stored: run
    # `hyperwatch channels decrypt` first.
    _alter(unbounded=False)
