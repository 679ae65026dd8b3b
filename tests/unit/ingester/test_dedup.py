"""Dedup of replays: trades on (coin, time, tid), fills on (user, tid), bounded FIFO."""

from __future__ import annotations

from decimal import Decimal

from events import Fill, Trade
from workers.ingester.dedup import FifoSet, FillDedup, TradeDedup


def trade(coin: str = "BTC", time: int = 1000, tid: int = 1, hash_: str = "0xh") -> Trade:
    return Trade(coin, time, tid, Decimal("1"), Decimal("1"), "B", hash_)


def fill(user: str = "0xu", tid: int = 1) -> Fill:
    one = Decimal(1)
    return Fill(
        user, "BTC", 1000, tid, 9, one, one, "A", "Open Short", one, one, one, "USDC", True, "0xh"
    )


def test_replayed_trades_are_dropped_and_counted() -> None:
    # Given trades already seen once
    dedup = TradeDedup(100)
    first = [trade(tid=1), trade(tid=2)]
    assert dedup.new(first) == (first, 0)
    # When the first frame after a resubscribe replays them with one new trade
    fresh, dropped = dedup.new([trade(tid=1), trade(tid=2), trade(tid=3)])
    # Then only the new one passes
    assert [t.tid for t in fresh] == [3] and dropped == 2


def test_same_tid_on_another_coin_or_time_is_a_different_trade() -> None:
    dedup = TradeDedup(100)
    dedup.new([trade("BTC", 1000, 7)])
    fresh, dropped = dedup.new([trade("ETH", 1000, 7), trade("BTC", 1001, 7)])
    assert len(fresh) == 2 and dropped == 0


def test_shared_hash_does_not_make_trades_duplicates() -> None:
    # A taker sweep: one hash, many tids — all are kept.
    dedup = TradeDedup(100)
    fresh, _ = dedup.new([trade(tid=i, hash_="0xsame") for i in range(5)])
    assert len(fresh) == 5


def test_duplicates_inside_one_frame_are_dropped() -> None:
    fresh, dropped = TradeDedup(100).new([trade(tid=1), trade(tid=1)])
    assert len(fresh) == 1 and dropped == 1


def test_memory_is_bounded_and_forgets_the_oldest_first() -> None:
    # Given a FIFO of three keys, filled with 1, 2, 3 then 4
    fifo = FifoSet(3)
    for key in (1, 2, 3, 4):
        assert fifo.add(key)
    # Then 1 was forgotten (it would pass again) and 2..4 are remembered
    assert len(fifo) == 3 and 1 not in fifo and {2, 3, 4} <= {k for k in (2, 3, 4) if k in fifo}
    assert fifo.add(1) is True and fifo.add(4) is False


def test_out_of_range_tids_still_dedup_exactly() -> None:
    dedup = TradeDedup(10)
    huge = trade(tid=2**60)
    assert dedup.new([huge]) == ([huge], 0)
    assert dedup.new([trade(tid=2**60)]) == ([], 1)
    assert dedup.new([trade(tid=2**60 + 1)])[1] == 0


def test_fills_dedup_per_user_on_tid() -> None:
    dedup = FillDedup(100)
    dedup.new([fill("0xa", 1)])
    fresh, dropped = dedup.new([fill("0xa", 1), fill("0xb", 1), fill("0xa", 2)])
    assert [(f.user, f.tid) for f in fresh] == [("0xb", 1), ("0xa", 2)] and dropped == 1
