"""After a broker outage the batches published just before it are sent again, in order."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

from runtime.metrics import Metrics
from workers.ingester.broker import PERSIST_TRADES, BrokerClient
from workers.ingester.outbox import Envelope, Outbox
from workers.ingester.publisher import Publisher


class BrokerDown(ConnectionError):
    pass


class ScriptedBroker:
    """Our BrokerClient's interface: records what was sent; `down` makes sends fail."""

    errors = (BrokerDown,)

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.down = False

    def send(self, target: object, body: bytes, argsrepr: str) -> str:
        if self.down:
            raise BrokerDown("connection refused")
        self.sent.append(body)
        return "id"

    def close(self) -> None:
        pass


def quick_publisher(outbox: Outbox, broker: ScriptedBroker, replay_window_s: float) -> Publisher:
    """A publisher that retries every 10-20 ms, so outages in these tests last moments."""
    return Publisher(
        outbox,
        cast(BrokerClient, broker),
        Metrics(),
        retry_min_s=0.01,
        retry_max_s=0.02,
        replay_window_s=replay_window_s,
    )


def env(seq: int) -> Envelope:
    return Envelope("trades", seq, 10, f"batch-{seq}".encode(), (PERSIST_TRADES,))


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_given_sent_envelopes_when_requeued_front_then_they_precede_unsent_in_order() -> None:
    outbox = Outbox(max_events=1000)
    outbox.put(env(3))
    outbox.requeue_front([env(1), env(2)])
    order = []
    while (head := outbox.head(0.01)) is not None:
        order.append(head.seq)
        outbox.done(head)
    assert order == [1, 2, 3]


def test_given_recent_batches_when_broker_goes_down_then_they_are_sent_again_after_it_returns() -> (
    None
):
    # Given a publisher that sent batches 1 and 2
    outbox, broker = Outbox(max_events=1000), ScriptedBroker()
    publisher = quick_publisher(outbox, broker, replay_window_s=5)
    publisher.start()
    try:
        outbox.put(env(1))
        outbox.put(env(2))
        wait_for(lambda: len(broker.sent) == 2)
        # When the broker goes down while batch 3 is being published, then comes back
        broker.down = True
        outbox.put(env(3))
        wait_for(lambda: not publisher.reachable)
        broker.down = False
        wait_for(lambda: outbox.depth == 0)
    finally:
        publisher.stop()
    # Then 1 and 2 were sent again before 3 (duplicates are absorbed by idempotent writes)
    assert broker.sent == [b"batch-1", b"batch-2", b"batch-1", b"batch-2", b"batch-3"]


def test_given_replay_disabled_when_broker_goes_down_then_nothing_is_sent_twice() -> None:
    outbox, broker = Outbox(max_events=1000), ScriptedBroker()
    publisher = quick_publisher(outbox, broker, replay_window_s=0)
    publisher.start()
    try:
        outbox.put(env(1))
        wait_for(lambda: len(broker.sent) == 1)
        broker.down = True
        outbox.put(env(2))
        wait_for(lambda: not publisher.reachable)
        broker.down = False
        wait_for(lambda: outbox.depth == 0)
    finally:
        publisher.stop()
    assert broker.sent == [b"batch-1", b"batch-2"]


def test_given_old_batches_when_broker_goes_down_then_only_the_window_is_replayed() -> None:
    outbox, broker = Outbox(max_events=1000), ScriptedBroker()
    publisher = quick_publisher(outbox, broker, replay_window_s=0.3)
    publisher.start()
    try:
        outbox.put(env(1))
        wait_for(lambda: len(broker.sent) == 1)
        time.sleep(0.5)  # batch 1 ages out of the 0.3 s window
        outbox.put(env(2))
        wait_for(lambda: len(broker.sent) == 2)
        broker.down = True
        outbox.put(env(3))
        wait_for(lambda: not publisher.reachable)
        broker.down = False
        wait_for(lambda: outbox.depth == 0)
    finally:
        publisher.stop()
    assert broker.sent == [b"batch-1", b"batch-2", b"batch-2", b"batch-3"]
