"""Digests: a channel's grouping windows, and notifications folded into a digest.

``notification_channels`` gains ``group_wait_s``, ``group_interval_s`` and
``repeat_interval_s`` (NULL: the NOTIFY_GROUP_* settings). ``notifications`` gains
``digest_id`` — the digest row a notification was folded into — and the status
``digested`` (delivered as part of that digest, never on its own). Every existing row keeps
its status and has no digest, so the upgrade changes no behaviour. The downgrade turns
``digested`` rows into ``sent`` ones with the digest named in ``last_error`` (their content
was delivered, in the digest) before the status leaves the constraint.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = "status IN ('pending', 'sent', 'failed', 'suppressed')"
_AFTER = "status IN ('pending', 'sent', 'failed', 'suppressed', 'digested')"


def upgrade() -> None:
    with op.batch_alter_table("notification_channels") as batch:
        batch.add_column(sa.Column("group_wait_s", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("group_interval_s", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("repeat_interval_s", sa.Integer(), nullable=True))
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("digest_id", sa.BigInteger(), nullable=True))
        # Partial: only digest members are looked up by it, and every other notification
        # (nearly all) is inserted without touching it (docs/PERFORMANCE.md, alert latency).
        batch.create_index(
            batch.f("ix_notifications_digest_id"),
            ["digest_id"],
            unique=False,
            postgresql_where=sa.text("digest_id IS NOT NULL"),
            sqlite_where=sa.text("digest_id IS NOT NULL"),
        )
        batch.drop_constraint(batch.f("ck_notifications_status"), type_="check")
        batch.create_check_constraint(batch.f("ck_notifications_status"), _AFTER)


def downgrade() -> None:
    op.execute(
        "UPDATE notifications SET status = 'sent', "
        "last_error = 'delivered in digest ' || CAST(digest_id AS VARCHAR(20)) "
        "WHERE status = 'digested'"
    )
    with op.batch_alter_table("notifications") as batch:
        batch.drop_constraint(batch.f("ck_notifications_status"), type_="check")
        batch.create_check_constraint(batch.f("ck_notifications_status"), _BEFORE)
        batch.drop_index(batch.f("ix_notifications_digest_id"))
        batch.drop_column("digest_id")
    with op.batch_alter_table("notification_channels") as batch:
        batch.drop_column("repeat_interval_s")
        batch.drop_column("group_interval_s")
        batch.drop_column("group_wait_s")
