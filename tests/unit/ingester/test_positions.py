"""Closed positions become explicit flats, only from complete states."""

from __future__ import annotations

from decimal import Decimal

from events import Position
from runtime.hyperliquid.positions import FlatTracker


def pos(coin: str, szi: str, time: int = 1) -> Position:
    d = Decimal
    return Position("0xu", coin, time, d(szi), d(1), d(1), d(0), d(0), None, "cross", 5, d(1))


def test_a_coin_missing_from_the_next_state_is_emitted_flat() -> None:
    tracker = FlatTracker()
    assert tracker.complete_state("0xu", 1, [pos("ETH", "1"), pos("SOL", "-2")]) == [
        pos("ETH", "1"),
        pos("SOL", "-2"),
    ]
    out = tracker.complete_state("0xu", 2, [pos("ETH", "1", 2)])
    flat = out[-1]
    assert [p.coin for p in out] == ["ETH", "SOL"]
    assert flat.szi == 0 and flat.time == 2 and flat.entry_px is None and flat.leverage_value == 5
    assert tracker.complete_state("0xu", 3, [pos("ETH", "1", 3)]) == [pos("ETH", "1", 3)]


def test_users_are_independent() -> None:
    tracker = FlatTracker()
    tracker.complete_state("0xu", 1, [pos("ETH", "1")])
    assert tracker.complete_state("0xv", 2, []) == []
