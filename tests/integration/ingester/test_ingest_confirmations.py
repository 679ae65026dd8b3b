"""A batch that vanishes after publishing (a worker SIGKILLed between kombu's BRPOP and its
unacked record) is sent again once its confirmation is overdue and the broker holds
nothing; confirmed batches are never sent twice."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import pytest
import redis

from runtime.confirmations import mark_done
from runtime.transport import message_parts
from tests.integration.ingester.support import ingest_settings, running_ingester
from workers.simulator import SimulatorConfig, SimulatorServer

pytestmark = pytest.mark.integration

PERSISTED = ("hyperwatch.persist.trades", "hyperwatch.persist.asset_contexts")


def seq_of(raw: bytes) -> tuple[str, int]:
    message, body = message_parts(raw)
    args, _kwargs, _embed = orjson.loads(body)
    return message["headers"]["task"], int(orjson.loads(args[0]).get("seq", -1))


class LossyWorker(threading.Thread):
    """Takes every message off the ingest queue; confirms each persisted batch except those
    it 'dies' holding (the odd ones seen during the first second)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(url)
        self.stop = threading.Event()
        self.lost: set[int] = set()
        self.seen: list[int] = []
        self.started = time.monotonic()

    def run(self) -> None:
        while not self.stop.is_set():
            item = self.client.brpop(["ingest"], timeout=0.2)
            if item is None:
                continue
            task, seq = seq_of(item[1])
            if task not in PERSISTED:
                continue
            self.seen.append(seq)
            dying = time.monotonic() - self.started < 1.0 and seq % 2 == 1 and seq not in self.lost
            if dying:
                self.lost.add(seq)
            else:
                mark_done(self.client, "test-ingester", seq, int(time.time() * 1000))


def test_given_batches_lost_by_a_dying_worker_when_overdue_and_broker_quiet_then_resent_once(
    redis_url: str,
) -> None:
    sim = SimulatorServer(SimulatorConfig(port=0, rate=200, seed=5)).start_in_thread()
    worker = LossyWorker(redis_url)
    settings = ingest_settings(sim.ws_url, sim.info_url, redis_url, ingest_confirm_timeout_s=2)
    result: dict[str, Any] = {}
    try:
        worker.start()
        with running_ingester(settings):
            # Given a worker that died holding some batches (and confirmed the rest)
            # When their confirmation is overdue while nothing else is pending
            time.sleep(5)
    finally:
        worker.stop.set()
        worker.join(5)
        sim.stop()
        result["seen"] = list(worker.seen)
    seen = result["seen"]
    # Then every lost batch arrived a second time, and no confirmed batch did
    assert worker.lost, "the stand-in worker lost nothing; the test proves nothing"
    twice = {seq for seq in set(seen) if seen.count(seq) > 1}
    assert twice == worker.lost
    assert all(seen.count(seq) == 2 for seq in worker.lost)
