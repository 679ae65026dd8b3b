"""Helpers for ingester tests against a real simulator and a private redis-server."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from events import Trade
from runtime.transport import message_parts
from settings import Settings, load_settings
from workers.ingester.service import Ingester


@dataclass
class Published:
    """Every task message found on the broker's queue lists, decoded."""

    by_task: dict[str, list[Any]] = field(default_factory=dict)

    def args(self, task: str) -> list[Any]:
        return self.by_task.get(task, [])

    def trades(self) -> list[dict[str, Any]]:
        """Every published trade as a field → wire value dict."""
        return [
            dict(zip(Trade._fields, e, strict=True))
            for batch in self.args("hyperwatch.persist.trades")
            for e in batch["events"]
        ]

    def trade_keys(self) -> Counter[tuple[str, int, int]]:
        return Counter((t["coin"], t["time"], t["tid"]) for t in self.trades())

    def sessions(self) -> dict[str, dict[str, Any]]:
        """The newest record per session id (the worker upserts by id)."""
        latest: dict[str, dict[str, Any]] = {}
        for record in self.args("hyperwatch.persist.session"):
            old = latest.get(record["id"])
            if old is None or (record["ended_at"] is not None or record["frames"] >= old["frames"]):
                latest[record["id"]] = record
        return latest


def read_queues(url: str, queues: tuple[str, ...] = ("ingest", "alerts")) -> Published:
    """Decode kombu's Redis messages: JSON envelope, body, Celery v2 [args, kwargs, embed]."""
    client = redis.Redis.from_url(url)
    out = Published()
    for queue in queues:
        # LPUSH puts the newest first: reverse for publish order.
        for raw in reversed(client.lrange(queue, 0, -1)):
            message, body = message_parts(raw)
            args, kwargs, _embed = orjson.loads(body)
            assert kwargs == {} and len(args) == 1 and isinstance(args[0], str)
            out.by_task.setdefault(message["headers"]["task"], []).append(orjson.loads(args[0]))
    client.close()
    return out


def ingest_settings(ws_url: str, info_url: str, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "hl_ws_url": ws_url,
        "hl_info_url": info_url,
        "redis_url": redis_url,
        "coins": ["BTC", "ETH", "SOL"],
        "ingester_health_port": 0,
        "ingest_batch_ms": 50,
    }
    values.update(overrides)
    return load_settings(**values)


@contextmanager
def running_ingester(settings: Settings) -> Iterator[Ingester]:
    """An in-process ingester on a thread; leaving the block stops it gracefully."""
    ingester = Ingester(settings, ingester_id="test-ingester")
    result: dict[str, int] = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", ingester.run()), daemon=True)
    thread.start()
    try:
        yield ingester
    finally:
        ingester.stop_event.set()
        thread.join(30)
    assert not thread.is_alive(), "ingester did not stop within 30 s"
    assert result.get("code") == 0


def window_keys(truth_trades: list[Any], published: Published) -> set[tuple[str, int, int]]:
    """Ground-truth trades strictly inside each coin's published time span: the ones a
    connected ingester must have published (spans cut at the edges by the replay window
    and the stop are excluded)."""
    spans: dict[str, tuple[int, int]] = {}
    for t in published.trades():
        lo, hi = spans.get(t["coin"], (t["time"], t["time"]))
        spans[t["coin"]] = (min(lo, t["time"]), max(hi, t["time"]))
    return {
        t.key
        for t in truth_trades
        if t.coin in spans and spans[t.coin][0] < t.time < spans[t.coin][1]
    }
