"""initial schema: users, alerts, outbox, snapshots (partitioned by day on PostgreSQL)

Revision ID: 0001
Revises:
Create Date: 2026-11-24 20:37:27.397193
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base
from models.partitions import create_ahead, day_of

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "asset_context_snapshots",
        sa.Column("coin", sa.String(length=40), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column(
            "funding",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "open_interest",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "mark_px",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "oracle_px",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "mid_px",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=True,
        ),
        sa.Column(
            "premium",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=True,
        ),
        sa.Column(
            "day_ntl_vlm",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "prev_day_px",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("coin", "time", name=op.f("pk_asset_context_snapshots")),
        postgresql_partition_by="RANGE (time)",
    )
    with op.batch_alter_table("asset_context_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_asset_context_snapshots_time"), ["time"], unique=False)

    op.create_table(
        "dead_letters",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", models.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dead_letters_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "health_metrics",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("time", models.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_metrics")),
    )
    with op.batch_alter_table("health_metrics", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_health_metrics_name_time"), ["name", "time"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_health_metrics_time"), ["time"], unique=False)

    op.create_table(
        "position_snapshots",
        sa.Column("user", sa.String(length=42), nullable=False),
        sa.Column("coin", sa.String(length=40), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column(
            "szi",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "entry_px",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=True,
        ),
        sa.Column(
            "position_value",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "unrealized_pnl",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "return_on_equity",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "liquidation_px",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=True,
        ),
        sa.Column("leverage_type", sa.String(length=16), nullable=False),
        sa.Column("leverage_value", sa.Integer(), nullable=False),
        sa.Column(
            "margin_used",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("user", "coin", "time", name=op.f("pk_position_snapshots")),
        postgresql_partition_by="RANGE (time)",
    )
    with op.batch_alter_table("position_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_position_snapshots_time"), ["time"], unique=False)

    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("started_at", models.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", models.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=200), nullable=True),
        sa.Column("frames", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("malformed", sa.BigInteger(), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.Column("gap_count", sa.BigInteger(), nullable=False),
        sa.Column("gaps", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_started_at"), ["started_at"], unique=False)

    op.create_table(
        "trade_bars",
        sa.Column("coin", sa.String(length=40), nullable=False),
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column(
            "open",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "high",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "low",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "close",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column("open_time", sa.BigInteger(), nullable=False),
        sa.Column("open_tid", sa.BigInteger(), nullable=False),
        sa.Column("close_time", sa.BigInteger(), nullable=False),
        sa.Column("close_tid", sa.BigInteger(), nullable=False),
        sa.Column(
            "volume",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "buy_volume",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "sell_volume",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "volume_delta",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column("trade_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("coin", "minute", name=op.f("pk_trade_bars")),
    )
    with op.batch_alter_table("trade_bars", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trade_bars_minute"), ["minute"], unique=False)

    op.create_table(
        "trade_snapshots",
        sa.Column("coin", sa.String(length=40), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("tid", sa.BigInteger(), nullable=False),
        sa.Column(
            "px",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "sz",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column("side", sa.String(length=1), nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.Column("buyer", sa.String(length=42), nullable=True),
        sa.Column("seller", sa.String(length=42), nullable=True),
        sa.PrimaryKeyConstraint("coin", "time", "tid", name=op.f("pk_trade_snapshots")),
        postgresql_partition_by="RANGE (time)",
    )
    with op.batch_alter_table("trade_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trade_snapshots_time"), ["time"], unique=False)

    op.create_table(
        "user_fills",
        sa.Column("user", sa.String(length=42), nullable=False),
        sa.Column("tid", sa.BigInteger(), nullable=False),
        sa.Column("coin", sa.String(length=40), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("oid", sa.BigInteger(), nullable=False),
        sa.Column(
            "px",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "sz",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column("side", sa.String(length=1), nullable=False),
        sa.Column("dir", sa.String(length=32), nullable=False),
        sa.Column(
            "start_position",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "closed_pnl",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "fee",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column("fee_token", sa.String(length=16), nullable=False),
        sa.Column("crossed", sa.Boolean(), nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("user", "tid", name=op.f("pk_user_fills")),
    )
    with op.batch_alter_table("user_fills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_fills_user_time"), ["user", "time"], unique=False)

    op.create_table(
        "users",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", models.base.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("tier IN ('free', 'pro', 'enterprise')", name=op.f("ck_users_tier")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "notification_channels",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=2048), nullable=False),
        sa.Column("secret", sa.String(length=256), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", models.base.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('webhook', 'slack', 'discord', 'telegram', 'redis')",
            name=op.f("ck_notification_channels_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notification_channels_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_channels")),
    )
    with op.batch_alter_table("notification_channels", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_channels_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "tracked_wallets",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", models.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_tracked_wallets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracked_wallets")),
        sa.UniqueConstraint("user_id", "address", name=op.f("uq_tracked_wallets_user_id_address")),
    )
    with op.batch_alter_table("tracked_wallets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tracked_wallets_address"), ["address"], unique=False)

    op.create_table(
        "alerts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("coin", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column(
            "threshold",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column("price_source", sa.String(length=8), nullable=False),
        sa.Column("window_s", sa.Integer(), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=True),
        sa.Column("wallet", sa.String(length=42), nullable=True),
        sa.Column("stream", sa.String(length=20), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("cooldown_s", sa.Integer(), nullable=False),
        sa.Column(
            "rearm_margin",
            sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite"),
            nullable=False,
        ),
        sa.Column("armed", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("last_fired_at", sa.BigInteger(), nullable=True),
        sa.Column("snooze_until", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("channel_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", models.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("mode IN ('once', 'recurring')", name=op.f("ck_alerts_mode")),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["notification_channels.id"],
            name=op.f("fk_alerts_channel_id_notification_channels"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_alerts_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alerts_coin_kind_active"), ["coin", "kind", "active"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_alerts_user_id_active"), ["user_id", "active"], unique=False
        )

    op.create_table(
        "notifications",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("alert_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=True),
        sa.Column("channel_kind", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=100), nullable=False),
        sa.Column("event_time", sa.BigInteger(), nullable=True),
        sa.Column("created_at", models.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", models.base.UtcDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed', 'suppressed')",
            name=op.f("ck_notifications_status"),
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_notifications_alert_id_alerts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["notification_channels.id"],
            name=op.f("fk_notifications_channel_id_notification_channels"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_notifications_idempotency_key")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_alert_id"), ["alert_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_notifications_status_created_at"), ["status", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notifications_user_id_created_at"),
            ["user_id", "created_at"],
            unique=False,
        )

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # Partitioned parents accept no rows until a day partition exists: create the
        # days around today now; beat keeps them ahead and workers create any day they
        # are handed (replays of older data) on demand.
        import time

        create_ahead(bind, day_of(int(time.time() * 1000)), ahead=3)


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_user_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_notifications_status_created_at"))
        batch_op.drop_index(batch_op.f("ix_notifications_alert_id"))

    op.drop_table("notifications")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_user_id_active"))
        batch_op.drop_index(batch_op.f("ix_alerts_coin_kind_active"))

    op.drop_table("alerts")
    with op.batch_alter_table("tracked_wallets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tracked_wallets_address"))

    op.drop_table("tracked_wallets")
    with op.batch_alter_table("notification_channels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_channels_user_id"))

    op.drop_table("notification_channels")
    op.drop_table("users")
    with op.batch_alter_table("user_fills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_fills_user_time"))

    op.drop_table("user_fills")
    with op.batch_alter_table("trade_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trade_snapshots_time"))

    op.drop_table("trade_snapshots")
    with op.batch_alter_table("trade_bars", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trade_bars_minute"))

    op.drop_table("trade_bars")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_started_at"))

    op.drop_table("sessions")
    with op.batch_alter_table("position_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_position_snapshots_time"))

    op.drop_table("position_snapshots")
    with op.batch_alter_table("health_metrics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_health_metrics_time"))
        batch_op.drop_index(batch_op.f("ix_health_metrics_name_time"))

    op.drop_table("health_metrics")
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dead_letters_created_at"))

    op.drop_table("dead_letters")
    with op.batch_alter_table("asset_context_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_asset_context_snapshots_time"))

    op.drop_table("asset_context_snapshots")
