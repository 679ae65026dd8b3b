"""Acceptance: one bulk call stores 100,000 trades on PostgreSQL; the identical call adds 0."""

from __future__ import annotations

from decimal import Decimal as D

from events import Trade
from models.db import Database
from models.repositories import TradeRepository

T0 = 1_787_052_600_000


def test_given_100k_trades_when_bulk_stored_twice_then_second_call_reports_zero_new(
    pg_database: Database,
) -> None:
    trades = [
        Trade(
            "BTC" if i % 2 else "ETH",
            T0 + i // 10,
            i,
            D("117342.5") + i,
            D("0.00125"),
            "B" if i % 3 else "A",
            "0x" + "cd" * 32,
            None,
            None,
        )
        for i in range(100_000)
    ]
    with pg_database.session() as s:
        first = TradeRepository(s).add_batch(trades)
    with pg_database.session() as s:
        second = TradeRepository(s).add_batch(trades)
        count = TradeRepository(s).count()
    assert first.new == 100_000
    assert (second.new, second.duplicates) == (0, 100_000)
    assert count == 100_000
