"""Steady stream: every trade the simulator generated while we were connected is published
exactly once, with its fields unchanged; market state reaches alerts and the cache."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
import redis

from tests.integration.ingester.support import (
    ingest_settings,
    read_queues,
    running_ingester,
    window_keys,
)
from tests.support.services import RedisServer
from workers.simulator import SimulatorConfig, SimulatorServer
from workers.simulator.groundtruth import read_ground_truth

pytestmark = pytest.mark.integration


def test_steady_stream_publishes_every_trade_exactly_once(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    # Given a simulator at 600 trades/s recording its ground truth
    truth_path = tmp_path / "truth.jsonl"
    config = SimulatorConfig(port=0, rate=600, seed=11, record_path=truth_path, users=2)
    sim = SimulatorServer(config).start_in_thread()
    users = list(config.all_users)
    try:
        # When the ingester runs against it for three seconds, one wallet over WS; the
        # other is beyond WS_USER_LIMIT: the workers' poll job's, never the ingester's
        settings = ingest_settings(
            sim.ws_url, sim.info_url, private_redis.url, tracked_wallets=users,
            ws_user_limit=1,
        )  # fmt: skip
        with running_ingester(settings):
            time.sleep(3.0)
    finally:
        sim.stop()
    truth = read_ground_truth(truth_path)
    published = read_queues(private_redis.url)

    # Then no trade was published twice, none was invented, none inside the span is missing
    keys = published.trade_keys()
    assert keys and max(keys.values()) == 1
    truth_by_key = {t.key: t for t in truth.trades}
    assert set(keys) <= set(truth_by_key)
    expected = window_keys(truth.trades, published)
    assert len(expected) > 1000 and expected <= set(keys)
    # And every field is the exchange's, unchanged (Decimal strings, buyer/seller)
    for t in published.trades()[:200]:
        g = truth_by_key[(t["coin"], t["time"], t["tid"])]
        assert (t["px"], t["sz"], t["side"], t["hash"], t["buyer"], t["seller"]) == (
            g.px, g.sz, g.side, g.hash, g.buyer, g.seller,
        )  # fmt: skip
    # And batches carry the ingester id and a strictly increasing seq
    seqs = [b["seq"] for b in published.args("hyperwatch.persist.trades")]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert {b["source"] for b in published.args("hyperwatch.persist.trades")} == {"test-ingester"}
    # And market state went to persist and alerts; positions of the WS wallet only (the
    # ingester polls nothing: with standbys beside it, every one of them would)
    alert_kinds = {b["kind"] for b in published.args("hyperwatch.alerts.evaluate")}
    assert {"mids", "asset_contexts", "positions"} <= alert_kinds
    position_users = {
        e["user"] for b in published.args("hyperwatch.persist.positions") for e in b["events"]
    }
    assert position_users == {users[0]} or not truth.fills  # no fills, no positions
    # And the one session record ended cleanly with its counters, and with a gap opened at
    # the stop for every coin traded: nothing after it was received (the next start closes it)
    (session,) = published.sessions().values()
    assert session["end_reason"] == "shutdown"
    trade_gaps = [g for g in session["gaps"] if g["stream"] == "trades"]
    assert {(g["key"], g["ended_by"], g["to_ms"]) for g in trade_gaps} == {
        (coin, "shutdown", None) for coin, _time, _tid in keys
    }
    assert session["events"] >= sum(keys.values()) and session["malformed"] == 0
    # And the cache holds the latest mid and context per coin, and liveness per stream
    cache = redis.Redis.from_url(private_redis.url)
    assert set(cache.hkeys("hw:latest:mid")) >= {b"BTC", b"ETH", b"SOL"}
    ctx = orjson.loads(cache.hget("hw:latest:ctx", "BTC") or b"{}")
    assert ctx["coin"] == "BTC" and isinstance(ctx["mark_px"], str)
    assert {b"trades", b"activeAssetCtx", b"allMids"} <= set(cache.hkeys("hw:ingest:last_event_ms"))
    assert cache.get("hw:ingester:test-ingester:heartbeat") is not None
    assert cache.ttl("hw:ingester:test-ingester:heartbeat") > 0
