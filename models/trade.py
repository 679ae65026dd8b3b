"""Public trades and the 1-minute bars the worker keeps from them.

Trades are unique on (coin, time, tid) — per Hyperliquid, the globally unique trade id.
Never on ``hash``: one taker sweep shares it, and TWAP slices all carry the zero hash.
On PostgreSQL the table is range-partitioned by day on ``time`` (ms); retention drops days.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Millis, Money


class TradeSnapshot(Base):
    __tablename__ = "trade_snapshots"
    __table_args__ = (
        # Recent trades of a coin (bars rebuild, health "newest row", API reads); the
        # primary key leads with coin, so this serves time-ordered scans across coins.
        Index(None, "time"),
        {"postgresql_partition_by": "RANGE (time)"},
    )

    coin: Mapped[str] = mapped_column(String(40), primary_key=True)
    time: Mapped[int] = mapped_column(Millis, primary_key=True)
    tid: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    px: Mapped[Decimal] = mapped_column(Money())
    sz: Mapped[Decimal] = mapped_column(Money())
    side: Mapped[str] = mapped_column(String(1))
    hash: Mapped[str] = mapped_column(String(66))
    buyer: Mapped[str | None] = mapped_column(String(42), nullable=True)
    seller: Mapped[str | None] = mapped_column(String(42), nullable=True)


class TradeBar(Base):
    """1-minute OHLCV per coin with buy/sell volume and the bar's volume delta.

    Bars are folded from the trades a persist batch actually inserted (new rows only), in
    the same transaction, so a replayed batch adds nothing. Open and close carry the
    (time, tid) of the trade they came from, so merging out-of-order batches stays exact.
    Cumulative volume delta is the running sum of ``volume_delta`` over a coin's bars.
    """

    __tablename__ = "trade_bars"
    __table_args__ = (
        # Retention deletes old bars by time across coins.
        Index(None, "minute"),
    )

    coin: Mapped[str] = mapped_column(String(40), primary_key=True)
    minute: Mapped[int] = mapped_column(Millis, primary_key=True)
    open: Mapped[Decimal] = mapped_column(Money())
    high: Mapped[Decimal] = mapped_column(Money())
    low: Mapped[Decimal] = mapped_column(Money())
    close: Mapped[Decimal] = mapped_column(Money())
    open_time: Mapped[int] = mapped_column(Millis)
    open_tid: Mapped[int] = mapped_column(BigInteger)
    close_time: Mapped[int] = mapped_column(Millis)
    close_tid: Mapped[int] = mapped_column(BigInteger)
    volume: Mapped[Decimal] = mapped_column(Money())
    buy_volume: Mapped[Decimal] = mapped_column(Money())
    sell_volume: Mapped[Decimal] = mapped_column(Money())
    volume_delta: Mapped[Decimal] = mapped_column(Money())
    trade_count: Mapped[int] = mapped_column(Integer)
