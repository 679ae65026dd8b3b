"""A batch that vanishes after publishing (a worker SIGKILLed between kombu's BRPOP and its
unacked record) is sent again once its confirmation is overdue; confirmed ones are not."""

from __future__ import annotations

import time

import orjson
import pytest
import redis

from tests.integration.ingester.support import ingest_settings, read_queues, running_ingester
from workers.confirmations import mark_done
from workers.simulator import SimulatorConfig, SimulatorServer

pytestmark = pytest.mark.integration

PERSISTED = ("hyperwatch.persist.trades", "hyperwatch.persist.asset_contexts")


def take_all(client: redis.Redis, queue: str) -> list[dict[str, object]]:
    """Atomically remove every message from the queue, as consumers that die would."""
    pipe = client.pipeline(transaction=True)
    pipe.lrange(queue, 0, -1)
    pipe.delete(queue)
    raw, _ = pipe.execute()
    return [orjson.loads(r) for r in reversed(raw)]


def test_given_vanished_batches_when_confirmation_is_overdue_then_only_unconfirmed_are_resent(
    redis_url: str,
) -> None:
    sim = SimulatorServer(SimulatorConfig(port=0, rate=300, seed=5)).start_in_thread()
    client = redis.Redis.from_url(redis_url)
    settings = ingest_settings(sim.ws_url, sim.info_url, redis_url, ingest_confirm_timeout_s=2)
    try:
        with running_ingester(settings):
            # Given batches the ingester published, then lost from the broker: a worker
            # committed (and confirmed) the even ones; the odd ones died with their worker
            time.sleep(1.5)
            gone = read_queues(redis_url)
            take_all(client, "ingest")
            sent = {b["seq"] for task in PERSISTED for b in gone.args(task)}
            assert len(sent) >= 6
            for seq in sent:
                if seq % 2 == 0:
                    mark_done(client, "test-ingester", seq, int(time.time() * 1000))
            lost = {seq for seq in sent if seq % 2}
            # When their confirmation is overdue
            time.sleep(4)
            again = read_queues(redis_url)
    finally:
        sim.stop()
        client.close()
    resent = {b["seq"] for task in PERSISTED for b in again.args(task)} & sent
    # Then exactly the unconfirmed ones were published again
    assert resent == lost
