"""Redis goes away mid-stream: the ingester buffers in order and loses nothing within the
buffer bound once Redis is back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.metrics import BUFFER_DEPTH, EVENTS_LOST
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


@pytest.fixture()
def durable_redis() -> Iterator[RedisServer]:
    # AOF on, so what reached Redis before the restart is still there to be checked.
    server = RedisServer(appendonly=True).start()
    yield server
    server.close()


def test_redis_restart_loses_nothing_within_the_buffer(
    tmp_path: Path, durable_redis: RedisServer
) -> None:
    truth_path = tmp_path / "truth.jsonl"
    sim = SimulatorServer(
        SimulatorConfig(port=0, rate=500, seed=3, record_path=truth_path)
    ).start_in_thread()
    settings = ingest_settings(sim.ws_url, sim.info_url, durable_redis.url)
    depth_seen = 0.0
    try:
        with running_ingester(settings) as ingester:
            time.sleep(1.5)
            # When Redis is down for 2.5 seconds while trades keep coming
            durable_redis.stop()
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline:
                depth_seen = max(depth_seen, ingester.metrics.gauge(BUFFER_DEPTH)._value.get())
                time.sleep(0.1)
            durable_redis.start()
            time.sleep(2.5)
            lost = sum(
                s.value
                for m in ingester.metrics.counter(EVENTS_LOST).collect()
                for s in m.samples
                if s.name.endswith("_total")
            )
    finally:
        sim.stop()
    truth = read_ground_truth(truth_path)
    published = read_queues(durable_redis.url)

    # Then events were held while Redis was away, and none was lost
    assert depth_seen > 100 and lost == 0
    keys = published.trade_keys()
    expected = window_keys(truth.trades, published)
    assert len(expected) > 2000
    assert expected <= set(keys), f"{len(expected - set(keys))} trades lost across the restart"
    # And only the batches published just before the outage were sent a second time (the
    # outage replay; the workers' idempotent writes absorb them), each at most once more
    seqs = [b["seq"] for b in published.args("hyperwatch.persist.trades")]
    assert max(keys.values()) <= 2
    resent = sorted({q for q in seqs if seqs.count(q) > 1})
    assert resent == sorted(resent) and len(resent) <= 40
    # And apart from that replay, batches arrived in order
    firsts = list(dict.fromkeys(seqs))
    assert firsts == sorted(firsts)
