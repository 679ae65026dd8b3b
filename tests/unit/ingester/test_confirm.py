"""Tracking published batches until a worker confirms them (pure, clock injected)."""

from __future__ import annotations

from runtime.clock import ManualClock
from workers.ingester.broker import PERSIST_TRADES
from workers.ingester.confirm import AwaitingConfirmation
from workers.ingester.outbox import Envelope


def env(seq: int, kind: str = "trades", count: int = 10) -> Envelope:
    return Envelope(kind, seq, count, b"{}", (PERSIST_TRADES,))


def test_given_sent_batches_when_timeout_passes_then_only_old_ones_are_due() -> None:
    clock = ManualClock(start_s=100.0)
    awaiting = AwaitingConfirmation(timeout_s=30, max_events=1000, clock=clock)
    awaiting.sent(env(1))
    clock.advance(20)
    awaiting.sent(env(2))
    clock.advance(15)
    assert [e.seq for e in awaiting.due()] == [1]


def test_given_confirmed_batches_when_settled_then_they_are_no_longer_due() -> None:
    clock = ManualClock(start_s=100.0)
    awaiting = AwaitingConfirmation(timeout_s=1, max_events=1000, clock=clock)
    for seq in (1, 2, 3):
        awaiting.sent(env(seq))
    clock.advance(5)
    awaiting.settle({1, 3})
    assert [e.seq for e in awaiting.due()] == [2]
    assert len(awaiting) == 1


def test_given_mids_batches_when_sent_then_they_are_not_tracked() -> None:
    awaiting = AwaitingConfirmation(timeout_s=1, max_events=1000, clock=ManualClock(start_s=100.0))
    awaiting.sent(env(1, kind="mids"))
    assert len(awaiting) == 0


def test_given_bound_when_exceeded_then_oldest_stop_being_tracked_and_are_counted() -> None:
    awaiting = AwaitingConfirmation(timeout_s=1, max_events=25, clock=ManualClock(start_s=100.0))
    for seq in (1, 2, 3):
        awaiting.sent(env(seq))
    assert len(awaiting) == 2
    assert awaiting.untracked == 10


def test_given_resent_batch_when_sent_again_then_it_is_tracked_from_the_new_time() -> None:
    clock = ManualClock(start_s=100.0)
    awaiting = AwaitingConfirmation(timeout_s=10, max_events=1000, clock=clock)
    awaiting.sent(env(1))
    clock.advance(11)
    awaiting.sent(env(1))
    assert awaiting.due() == []
