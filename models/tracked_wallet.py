"""Wallets a subscriber follows; the ingester subscribes to (or polls) their positions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, UtcDateTime, utcnow


class TrackedWallet(Base):
    __tablename__ = "tracked_wallets"
    __table_args__ = (
        # A user follows an address once; the idempotency key of `wallets track`.
        UniqueConstraint("user_id", "address"),
        # "who follows this address" when positions arrive, and the ingester's wallet list.
        Index(None, "address"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(42))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
