"""Public trades and the 1-minute bars the worker keeps from them.

Trades are unique on (coin, time, tid) — per Hyperliquid, the globally unique trade id.
Never on ``hash``: one taker sweep shares it, and TWAP slices all carry the zero hash.
On PostgreSQL the table is range-partitioned by day on ``time`` (ms); retention drops days.
Buyer and seller are int4 ids into the wallet dictionary (``wallets``, migration 0012); the
model's ``buyer`` and ``seller`` read the addresses back, so every reader sees the strings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    select,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column
from sqlalchemy.sql.selectable import Subquery

from models.base import Base, Millis, Money
from models.hexbytes import HexBytes, length_check
from models.wallet import Wallet

# The most characters each hex column's string may have (what VARCHAR held before 0010).
HEX_LENGTHS = {"hash": 66, "buyer": 42, "seller": 42}


def _address_of(column: Any) -> Any:
    return (
        select(Wallet.address).where(Wallet.id == column).correlate_except(Wallet).scalar_subquery()
    )


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
        CheckConstraint(length_check("hash", HEX_LENGTHS["hash"]), name="hash_length").ddl_if(
            dialect="postgresql"
        ),
        {"postgresql_partition_by": "RANGE (time)"},
    )

    # Columns in alignment order (migration 0012): the 8-byte ones, the two 4-byte wallet
    # ids, then the variable-length ones, so PostgreSQL pads nothing between them.
    time: Mapped[int] = mapped_column(Millis, primary_key=True)
    tid: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # Ids into the wallet dictionary (models/wallet.py); readers get the addresses from
    # ``buyer`` and ``seller`` below, writers map them (models/repositories/wallet_ids.py).
    buyer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seller_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    coin: Mapped[str] = mapped_column(String(40), primary_key=True)
    side: Mapped[str] = mapped_column(String(1))
    px: Mapped[Decimal] = mapped_column(Money())
    sz: Mapped[Decimal] = mapped_column(Money())
    # Bytes on PostgreSQL, read back as the same strings (models/hexbytes.py).
    hash: Mapped[str] = mapped_column(HexBytes(66))
    # The addresses as before 0012, read through the dictionary: ``select(TradeSnapshot)``
    # loads them and ``TradeSnapshot.buyer`` selects the string (one primary-key lookup
    # each). Read-only: writers store the ids.
    buyer: Mapped[str | None] = column_property(_address_of(buyer_id))
    seller: Mapped[str | None] = column_property(_address_of(seller_id))


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


def _as_read() -> Subquery:
    t = TradeSnapshot.__table__
    buyer, seller = Wallet.__table__.alias("wb"), Wallet.__table__.alias("ws")
    view = (
        select(
            t.c.coin, t.c.time, t.c.tid, t.c.px, t.c.sz, t.c.side, t.c.hash,
            buyer.c.address.label("buyer"), seller.c.address.label("seller"),
        )
        .select_from(
            t.outerjoin(buyer, buyer.c.id == t.c.buyer_id).outerjoin(
                seller, seller.c.id == t.c.seller_id
            )
        )
        .subquery("trade_snapshots")
    )  # fmt: skip
    # Outer-joined: no address is NULL (the proxies copy the dictionary's NOT NULL).
    for name in ("buyer", "seller"):
        column: Any = view.c[name]
        column.nullable = True
    return view


# The trades as every reader saw them before 0012 — the same columns, in the same order,
# the addresses as strings — for readers of whole rows (the cold tier's export and the hot
# part of ``history query``): the dictionary joined once per query (a hash join over the
# distinct wallets), not looked up per row.
TRADES_AS_READ = _as_read()
