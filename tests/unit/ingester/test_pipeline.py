"""The per-frame path: parse → dedup → gaps → batches → outbox, and loss accounting."""

from __future__ import annotations

import orjson
import pytest

from events import decode_batch
from runtime.clock import ManualClock
from runtime.metrics import DUPLICATES_DROPPED, EVENTS_LOST, MALFORMED, Metrics
from tests.unit.ingester import frames
from workers.ingester.batcher import Batcher
from workers.ingester.cache import LatestCache
from workers.ingester.outbox import Envelope, Outbox
from workers.ingester.pipeline import SESSION_EVERY_S, Pipeline


def make(
    batch: int = 100, batch_ms: int = 100, buffer: int = 1000
) -> tuple[Pipeline, Outbox, ManualClock, Metrics]:
    clock = ManualClock()
    outbox = Outbox(buffer)
    metrics = Metrics()
    pipe = Pipeline(
        "ing-1", Batcher(batch, batch_ms, clock), outbox, LatestCache(), metrics, clock, 1000
    )
    pipe.on_connected()
    return pipe, outbox, clock, metrics


def trades_frame(coin: str, tids: list[int], time: int = 1000) -> bytes:
    return orjson.dumps(
        {"channel": "trades", "data": [
            {"coin": coin, "side": "B", "px": "1.5", "sz": "2", "time": time, "hash": "0xh", "tid": t}
            for t in tids
        ]}
    )  # fmt: skip


def drain(outbox: Outbox) -> list[Envelope]:
    out = []
    while (env := outbox.head(0)) is not None:
        out.append(env)
        outbox.done(env)
    return out


def test_replayed_trades_are_published_once_with_monotonic_seq() -> None:
    # Given trades 1..3 then a replay of 2..3 with new 4
    pipe, outbox, clock, metrics = make(batch=100, batch_ms=50)
    pipe.on_frame(trades_frame("BTC", [1, 2, 3]), 1)
    pipe.on_frame(trades_frame("BTC", [2, 3, 4]), 2)
    # When the batch window closes
    clock.advance(0.05)
    pipe.tick()
    # Then one trades batch with 1..4 leaves, and the replay is counted
    (env,) = drain(outbox)
    batch = decode_batch(orjson.loads(env.body), "trades")
    assert [t.tid for t in batch.events] == [1, 2, 3, 4]
    assert batch.source == "ing-1" and batch.seq == env.seq == 1
    assert pipe.session.duplicates == 2 and pipe.session.events == 4
    assert metrics.counter(DUPLICATES_DROPPED).labels("trades")._value.get() == 2


def test_full_batches_leave_without_waiting_and_seq_grows() -> None:
    pipe, outbox, _clock, _ = make(batch=2, batch_ms=10_000)
    pipe.on_frame(trades_frame("BTC", [1, 2, 3, 4, 5]), 1)
    envs = drain(outbox)
    assert [e.count for e in envs] == [2, 2] and [e.seq for e in envs] == [1, 2]


def test_market_state_goes_to_persist_and_alerts_and_the_cache() -> None:
    cache = LatestCache()
    clock = ManualClock()
    outbox = Outbox(1000)
    pipe = Pipeline("i", Batcher(10, 10, clock), outbox, cache, Metrics(), clock, 1000)
    pipe.on_frame(frames.ASSET_CTX, 777)
    pipe.on_frame(frames.ALL_MIDS, 778)
    pipe.flush_all()
    by_kind = {e.kind: e for e in drain(outbox)}
    assert [t.task for t in by_kind["asset_contexts"].targets] == [
        "hyperwatch.persist.asset_contexts",
        "hyperwatch.alerts.evaluate",
    ]
    assert [t.task for t in by_kind["mids"].targets] == ["hyperwatch.alerts.evaluate"]
    mids, ctx, last = cache.take()
    assert str(mids["BTC"].px) == "117342.5" and ctx["BTC"].time == 777
    assert last == {"activeAssetCtx": 777, "allMids": 778}


