"""Perp asset contexts (funding, mark, open interest …), at most one per coin per bucket.

Hyperliquid pushes a context every second per coin; the worker keeps the first one of each
``ASSET_CONTEXT_BUCKET_S`` bucket (the key is (coin, bucketed time)), which makes a replay
or a second ingester a no-op. Range-partitioned by day on PostgreSQL.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Millis, Money


class AssetContextSnapshot(Base):
    __tablename__ = "asset_context_snapshots"
    __table_args__ = (
        # Retention and "newest row" health reads go by time across coins.
        Index(None, "time"),
        {"postgresql_partition_by": "RANGE (time)"},
    )

    coin: Mapped[str] = mapped_column(String(40), primary_key=True)
    time: Mapped[int] = mapped_column(Millis, primary_key=True)
    funding: Mapped[Decimal] = mapped_column(Money())
    open_interest: Mapped[Decimal] = mapped_column(Money())
    mark_px: Mapped[Decimal] = mapped_column(Money())
    oracle_px: Mapped[Decimal] = mapped_column(Money())
    mid_px: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    premium: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
    day_ntl_vlm: Mapped[Decimal] = mapped_column(Money())
    prev_day_px: Mapped[Decimal] = mapped_column(Money())
