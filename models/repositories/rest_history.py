"""REST healing's candles and funding rates (models/rest_history.py): insert, never overwrite."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, select

from models.repositories.base import Repository
from models.repositories.bulk import insert_ignore
from models.rest_history import FundingRate, RestBar


class RestHistoryRepository(Repository[RestBar]):
    model = RestBar

    def add_bars(self, rows: Sequence[dict[str, Any]]) -> int:
        """Store candles; idempotency key (coin, minute). Returns the new rows."""
        table: Table = RestBar.__table__  # type: ignore[assignment]
        return insert_ignore(self.session, table, rows)[0] if rows else 0

    def add_funding(self, rows: Sequence[dict[str, Any]]) -> int:
        """Store funding rates; idempotency key (coin, time). Returns the new rows."""
        table: Table = FundingRate.__table__  # type: ignore[assignment]
        return insert_ignore(self.session, table, rows)[0] if rows else 0

    def bars(self, coin: str, since_ms: int = 0) -> list[RestBar]:
        stmt = select(RestBar).where(RestBar.coin == coin, RestBar.minute >= since_ms)
        return list(self.session.scalars(stmt.order_by(RestBar.minute)))

    def funding(self, coin: str, since_ms: int = 0) -> list[FundingRate]:
        stmt = select(FundingRate).where(FundingRate.coin == coin, FundingRate.time >= since_ms)
        return list(self.session.scalars(stmt.order_by(FundingRate.time)))
