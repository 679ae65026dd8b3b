"""Tracking published batches until a worker confirms them (pure, clock injected)."""

from __future__ import annotations

from typing import cast

from runtime.clock import ManualClock
from runtime.metrics import Metrics
from workers.ingester.broker import PERSIST_TRADES, BrokerClient
from workers.ingester.confirm import AwaitingConfirmation
from workers.ingester.outbox import Envelope, Outbox
from workers.ingester.publisher import ConfirmationCheck, Publisher


def env(seq: int, kind: str = "trades", count: int = 10, source: str = "") -> Envelope:
    return Envelope(kind, seq, count, b"{}", (PERSIST_TRADES,), source=source)


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
    awaiting.settle({("", 1), ("", 3)})
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


def test_given_two_sources_when_they_number_alike_then_each_batch_is_tracked_apart() -> None:
    # Given two pipelines (two sockets) that both published their batch 1
    clock = ManualClock(start_s=100.0)
    awaiting = AwaitingConfirmation(timeout_s=1, max_events=1000, clock=clock)
    awaiting.sent(env(1, source="ing"))
    awaiting.sent(env(1, source="ing.c1"))
    clock.advance(5)
    # Then both are awaited, and confirming one source's batch 1 leaves the other's
    assert len(awaiting) == 2
    awaiting.settle({("ing", 1)})
    assert [(e.source, e.seq) for e in awaiting.due()] == [("ing.c1", 1)]


class RecordingBroker:
    errors = (ConnectionError,)

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, target: object, body: bytes, argsrepr: str) -> str:
        self.sent.append(body)
        return "id"

    def close(self) -> None:
        pass


def test_given_two_sources_when_overdue_then_confirmations_are_read_per_source() -> None:
    # Given batch 1 of two sources sent, and workers that confirmed only source "a"'s
    clock = ManualClock(start_s=100.0)
    asked: list[tuple[str, list[int]]] = []

    def confirmed(source: str, seqs: list[int]) -> set[int]:
        asked.append((source, seqs))
        return set(seqs) if source == "a" else set()

    awaiting = AwaitingConfirmation(timeout_s=1, max_events=1000, clock=clock)
    check = ConfirmationCheck(awaiting, confirmed, (), every_s=0.0)
    outbox, broker = Outbox(1000), RecordingBroker()
    publisher = Publisher(
        outbox, cast(BrokerClient, broker), Metrics(), confirmations=check, clock=clock
    )
    for source in ("a", "b"):
        env_ = Envelope("trades", 1, 10, source.encode(), (PERSIST_TRADES,), source=source)
        awaiting.sent(env_)
    # When the confirmations are overdue and the broker holds nothing
    clock.advance(5)
    publisher._step()
    # Then each source was asked about its own batch, and only "b"'s batch is sent again
    assert sorted(asked) == [("a", [1]), ("b", [1])]
    assert broker.sent == [b"b"]
