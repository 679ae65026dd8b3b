"""Webhook signing-secret rotation: a channel's previous secret and until when it signs.

``hyperwatch channels rotate-secret`` moves the current secret to ``previous_secret`` and
sets ``previous_secret_until``; deliveries sign with both until then. Both columns are
nullable and empty for every existing channel, so the upgrade changes no behaviour. The
downgrade drops them: a rotation in its overlap window then ends at once (only the new
secret signs). Like ``secret``, ``previous_secret`` has no length limit on PostgreSQL
(it may be stored encrypted, see 0002).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("notification_channels") as batch:
        batch.add_column(
            sa.Column("previous_secret", sa.String(256) if sqlite else sa.String(), nullable=True)
        )
        batch.add_column(
            sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("notification_channels") as batch:
        batch.drop_column("previous_secret_until")
        batch.drop_column("previous_secret")
