"""Position snapshots of tracked wallets, keyed on (user, coin, time)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from events import Position
from models.position import PositionSnapshot
from models.repositories.snapshots import BulkResult, SnapshotWriter


class PositionRepository(SnapshotWriter):
    table = PositionSnapshot.__table__  # type: ignore[assignment]
    partitioned = True

    def add_batch(self, positions: Sequence[Position]) -> BulkResult:
        """Store positions; idempotency key (user, coin, time)."""
        rows = [
            {
                "user": p.user,
                "coin": p.coin,
                "time": p.time,
                "szi": p.szi,
                "entry_px": p.entry_px,
                "position_value": p.position_value,
                "unrealized_pnl": p.unrealized_pnl,
                "return_on_equity": p.return_on_equity,
                "liquidation_px": p.liquidation_px,
                "leverage_type": p.leverage_type,
                "leverage_value": p.leverage_value,
                "margin_used": p.margin_used,
            }
            for p in positions
        ]
        return self._insert(rows)

    def latest(self, user: str, coin: str) -> PositionSnapshot | None:
        stmt = (
            select(PositionSnapshot)
            .where(PositionSnapshot.user == user, PositionSnapshot.coin == coin)
            .order_by(PositionSnapshot.time.desc())
            .limit(1)
        )
        return self.session.scalars(stmt).first()

    def latest_for_users(self, users: Sequence[str]) -> list[PositionSnapshot]:
        """The newest snapshot of every (user, coin) of these wallets."""
        if not users:
            return []
        newest = (
            select(
                PositionSnapshot.user,
                PositionSnapshot.coin,
                func.max(PositionSnapshot.time).label("t"),
            )
            .where(PositionSnapshot.user.in_(list(users)))
            .group_by(PositionSnapshot.user, PositionSnapshot.coin)
            .subquery()
        )
        stmt = select(PositionSnapshot).join(
            newest,
            (PositionSnapshot.user == newest.c.user)
            & (PositionSnapshot.coin == newest.c.coin)
            & (PositionSnapshot.time == newest.c.t),
        )
        return list(self.session.scalars(stmt))
