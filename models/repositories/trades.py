"""Trades: bulk idempotent insert keyed on (coin, time, tid)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from events import Trade
from models.repositories.snapshots import BulkResult, SnapshotWriter
from models.trade import TradeSnapshot


class TradeRepository(SnapshotWriter):
    table = TradeSnapshot.__table__  # type: ignore[assignment]
    partitioned = True

    def add_batch(self, trades: Sequence[Trade]) -> BulkResult:
        """Store trades; idempotency key (coin, time, tid). ``new_rows`` are the new trades
        as (coin, time, tid, px, sz, side), for folding into bars exactly once."""
        rows = [
            {
                "coin": t.coin,
                "time": t.time,
                "tid": t.tid,
                "px": t.px,
                "sz": t.sz,
                "side": t.side,
                "hash": t.hash,
                "buyer": t.buyer,
                "seller": t.seller,
            }
            for t in trades
        ]
        return self._insert(rows, returning=("coin", "time", "tid", "px", "sz", "side"))

    def for_coin(self, coin: str, since_ms: int = 0, limit: int = 1000) -> list[TradeSnapshot]:
        stmt = (
            select(TradeSnapshot)
            .where(TradeSnapshot.coin == coin, TradeSnapshot.time >= since_ms)
            .order_by(TradeSnapshot.time, TradeSnapshot.tid)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def keys(self) -> set[tuple[str, int, int]]:
        """Every stored (coin, time, tid): for ground-truth comparisons in tests and audits."""
        rows = self.session.execute(
            select(TradeSnapshot.coin, TradeSnapshot.time, TradeSnapshot.tid)
        )
        return {(c, int(t), int(i)) for c, t, i in rows}
