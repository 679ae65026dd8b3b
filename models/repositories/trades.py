"""Trades: bulk idempotent insert keyed on (coin, time, tid)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table, select

from events import Trade
from models.repositories.bars import BarRepository
from models.repositories.bulk import insert_ignore_values
from models.repositories.snapshots import BulkResult, SnapshotWriter
from models.trade import TradeSnapshot

_COLUMNS = Trade._fields
# What the bar fold reads of each new trade (bars.fold).
_FOLDED = ("coin", "time", "tid", "px", "sz", "side")


class TradeRepository(SnapshotWriter):
    table: Table = TradeSnapshot.__table__  # type: ignore[assignment]
    partitioned = True

    def add_batch(self, trades: Sequence[Trade], *, fold_bars: bool = False) -> BulkResult:
        """Store trades; idempotency key (coin, time, tid).

        With ``fold_bars`` the trades that were new — only those, so a replay adds nothing —
        are folded into their 1-minute bars in the same transaction, and ``bars`` counts
        the bars touched.
        """
        if not trades:
            return BulkResult(0, 0)
        self._ensure_days(t.time for t in trades)
        # A Trade is a tuple in the order of _COLUMNS: the trades are the rows.
        new, new_rows = insert_ignore_values(
            self.session, self.table, _COLUMNS, trades, returning=_FOLDED if fold_bars else ()
        )
        bars = BarRepository(self.session).fold_in(new_rows) if fold_bars else 0
        return BulkResult(new, len(trades) - new, bars)

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
