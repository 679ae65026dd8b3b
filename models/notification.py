"""The notification outbox.

A fired alert writes its row here in the same transaction as the ``armed`` flip; delivery
happens after commit, and a beat sweeper re-enqueues rows left ``pending``. The
``idempotency_key`` is unique (one row per alert firing) and is sent to receivers unchanged
on every attempt. Statuses: pending → sent | failed; ``suppressed`` when a quota stopped it
(the reason is kept in ``last_error``); ``digested`` when it was folded into a digest row
(``digest_id``; ``domain.notify.grouping``) — never silently dropped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, UtcDateTime, utcnow

STATUSES = ("pending", "sent", "failed", "suppressed", "digested")


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'sent', 'failed', 'suppressed', 'digested')", name="status"
        ),
        # The sweeper: pending rows older than a threshold.
        Index(None, "status", "created_at"),
        # Hourly quota: a user's notifications in the last hour; CLI listings per user.
        Index(None, "user_id", "created_at"),
        Index(None, "alert_id"),
        # A digest's members (``hyperwatch notifications list``, the backtest's comparison);
        # partial, so the notifications that are no digest's member never touch it.
        Index(
            None,
            "digest_id",
            postgresql_where=text("digest_id IS NOT NULL"),
            sqlite_where=text("digest_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("alerts.id", ondelete="SET NULL"), nullable=True
    )
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    channel_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("notification_channels.id", ondelete="SET NULL"), nullable=True
    )
    channel_kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    event_time: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The digest row this notification was folded into (status ``digested``): delivered as
    # one line of that message, never on its own.
    digest_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
