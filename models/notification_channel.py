"""Where a subscriber's notifications go: a webhook, Slack, Discord, Telegram or Redis."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from models.base import Base, BigId, UtcDateTime, utcnow
from models.secret_box import EncryptedString

CHANNEL_KINDS = ("webhook", "slack", "discord", "telegram", "redis")
MAX_TARGET_CHARS = 2048
MAX_SECRET_CHARS = 256


def _sealed(sqlite_length: int) -> TypeEngine[str]:
    return EncryptedString().with_variant(EncryptedString(sqlite_length), "sqlite")


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
    # Encrypted at rest with CHANNEL_SECRET_KEYS (models/secret_box.py): a sealed value is
    # longer than the input, so PostgreSQL has no length limit here (the input is bounded
    # when a channel is created); SQLite never enforced the declared one.
    target: Mapped[str] = mapped_column(_sealed(MAX_TARGET_CHARS))
    # Webhook HMAC secret or Telegram bot token. Never logged; redacted in every listing.
    secret: Mapped[str | None] = mapped_column(_sealed(MAX_SECRET_CHARS), nullable=True)
    # The webhook secret a rotation replaced (`hyperwatch channels rotate-secret`): it keeps
    # signing next to ``secret`` until ``previous_secret_until``, so receivers can switch
    # over without a window in which they refuse deliveries. Sealed like ``secret``.
    previous_secret: Mapped[str | None] = mapped_column(_sealed(MAX_SECRET_CHARS), nullable=True)
    previous_secret_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Alertmanager's grouping windows for this channel (``domain.notify.grouping``);
    # NULL: the NOTIFY_GROUP_WAIT_S / NOTIFY_GROUP_INTERVAL_S / NOTIFY_REPEAT_INTERVAL_S
    # settings.
    group_wait_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    group_interval_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    repeat_interval_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