def test_a_drop_opens_gaps_at_once_and_the_first_new_trade_closes_them() -> None:
    # Given BTC trades seen up to t=1000 on the first connection
    pipe, outbox, _clock, _ = make()
    pipe.on_frame(trades_frame("BTC", [1], time=1000), 1)
    first_id = pipe.session.id
    # When the socket drops and a new one replays trade 1 and brings trade 2 at t=5000
    pipe.on_disconnected("closed")
    pipe.on_connected()
    pipe.on_frame(trades_frame("BTC", [1], time=1000), 2)
    pipe.on_frame(trades_frame("BTC", [2], time=5000), 3)
    pipe.publish_session()
    # Then the old session's record carries its end and the gap it opened, still open; the
    # new session's carries the same gap closed: [1000, 5000]
    records = {r["id"]: r for r in (orjson.loads(v) for v in outbox.take_sessions().values())}
    old = records[first_id]
    assert old["end_reason"] == "closed" and old["ended_at"] is not None
    assert [(g["coin"], g["from_ms"], g["to_ms"], g["ended_by"]) for g in old["gaps"]] == [
        ("BTC", 1000, None, "closed")
    ]
    new = records[pipe.session.id]
    assert [(g["id"], g["from_ms"], g["to_ms"]) for g in new["gaps"]] == [
        (old["gaps"][0]["id"], 1000, 5000)
    ]
    assert new["duplicates"] == 1 and new["ended_at"] is None


def test_overflow_loss_is_counted_logged_and_recorded_as_gaps(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a buffer of 4 events and nobody publishing
    pipe, outbox, _clock, metrics = make(batch=2, batch_ms=10_000, buffer=4)
    # When six trades arrive in batches of two
    pipe.on_frame(trades_frame("BTC", [1, 2], time=100), 1)
    pipe.on_frame(trades_frame("ETH", [3, 4], time=200), 1)
    pipe.on_frame(trades_frame("BTC", [5, 6], time=300), 1)
    # Then the oldest batch is dropped, counted, logged and recorded as a BTC gap
    assert [e.seq for e in drain(outbox)] == [2, 3]
    assert metrics.counter(EVENTS_LOST).labels("trades")._value.get() == 2
    assert "LOST" in caplog.text
    assert [(g.stream, g.key, g.from_ms, g.to_ms, g.ended_by) for g in pipe.session.gaps] == [
        ("trades", "BTC", 100, 100, "loss")
    ]


def test_malformed_frames_are_counted_and_never_stop_the_flow() -> None:
    pipe, outbox, _clock, metrics = make()
    pipe.on_frame(b"garbage", 1)
    pipe.on_frame(trades_frame("BTC", [1]), 2)
    pipe.flush_all()
    assert pipe.session.malformed == 1 and pipe.session.frames == 2
    assert metrics.counter(MALFORMED).labels("not_json")._value.get() == 1
    assert sum(e.count for e in drain(outbox)) == 1


def test_fills_snapshot_is_deduped_against_earlier_fills() -> None:
    pipe, outbox, _clock, _ = make()
    pipe.on_frame(frames.USER_FILLS_SNAPSHOT, 1)
    pipe.on_frame(frames.USER_FILLS_SNAPSHOT, 2)  # the snapshot after a resubscribe
    pipe.on_frame(frames.USER_FILLS_UPDATE, 3)
    pipe.flush_all()
    (env,) = drain(outbox)
    assert env.kind == "fills" and env.count == 3 and pipe.session.duplicates == 2


def test_session_record_repeats_every_period() -> None:
    pipe, outbox, clock, _ = make()
    outbox.take_sessions()
    outbox.sessions_done({})
    clock.advance(SESSION_EVERY_S)
    pipe.tick()
    assert list(outbox.take_sessions()) == [pipe.session.id]


def test_closed_gaps_reach_the_worker_within_a_quarter_second_in_one_record() -> None:
    # Given BTC and ETH seen, a drop, a reconnect, and the session records sent so far taken
    pipe, outbox, clock, _ = make()
    pipe.on_frame(trades_frame("BTC", [1], time=1000), 1)
    pipe.on_frame(trades_frame("ETH", [2], time=1000), 1)
    pipe.on_disconnected("closed")
    pipe.on_connected()
    outbox.take_sessions()
    # When both coins' first new trades close their gaps
    pipe.on_frame(trades_frame("BTC", [3], time=2000), 2)
    pipe.on_frame(trades_frame("ETH", [4], time=2000), 2)
    pipe.tick()
    assert outbox.take_sessions() == {}  # not one record per close …
    clock.advance(0.25)
    pipe.tick()
    # Then one record carries both closes, a quarter second later (not the 10 s cadence)
    (record,) = (orjson.loads(v) for v in outbox.take_sessions().values())
    assert sorted((g["key"], g["to_ms"]) for g in record["gaps"]) == [("BTC", 2000), ("ETH", 2000)]
