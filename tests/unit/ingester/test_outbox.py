"""The bounded buffer: in order, never blocks, drops oldest and says so."""

from __future__ import annotations

import threading

from workers.ingester.broker import PERSIST_TRADES
from workers.ingester.outbox import Envelope, Outbox


def env(seq: int, count: int = 10) -> Envelope:
    return Envelope("trades", seq, count, b"{}", (PERSIST_TRADES,))


def test_in_order_and_done_removes_the_head() -> None:
    box = Outbox(100)
    box.put(env(1))
    box.put(env(2))
    head = box.head(0)
    assert head is not None and head.seq == 1
    box.done(head)
    assert box.head(0).seq == 2 and box.depth == 10  # type: ignore[union-attr]


def test_overflow_drops_the_oldest_and_returns_them() -> None:
    # Given a buffer of 30 events holding three batches of 10
    box = Outbox(30)
    for seq in (1, 2, 3):
        assert box.put(env(seq)) == []
    # When a fourth arrives
    dropped = box.put(env(4))
    # Then the oldest is handed back for loss accounting and the rest stay in order
    assert [e.seq for e in dropped] == [1] and box.depth == 30
    assert [box.head(0).seq] == [2]  # type: ignore[union-attr]


def test_the_batch_in_flight_is_never_dropped() -> None:
    box = Outbox(20)
    box.put(env(1))
    box.put(env(2))
    inflight = box.head(0)
    dropped = box.put(env(3))
    assert inflight is not None and inflight.seq == 1 and [e.seq for e in dropped] == [2]
    box.release()
    assert [e.seq for e in box.put(env(4))] == [1]


def test_put_never_blocks_while_a_consumer_waits() -> None:
    box = Outbox(10)
    got: list[int] = []
    t = threading.Thread(target=lambda: got.append(box.head(5.0).seq))  # type: ignore[union-attr]
    t.start()
    box.put(env(7))
    t.join(2.0)
    assert got == [7]


def test_session_records_coalesce_latest_per_id_and_count_for_empty() -> None:
    box = Outbox(10)
    box.put_session("a", b"1")
    box.put_session("a", b"2")
    box.put_session("b", b"3")
    assert not box.wait_empty(0)
    taken = box.take_sessions()
    assert taken == {"a": b"2", "b": b"3"}
    assert not box.wait_empty(0)  # still being sent
    box.put_session("a", b"4")
    box.sessions_done({"a": b"2", "b": b"3"})  # a newer "a" arrived meanwhile: it wins
    assert box.take_sessions() == {"a": b"4", "b": b"3"}
    box.sessions_done({})
    assert box.wait_empty(0)
