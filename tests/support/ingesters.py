"""Several ingesters of one feed as real processes, for the failover test and benchmark.

Each ingester reaches Redis (cache, lease and broker) through its own :class:`TcpProxy`,
so a test can cut one off. The leader is read from the lease key itself (its value names
the owner's pid), never from the ingesters' logs.
"""

from __future__ import annotations

import signal
import time

from runtime import keys
from tests.support.proxy import TcpProxy
from tests.support.services import RedisServer, free_port
from tests.support.stack import IngesterProcess, Stack, wait_until

FEED = "failover"
LEASE_TTL_S = 1.5


class IngesterPair:
    """A feed's ingesters, each behind its own proxy to Redis (so one can be cut off)."""

    def __init__(self, stack: Stack, feed: str = FEED, lease_ttl_s: float = LEASE_TTL_S) -> None:
        self.stack = stack
        self.feed = feed
        self.lease_ttl_s = lease_ttl_s
        self.serial = 0
        self.running: dict[str, tuple[IngesterProcess, TcpProxy]] = {}

    def start(self) -> str:
        self.serial += 1
        name = f"ingester-{self.serial}"
        server = self.stack.redis_server
        assert isinstance(server, RedisServer), "ingesters behind proxies need a plain Redis"
        proxy = TcpProxy(server.port).start()
        url = f"redis://{proxy.url_netloc}/0"
        env = self.stack.env(
            ingester_health_port=free_port(),
            ingester_name=self.feed,
            ingest_lease_ttl_s=self.lease_ttl_s,
            redis_url=url,
            broker_url=url,
        )
        process = IngesterProcess(self.stack.workdir, env, name=name).wait_ready()
        self.running[name] = (process, proxy)
        return name

    def lease_owner(self) -> str | None:
        value = self.stack.redis.get(keys.INGEST_LEASE.name(feed=self.feed))
        if value is None:
            return None
        pid = int(value.decode().rsplit("-", 1)[1])
        for name, (process, _) in self.running.items():
            if process.process.pid == pid:
                return name
        return f"pid {pid}"

    def leader(self, timeout: float = 10.0) -> str:
        wait_until(lambda: self.lease_owner() in self.running, timeout, "a leader")
        owner = self.lease_owner()
        assert owner is not None
        return owner

    def wait_takeover(self, old: str) -> tuple[str, float]:
        """The new leader and seconds since ``started`` until it held the lease."""
        started = time.monotonic()
        while True:
            owner = self.lease_owner()
            if owner is not None and owner != old and owner in self.running:
                return owner, time.monotonic() - started
            assert time.monotonic() - started < 15, "no takeover within 15 s"
            time.sleep(0.01)

    def kill(self, name: str) -> None:
        process, proxy = self.running.pop(name)
        process.process.send_signal(signal.SIGKILL)
        process.process.wait(10)
        process.stop()
        proxy.close()

    def stop_all(self) -> dict[str, int]:
        codes = {}
        # The standby first: the leader then has no one to hand over to and records the
        # final stop's gaps, which are the only ones allowed.
        leader = self.lease_owner()
        for name in sorted(self.running, key=lambda n: n == leader):
            process, proxy = self.running.pop(name)
            codes[name] = process.stop()
            proxy.close()
        return codes
