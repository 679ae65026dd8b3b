"""Where a subscriber's notifications go: a webhook, Slack, Discord, Telegram or Redis."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, UtcDateTime, utcnow

CHANNEL_KINDS = ("webhook", "slack", "discord", "telegram", "redis")


class NotificationChannel(Base):
    __tablename__ = "notification_channels"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('webhook', 'slack', 'discord', 'telegram', 'redis')", name="kind"
        ),
        # "this user's channels" in the CLI and when an alert names its channel.
        Index(None, "user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    # URL for webhook/slack/discord, chat id for telegram, pub/sub channel name for redis.
    target: Mapped[str] = mapped_column(String(2048))
    # Webhook HMAC secret or Telegram bot token. Never logged; redacted in every listing.
    secret: Mapped[str | None] = mapped_column(String(256), nullable=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
