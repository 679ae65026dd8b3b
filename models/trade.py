"""Public trades and the 1-minute bars the worker keeps from them.

Trades are unique on (coin, time, tid) — per Hyperliquid, the globally unique trade id.
Never on ``hash``: one taker sweep shares it, and TWAP slices all carry the zero hash.
On PostgreSQL the table is range-partitioned by day on ``time`` (ms); retention drops days.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Millis, Money
from models.hexbytes import HexBytes, length_check

# The most characters each hex column's string may have (what VARCHAR held before 0010).
HEX_LENGTHS = {"hash": 66, "buyer": 42, "seller": 42}


class TradeSnapshot(Base):
    __tablename__ = "trade_snapshots"
    __table_args__ = (
        # The key is (coin, time, tid); its index leads with time (migration 0010). Rows
        # arrive in time order, so the index grows at its right edge and its pages stay
        # full (41 bytes a trade, against 71 led by coin, where each coin's inserts split
        # pages in the middle), and the same index serves time-ordered scans and the
        # newest row (health), which needed a second B-tree on time before. A coin's
        # trades in a time window are that window's rows filtered by coin.
        PrimaryKeyConstraint("time", "coin", "tid"),
        *(
            CheckConstraint(length_check(c, n), name=f"{c}_length").ddl_if(dialect="postgresql")
            for c, n in HEX_LENGTHS.items()
        ),
        {"postgresql_partition_by": "RANGE (time)"},
    )

    coin: Mapped[str] = mapped_column(String(40), primary_key=True)
    time: Mapped[int] = mapped_column(Millis, primary_key=True)
    tid: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    px: Mapped[Decimal] = mapped_column(Money())
    sz: Mapped[Decimal] = mapped_column(Money())
    side: Mapped[str] = mapped_column(String(1))
    # Bytes on PostgreSQL, read back as the same strings (models/hexbytes.py).
    hash: Mapped[str] = mapped_column(HexBytes(66))
    buyer: Mapped[str | None] = mapped_column(HexBytes(42), nullable=True)
    seller: Mapped[str | None] = mapped_column(HexBytes(42), nullable=True)


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
