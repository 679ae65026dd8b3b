"""Tracked wallets' fills, keyed on (user, tid)."""

from __future__ import annotations

from collections.abc import Sequence

from events import Fill
from models.fill import UserFill
from models.repositories.snapshots import BulkResult, SnapshotWriter


class FillRepository(SnapshotWriter):
    table = UserFill.__table__  # type: ignore[assignment]

    def add_batch(self, fills: Sequence[Fill]) -> BulkResult:
        """Store fills; idempotency key (user, tid). ``inserted``: the (user, tid) of each
        fill this call stored."""
        rows = [
            {
                "user": f.user,
                "tid": f.tid,
                "coin": f.coin,
                "time": f.time,
                "oid": f.oid,
                "px": f.px,
                "sz": f.sz,
                "side": f.side,
                "dir": f.dir,
                "start_position": f.start_position,
                "closed_pnl": f.closed_pnl,
                "fee": f.fee,
                "fee_token": f.fee_token,
                "crossed": f.crossed,
                "hash": f.hash,
            }
            for f in fills
        ]
        return self._insert(rows, returning=("user", "tid"))
