"""Tracked wallets' positions over time; unique on (user, coin, time). Partitioned by day."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Millis, Money


class PositionSnapshot(Base):
    __tablename__ = "position_snapshots"
    __table_args__ = (
        # Retention and "newest row" health reads go by time across wallets.
        Index(None, "time"),
        {"postgresql_partition_by": "RANGE (time)"},
    )

    user: Mapped[str] = mapped_column(String(42), primary_key=True)
    coin: Mapped[str] = mapped_column(String(40), primary_key=True)
    time: Mapped[int] = mapped_column(Millis, primary_key=True)
    szi: Mapped[Decimal] = mapped_column(Money())
    entry_px: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    position_value: Mapped[Decimal] = mapped_column(Money())
    unrealized_pnl: Mapped[Decimal] = mapped_column(Money())
    return_on_equity: Mapped[Decimal] = mapped_column(Money())
    liquidation_px: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    leverage_type: Mapped[str] = mapped_column(String(16))
    leverage_value: Mapped[int] = mapped_column(Integer)
    margin_used: Mapped[Decimal] = mapped_column(Money())
