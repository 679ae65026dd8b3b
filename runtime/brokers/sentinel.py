"""Redis behind Sentinel (``sentinel://h:p;sentinel://h:p/db``, kombu's format): a primary,
its replicas and three or more sentinels that promote a replica when the primary dies.

The transport is kombu's ``SentinelChannel``, a subclass of the plain Redis channel in the
same kombu module, so everything the plain kind does holds unchanged: the patches
(``runtime.transport``: the codec's module globals and ``Channel._brpop_read`` are looked
up through the subclass), the lists and the ``unacked`` hash, and the end-to-end
confirmations. Only the connection differs: kombu (and :mod:`runtime.redis_clients`) ask
the sentinels for ``master_name``'s primary on every connect.

A failover adds one way to lose a message to the plain kind's: replication is
asynchronous, so writes the dead primary acknowledged but had not passed on are gone from
the promoted replica — the same loss as a plain Redis that died before its AOF fsync.
The ingester covers both the same way: when the broker fails it re-sends what it published
in the last ``INGEST_OUTAGE_REPLAY_S``, and the confirmations catch what is still missing.
The writes are idempotent, so the copies cost duplicates counted, never rows doubled.
"""

from __future__ import annotations

from typing import Any, ClassVar

import redis

from runtime.brokers.redis import RedisBroker
from runtime.redis_clients import primary_address, quick_redis


class SentinelBroker(RedisBroker):
    kind: ClassVar[str] = "sentinel"

    def __init__(self, url: str, master_name: str, timeout_s: float = 2.0) -> None:
        super().__init__(url, timeout_s)
        self.master_name = master_name

    def _connect(self) -> redis.Redis:
        return quick_redis(self.url, self.timeout_s, self.master_name)

    def transport_options(self) -> dict[str, Any]:
        # kombu reads the master's name only from here; the sentinels' own connections get
        # the same short timeouts, so a dead sentinel is skipped quickly.
        return {
            "master_name": self.master_name,
            "sentinel_kwargs": {
                "socket_timeout": self.timeout_s,
                "socket_connect_timeout": self.timeout_s,
            },
        }

    def primary(self) -> str | None:
        return primary_address(self.url, self.master_name, self.timeout_s)
