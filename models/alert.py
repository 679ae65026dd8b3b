"""A subscriber's alert definition and its firing state.

``armed`` is the exactly-once guard: firing is ``UPDATE alerts SET armed = false … WHERE
id = :id AND armed``; only the worker whose update hits the row sends (architecture §3.4).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, Millis, Money, UtcDateTime, utcnow


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint("mode IN ('once', 'recurring')", name="mode"),
        # Workers load armed, active alerts per coin to build their threshold index.
        Index(None, "coin", "kind", "active"),
        # CLI listings and quota counts per user.
        Index(None, "user_id", "active"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    coin: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(40))
    threshold: Mapped[Decimal] = mapped_column(Money())
    price_source: Mapped[str] = mapped_column(String(8), default="mid")
    window_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    direction: Mapped[str | None] = mapped_column(String(8), nullable=True)
    wallet: Mapped[str | None] = mapped_column(String(42), nullable=True)
    # stale_data alerts: which stream's silence they watch (mids | asset_contexts).
    stream: Mapped[str | None] = mapped_column(String(20), nullable=True)
    mode: Mapped[str] = mapped_column(String(16), default="once")
    cooldown_s: Mapped[int] = mapped_column(Integer, default=0)
    rearm_margin: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0"))
    armed: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_fired_at: Mapped[int | None] = mapped_column(Millis, nullable=True)
    snooze_until: Mapped[int | None] = mapped_column(Millis, nullable=True)
    expires_at: Mapped[int | None] = mapped_column(Millis, nullable=True)
    channel_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("notification_channels.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
