"""Batching: flush at N events or T ms after a batch's first event, whichever first."""

from __future__ import annotations

from decimal import Decimal

from events import Mid
from runtime.clock import ManualClock
from workers.ingester.batcher import Batcher


def mids(n: int, start: int = 0) -> list[Mid]:
    return [Mid(f"C{i}", i, Decimal(1)) for i in range(start, start + n)]


def test_size_flushes_at_exactly_n_in_arrival_order() -> None:
    b = Batcher(max_events=3, max_ms=1000, clock=ManualClock())
    assert b.add("mids", mids(2)) == []
    (ready,) = b.add("mids", mids(2, start=2))
    assert ready.kind == "mids" and [m.coin for m in ready.events] == ["C0", "C1", "C2"]
    assert b.pending_events == 1


def test_a_burst_is_cut_into_full_batches_at_once() -> None:
    b = Batcher(max_events=4, max_ms=1000, clock=ManualClock())
    ready = b.add("mids", mids(11))
    assert [len(r.events) for r in ready] == [4, 4] and b.pending_events == 3
    assert [m.coin for r in ready for m in r.events] == [f"C{i}" for i in range(8)]


def test_time_flushes_max_ms_after_the_first_event_not_the_last() -> None:
    # Given a 128 ms window (exact in binary) started at t0 and topped up 64 ms later
    clock = ManualClock(start_s=0.0)
    b = Batcher(max_events=100, max_ms=128, clock=clock)
    b.add("mids", mids(1))
    clock.advance(0.064)
    b.add("mids", mids(1, start=1))
    # When 127 ms have passed since the first event: nothing is due
    clock.advance(0.063)
    assert b.due() == []
    # When 128 ms have passed: the whole batch is due
    clock.advance(0.001)
    (ready,) = b.due()
    assert len(ready.events) == 2 and b.next_deadline() is None


def test_kinds_batch_independently() -> None:
    clock = ManualClock()
    b = Batcher(max_events=2, max_ms=50, clock=clock)
    b.add("mids", mids(1))
    clock.advance(0.03)
    b.add("asset_contexts", mids(1))
    clock.advance(0.02)
    assert [r.kind for r in b.due()] == ["mids"]
    assert b.next_deadline() == clock.monotonic() + 0.03


def test_flush_all_empties_everything() -> None:
    b = Batcher(max_events=10, max_ms=10_000, clock=ManualClock())
    b.add("mids", mids(3))
    b.add("trades", mids(1))
    assert sorted(len(r.events) for r in b.flush_all()) == [1, 3]
    assert b.pending_events == 0 and b.flush_all() == [] and b.add("mids", []) == []


def test_a_kind_with_its_own_window_flushes_on_it_and_the_others_on_the_default() -> None:
    # Given mids on a 16 ms window and everything else on 128 ms
    clock = ManualClock(start_s=0.0)
    b = Batcher(max_events=100, max_ms=128, clock=clock, windows_ms={"mids": 16})
    b.add("trades", mids(1))
    b.add("mids", mids(1))
    assert b.next_deadline() == 0.016
    # When 16 ms have passed: the mids are due, the trades wait for their window
    clock.advance(0.016)
    assert [r.kind for r in b.due()] == ["mids"]
    assert b.next_deadline() == 0.128
    clock.advance(0.112)
    assert [r.kind for r in b.due()] == ["trades"]
