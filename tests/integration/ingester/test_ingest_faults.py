"""Drops and stalls: the ingester reconnects, resubscribes, publishes no duplicate, and every
trade it missed lies inside a gap it recorded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from runtime.metrics import GAPS, RECONNECTS
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


def test_drops_and_stalls_reconnect_without_duplicates_and_record_gaps(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    # Given a simulator whose sockets get dropped and stalled, replaying 5 trades on subscribe
    truth_path = tmp_path / "truth.jsonl"
    config = SimulatorConfig(port=0, rate=400, seed=5, record_path=truth_path, replay_trades=5)
    sim = SimulatorServer(config).start_in_thread()
    settings = ingest_settings(
        sim.ws_url, sim.info_url, private_redis.url,
        ping_interval_s=0.5, pong_timeout_s=0.8, stream_silence_s=1.5,
        reconnect_min_s=0.05, reconnect_max_s=0.4,
    )  # fmt: skip
    try:
        with running_ingester(settings) as ingester:
            # When: drop, stall (no data, no pongs) and drop again, with duplicates replayed
            time.sleep(1.5)
            sim.fault("duplicate")
            sim.fault("drop")
            time.sleep(1.5)
            sim.fault("stall", seconds=3)
            time.sleep(2.5)
            sim.fault("drop")
            time.sleep(1.5)
            sim.fault("malformed", count=3)
            time.sleep(1.0)
            reconnects = {
                s.labels["reason"]: s.value
                for m in ingester.metrics.counter(RECONNECTS).collect()
                for s in m.samples
                if s.name.endswith("_total")
            }
            gaps_opened = sum(
                s.value
                for m in ingester.metrics.counter(GAPS).collect()
                for s in m.samples
                if s.name.endswith("_total")
            )
    finally:
        sim.stop()
    truth = read_ground_truth(truth_path)
    published = read_queues(private_redis.url)

    # Then it reconnected after each fault: twice on a dropped socket, once on the stall
    assert sum(reconnects.values()) >= 3, reconnects
    assert set(reconnects) & {"pong_timeout", "silence"}, reconnects
    sessions = published.sessions()
    assert len(sessions) >= 4
    # And no trade was published twice (replays on resubscribe and duplicates were dropped)
    keys = published.trade_keys()
    assert max(keys.values()) == 1
    assert set(keys) <= truth.trade_keys()
    # And every session after the first recorded gaps, all closed by a newer trade
    gaps = [g for s in sessions.values() for g in s["gaps"]]
    assert gaps_opened >= 3 * 3 and len(gaps) >= 3 * 3
    closed = [g for g in gaps if g["to_ms"] is not None]
    assert all(g["stream"] == "trades" and g["from_ms"] <= g["to_ms"] for g in closed)
    # And every generated trade that was not published falls inside a recorded gap (per coin,
    # strictly inside its published span: the first replay may cut a block in two)
    unpublished = window_keys(truth.trades, published) - set(keys)
    missed = [t for t in truth.trades if t.key in unpublished]
    assert missed, "the stall must have cost some trades"
    for t in missed:
        assert any(
            g["coin"] == t.coin and g["from_ms"] <= t.time <= (g["to_ms"] or t.time) for g in gaps
        ), (
            f"trade {t.key} missing outside every recorded gap: {[g for g in gaps if g['coin'] == t.coin]}"
        )
    # And the garbage frames were counted as malformed on the session that saw them; an
    # unknown channel or the connection banner is tolerated, not malformed
    variants = [f["variant"] for f in truth.faults if f["kind"] == "malformed"]
    tolerated = {"unknown_channel", "banner"}
    assert len(variants) == 3
    assert sum(s["malformed"] for s in sessions.values()) == sum(
        v not in tolerated for v in variants
    )
