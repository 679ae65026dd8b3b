"""Behind Redis Sentinel: the cache client, the ingester's broker client and health follow
the primary through a failover. A private group (tests/support/sentinel.py) on spare ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from runtime.brokers import SentinelBroker
from runtime.health import Probe, check_redis
from runtime.redis_clients import cache_redis
from runtime.transport import message_parts
from settings import Settings, load_settings
from tests.support.sentinel import SentinelGroup
from tests.support.stack import wait_until
from workers.ingester.broker import PERSIST_TRADES, BrokerClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def group() -> Iterator[SentinelGroup]:
    group = SentinelGroup().start()
    try:
        yield group
    finally:
        group.close()


def _settings(group: SentinelGroup) -> Settings:
    return load_settings(redis_url=group.url, redis_sentinel_master=group.master_name)


def test_given_sentinel_urls_when_the_primary_is_killed_then_clients_follow_the_promoted_node(
    group: SentinelGroup,
) -> None:
    # Given the cache and the ingester's broker client on the group's sentinel:// URL
    settings = _settings(group)
    cache = cache_redis(settings)
    broker = SentinelBroker(group.url, group.master_name)
    sender = BrokerClient(group.url, kind=broker)
    cache.set("hw:test:before", "1")
    cache.wait(1, 2000)  # replicated before the kill: replication is asynchronous
    sender.send(PERSIST_TRADES, b'{"v":2}', "batch")
    assert broker.queue_depths(("ingest",)) == {"ingest": 1} and not broker.quiet()
    old = group.primary_port()
    assert broker.primary() == f"127.0.0.1:{old}"

    # When the primary is SIGKILLed and the sentinels promote the replica
    group.kill_primary()
    new = group.wait_failover(old)

    # Then both reach the new primary: what was replicated is there, new writes land
    def sends() -> bool:
        try:
            sender.send(PERSIST_TRADES, b'{"v":2,"after":1}', "batch")
            return True
        except sender.errors:
            return False

    wait_until(sends, 20, "the broker client to publish after the failover", every=0.2)
    assert broker.primary() == f"127.0.0.1:{new}"
    direct = redis.Redis(port=new)
    bodies = [message_parts(raw)[1] for raw in direct.lrange("ingest", 0, -1)]
    assert any(b"after" in body for body in bodies)
    wait_until(lambda: _answers(cache), 20, "the cache client after the failover")
    assert cache.get("hw:test:before") == b"1"

    # … and health names the promoted node
    probe = Probe.from_settings(settings)
    try:
        m = probe.measure()
    finally:
        probe.close()
    assert m.redis_primary == f"127.0.0.1:{new}"
    assert check_redis("redis", m.redis_latency_s, settings, m.redis_primary).data["primary"] == (
        f"127.0.0.1:{new}"
    )
    assert isinstance(m.queue_depths, dict) and m.queue_depths["ingest"] >= 1
    sender.close()
    broker.close()


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
