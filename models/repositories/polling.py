"""What the REST position poller reads to rank wallets: each wallet's newest fill, and the
active alerts that name a wallet. Reads only."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.alert import Alert
from models.fill import UserFill

# Addresses per IN list: far under SQLite's and PostgreSQL's bind-parameter limits, and
# each chunk is one index range scan per wallet on user_fills (user, time).
CHUNK = 1000


class PollingRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def newest_fills(self, users: Sequence[str], since_ms: int | None = None) -> dict[str, int]:
        """Wallet → ms of its newest row in ``user_fills`` (at or after ``since_ms`` when
        given: the (user, time) index then reads only the recent rows). Wallets without
        one are left out."""
        out: dict[str, int] = {}
        for start in range(0, len(users), CHUNK):
            chunk = list(users[start : start + CHUNK])
            stmt = (
                select(UserFill.user, func.max(UserFill.time))
                .where(UserFill.user.in_(chunk))
                .group_by(UserFill.user)
            )
            if since_ms is not None:
                stmt = stmt.where(UserFill.time >= since_ms)
            for user, newest in self.session.execute(stmt):
                if newest is not None:
                    out[user] = int(newest)
        return out

    def wallet_alerts(self) -> list[tuple[str, str, str, Decimal]]:
        """(wallet, coin, kind, threshold) of every active alert that names a wallet."""
        stmt = (
            select(Alert.wallet, Alert.coin, Alert.kind, Alert.threshold)
            .where(Alert.active.is_(True), Alert.wallet.is_not(None))
            .order_by(Alert.id)
        )
        return [(w, c, k, t) for w, c, k, t in self.session.execute(stmt) if w is not None]
