"""Plain Redis (``redis://``, ``rediss://``, ``unix://``): the default broker kind.

kombu's Redis transport with hyperwatch's patches (``runtime.transport``: the orjson
envelope codec and undecodable items set aside) and the end-to-end confirmations, because
this transport pops a message (BRPOP) and records it as unacknowledged in a second round
trip: a worker killed in between holds the only copy (docs/ARCHITECTURE.md, decision 15).

Queues are Redis lists; kombu emulates priorities with one list per step (``priority_steps``
[0, 3, 6, 9]): step 0 is the queue's own name, the others ``<queue>\\x06\\x16<step>``.
Delivered-but-unacknowledged messages sit in the hash ``unacked`` (every queue's).
"""

from __future__ import annotations

from typing import Any, ClassVar

import redis

from runtime import transport
from runtime.brokers.base import Broker
from runtime.redis_clients import quick_redis

PRIORITY_STEPS = (0, 3, 6, 9)
PRIORITY_SEP = "\x06\x16"
UNACKED = "unacked"  # kombu's hash of delivered, unacknowledged messages
INGEST_QUEUE = "ingest"


def queue_keys(queue: str) -> list[str]:
    return [queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS]


def list_depths(client: redis.Redis, queues: tuple[str, ...]) -> dict[str, int]:
    """Messages waiting on each queue: the sum of its priority lists (one round trip)."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for key in queue_keys(queue):
            pipe.llen(key)
    lengths = iter(pipe.execute())
    return {queue: sum(int(next(lengths)) for _ in PRIORITY_STEPS) for queue in queues}


def is_quiet(client: redis.Redis) -> bool:
    """Nothing waiting on the ingest queue and nothing delivered-but-unacknowledged."""
    pipe = client.pipeline(transaction=False)
    pipe.llen(INGEST_QUEUE)
    pipe.hlen(UNACKED)
    waiting, unacked = pipe.execute()
    return int(waiting) == 0 and int(unacked) == 0


class RedisBroker(Broker):
    kind: ClassVar[str] = "redis"
    confirms_end_to_end: ClassVar[bool] = True

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        super().__init__(url)
        self.timeout_s = timeout_s
        self._client: redis.Redis | None = None

    @property
    def client(self) -> redis.Redis:
        """A quick client of the broker's Redis (opened on first use)."""
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> redis.Redis:
        return quick_redis(self.url, self.timeout_s)

    def install(self) -> None:
        transport.install()

    def transport_options(self) -> dict[str, Any]:
        return {}

    def queue_depths(self, queues: tuple[str, ...]) -> dict[str, int]:
        return list_depths(self.client, queues)

    def quiet(self) -> bool:
        return is_quiet(self.client)

    def primary(self) -> str | None:
        return None

    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
