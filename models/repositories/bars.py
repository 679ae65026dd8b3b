"""1-minute trade bars folded from newly stored trades (the dashboard's CVD, kept by workers).

Only trades a batch actually inserted are folded in, inside the same transaction as the
insert, so a replayed batch adds nothing. Merging is order-independent: open/close keep the
(time, tid) of their trade and the earliest/latest wins. PostgreSQL merges a whole batch in
one ``INSERT … VALUES … ON CONFLICT DO UPDATE`` with exact NUMERIC arithmetic; SQLite (one writer at a time, and
the trade insert already holds the write lock) merges in Python with Decimal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from itertools import compress
from operator import itemgetter
from typing import Any

from psycopg2.extras import execute_values
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.trade import TradeBar

MINUTE_MS = 60_000
_ZERO = Decimal(0)
_PX, _SZ, _SIDE, _ORDER = itemgetter(3), itemgetter(4), itemgetter(5), itemgetter(1, 2)


@dataclass(slots=True)
class BarDelta:
    coin: str
    minute: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    open_key: tuple[int, int]
    close_key: tuple[int, int]
    volume: Decimal
    buy_volume: Decimal
    sell_volume: Decimal
    trade_count: int

    @property
    def volume_delta(self) -> Decimal:
        return self.buy_volume - self.sell_volume

    def merge(self, other: BarDelta) -> None:
        if other.open_key < self.open_key:
            self.open, self.open_key = other.open, other.open_key
        if other.close_key > self.close_key:
            self.close, self.close_key = other.close, other.close_key
        self.high = max(self.high, other.high)
        self.low = min(self.low, other.low)
        self.volume += other.volume
        self.buy_volume += other.buy_volume
        self.sell_volume += other.sell_volume
        self.trade_count += other.trade_count

    def as_tuple(self) -> tuple[Any, ...]:
        """The bar's values in the order of :data:`BAR_COLUMNS`."""
        return (
            self.coin, self.minute, self.open, self.high, self.low, self.close,
            self.open_key[0], self.open_key[1], self.close_key[0], self.close_key[1],
            self.volume, self.buy_volume, self.sell_volume, self.volume_delta, self.trade_count,
        )  # fmt: skip

    def as_row(self) -> dict[str, Any]:
        return {
            "coin": self.coin,
            "minute": self.minute,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "open_time": self.open_key[0],
            "open_tid": self.open_key[1],
            "close_time": self.close_key[0],
            "close_tid": self.close_key[1],
            "volume": self.volume,
            "buy_volume": self.buy_volume,
            "sell_volume": self.sell_volume,
            "volume_delta": self.volume_delta,
            "trade_count": self.trade_count,
        }


def fold(trades: Iterable[Sequence[Any]]) -> list[BarDelta]:
    """Pure: trades → one delta per (coin, minute). A trade is any sequence led by
    (coin, time, tid, px, sz, side): a ``Trade``, or a row of those six columns.

    Side is the aggressor: a "B" trade is buy volume, "A" sell volume. The trades are
    grouped by (coin, minute) in one pass, then each bar is made by builtins over its
    group: open and close are the trades of least and greatest (time, tid) — the key is
    unique, so whatever order the trades come in — high and low the extremes, volumes the
    sums (exact: Decimal). A third less than sorting the batch and walking it (~0.65
    against ~0.75 µs a trade at 50,000 trades, 135 bars).
    """
    groups: dict[tuple[str, int], list[Sequence[Any]]] = {}
    get = groups.get
    for trade in trades:
        time = trade[1]
        key = (trade[0], time - time % MINUTE_MS)
        group = get(key)
        if group is None:
            groups[key] = [trade]
        else:
            group.append(trade)
    bars: list[BarDelta] = []
    for (coin, minute), group in groups.items():
        prices = list(map(_PX, group))
        sizes = list(map(_SZ, group))
        first, last = min(group, key=_ORDER), max(group, key=_ORDER)
        volume = sum(sizes, _ZERO)
        buys = sum(compress(sizes, [side == "B" for side in map(_SIDE, group)]), _ZERO)
        bars.append(
            BarDelta(
                coin, minute, first[3], max(prices), min(prices), last[3],
                (first[1], first[2]), (last[1], last[2]), volume, buys, volume - buys,
                len(group),
            )
        )  # fmt: skip
    return bars


class BarRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def fold_in(self, new_trades: Sequence[tuple[str, int, int, Decimal, Decimal, str]]) -> int:
        """Add newly inserted trades to their bars; returns bars touched.

        Idempotency comes from the caller passing only trades that were new in this
        transaction (``TradeRepository.add_batch(...).new_rows``).
        """
        return self.merge(fold(new_trades))

    def merge(self, deltas: list[BarDelta]) -> int:
        """Add folded deltas (:func:`fold` of new trades only) to their bars; returns bars
        touched."""
        if not deltas:
            return 0
        if self.session.get_bind().dialect.name == "postgresql":
            self._merge_postgres(deltas)
        else:
            self._merge_python(deltas)
        return len(deltas)

    def _merge_postgres(self, deltas: list[BarDelta]) -> None:
        # One statement for the whole batch (an executemany is a round trip per bar: 0.1 to
        # 0.2 ms each, most of a batch's time once it spans many coins and minutes). Rows in
        # key order: concurrent workers lock bar rows in the same order (no deadlock).
        rows = [d.as_tuple() for d in sorted(deltas, key=lambda d: (d.coin, d.minute))]
        dbapi_conn = self.session.connection().connection.driver_connection
        assert dbapi_conn is not None
        with dbapi_conn.cursor() as cursor:
            execute_values(cursor, _postgres_merge_sql(), rows, page_size=len(rows))

    def _merge_python(self, deltas: list[BarDelta]) -> None:
        for delta in deltas:
            bar = self.session.get(TradeBar, (delta.coin, delta.minute))
            if bar is None:
                self.session.add(TradeBar(**delta.as_row()))
                continue
            current = BarDelta(
                bar.coin, bar.minute, bar.open, bar.high, bar.low, bar.close,
                (bar.open_time, bar.open_tid), (bar.close_time, bar.close_tid),
                bar.volume, bar.buy_volume, bar.sell_volume, bar.trade_count,
            )  # fmt: skip
            current.merge(delta)
            for name, value in current.as_row().items():
                setattr(bar, name, value)
        self.session.flush()

    def bars(self, coin: str, since_ms: int = 0) -> list[dict[str, Any]]:
        """A coin's bars from ``since_ms`` in time order, each with its cumulative volume
        delta (CVD) counted from the coin's first stored bar. Summed in Python with Decimal:
        SQLite would sum its text-stored decimals as floats."""
        stmt = select(TradeBar).where(TradeBar.coin == coin).order_by(TradeBar.minute)
        out = []
        cumulative = _ZERO
        for bar in self.session.scalars(stmt):
            cumulative += bar.volume_delta
            if bar.minute < since_ms:
                continue
            row = {c.key: getattr(bar, c.key) for c in TradeBar.__table__.columns}
            row["cvd"] = cumulative
            out.append(row)
        return out


BAR_COLUMNS = (
    "coin", "minute", "open", "high", "low", "close", "open_time", "open_tid", "close_time",
    "close_tid", "volume", "buy_volume", "sell_volume", "volume_delta", "trade_count",
)  # fmt: skip


@cache
def _postgres_merge_sql() -> str:
    """The bar upsert: one ``INSERT … VALUES %s ON CONFLICT DO UPDATE`` for a whole batch
    (``execute_values`` fills in the rows). Every SET expression reads the stored row's
    values as they were; open/close move only to an earlier/later (time, tid)."""
    table = TradeBar.__tablename__
    earlier = f"(EXCLUDED.open_time, EXCLUDED.open_tid) < ({table}.open_time, {table}.open_tid)"
    later = f"(EXCLUDED.close_time, EXCLUDED.close_tid) > ({table}.close_time, {table}.close_tid)"
    sets = [
        *(f"{c} = CASE WHEN {earlier} THEN EXCLUDED.{c} ELSE {table}.{c} END"
          for c in ("open", "open_time", "open_tid")),
        *(f"{c} = CASE WHEN {later} THEN EXCLUDED.{c} ELSE {table}.{c} END"
          for c in ("close", "close_time", "close_tid")),
        f"high = GREATEST({table}.high, EXCLUDED.high)",
        f"low = LEAST({table}.low, EXCLUDED.low)",
        *(f"{c} = {table}.{c} + EXCLUDED.{c}"
          for c in ("volume", "buy_volume", "sell_volume", "volume_delta", "trade_count")),
    ]  # fmt: skip
    return (
        f"INSERT INTO {table} ({', '.join(BAR_COLUMNS)}) VALUES %s "  # noqa: S608 - fixed names
        f"ON CONFLICT (coin, minute) DO UPDATE SET {', '.join(sets)}"
    )
