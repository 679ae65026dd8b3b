"""Latest market state and ingest liveness in Redis, for alerts and health checks.

Keys (contract with alerts/health): hash ``keys.LATEST_MIDS`` (coin → ``{"px", "time"}``),
hash ``keys.LATEST_CONTEXTS`` (coin → the AssetContext wire dict), hash
``keys.INGEST_LAST_EVENT`` (stream → ms of the newest event) and
``keys.INGESTER_HEARTBEAT`` (ms, expiring). The parsing thread only records into dicts
(:meth:`LatestCache.record_*`, a lock and a dict store per frame); the :class:`CacheWriter`
thread writes what changed in one pipeline a few times a second, so a slow or absent Redis
never delays reading the socket. Values are latest-state: when Redis is away they are
merged and written on return, nothing accumulates beyond one value per key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

import orjson
import redis

from events import AssetContext, Mid, event_to_wire
from runtime import keys
from runtime.clock import Clock
from runtime.lifecycle import join_in_slices
from runtime.metrics import INGEST_LAG, Metrics
from runtime.redis_clients import redis_client
from workers.ingester.gaps import GapJournal
from workers.ingester.lease import Leadership, fenced_journal_write

log = logging.getLogger(__name__)

MIDS_KEY = keys.LATEST_MIDS.name()
CTX_KEY = keys.LATEST_CONTEXTS.name()
LAST_EVENT_KEY = keys.INGEST_LAST_EVENT.name()
HEARTBEAT_TTL_S = 60


def heartbeat_key(ingester_id: str) -> str:
    return keys.INGESTER_HEARTBEAT.name(ingester_id=ingester_id)


class LatestCache:
    """What changed since the last write. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mids: dict[str, Mid] = {}
        self._ctx: dict[str, AssetContext] = {}
        self._last_ms: dict[str, int] = {}
        self.newest_ms: dict[str, int] = {}  # never cleared: feeds the lag gauge

    def record_mids(self, mids: Iterable[Mid]) -> None:
        with self._lock:
            for m in mids:
                self._mids[m.coin] = m

    def record_contexts(self, contexts: Iterable[AssetContext]) -> None:
        with self._lock:
            for c in contexts:
                self._ctx[c.coin] = c

    def record_stream(self, stream: str, newest_ms: int) -> None:
        with self._lock:
            if newest_ms > self.newest_ms.get(stream, -1):
                self._last_ms[stream] = newest_ms
                self.newest_ms[stream] = newest_ms

    def newest(self) -> dict[str, int]:
        with self._lock:
            return dict(self.newest_ms)

    def take(self) -> tuple[dict[str, Mid], dict[str, AssetContext], dict[str, int]]:
        with self._lock:
            taken = (self._mids, self._ctx, self._last_ms)
            self._mids, self._ctx, self._last_ms = {}, {}, {}
            return taken

    def give_back(
        self, mids: dict[str, Mid], ctx: dict[str, AssetContext], last: dict[str, int]
    ) -> None:
        """Re-queue values a failed write did not store, unless newer ones arrived."""
        with self._lock:
            for coin, m in mids.items():
                self._mids.setdefault(coin, m)
            for coin, c in ctx.items():
                self._ctx.setdefault(coin, c)
            for stream, ms in last.items():
                self._last_ms.setdefault(stream, ms)


class CacheWriter(threading.Thread):
    """Writes the cache and the heartbeat every ``interval_s`` until stopped."""

    def __init__(
        self,
        cache: LatestCache,
        redis_url: str,
        ingester_id: str,
        metrics: Metrics,
        clock: Clock,
        interval_s: float = 0.25,
        timeout_s: float = 2.0,
        journal: GapJournal | None = None,
        feed: str = "default",
        leadership: Leadership | None = None,
        master_name: str | None = None,
    ) -> None:
        super().__init__(name="ingest-cache", daemon=True)
        self._cache = cache
        self._journal = journal or GapJournal()
        self._feed = feed
        self._leadership = leadership or Leadership.sole()
        self._client = redis_client(  # master_name: a sentinel:// REDIS_URL's master
            redis_url, master_name, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._hb_key = heartbeat_key(ingester_id)
        self._metrics = metrics
        self._clock = clock
        self._interval_s = interval_s
        self._stop_event = threading.Event()
        self.reachable = False
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            while not self._stop_event.wait(self._interval_s):
                self.write_once()
            self.write_once()
        except BaseException as exc:  # a bug here must stop the process, not just this thread
            self.failure = exc
            raise

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop_event.set()
        join_in_slices(self, timeout_s)  # called on the main thread: signals must get through

    def write_once(self) -> bool:
        """One pipelined write of everything that changed; False if Redis was unreachable."""
        mids, ctx, last = self._cache.take()
        now_ms = self._clock.time_ms()
        self._update_lag(now_ms)
        pipe = self._client.pipeline(transaction=False)
        if mids:
            pipe.hset(MIDS_KEY, mapping={c: _mid_json(m) for c, m in mids.items()})
        if ctx:
            pipe.hset(CTX_KEY, mapping={c: orjson.dumps(event_to_wire(v)) for c, v in ctx.items()})
        if last:
            pipe.hset(LAST_EVENT_KEY, mapping={k: v for k, v in last.items()})
        pipe.set(self._hb_key, now_ms, ex=HEARTBEAT_TTL_S)
        try:
            pipe.execute()
            self._write_journal()
        except (redis.RedisError, OSError) as exc:
            self._cache.give_back(mids, ctx, last)
            if self.reachable:
                log.warning("cache redis unreachable, will retry: %s", exc)
            self.reachable = False
            return False
        if not self.reachable:
            log.info("cache redis reachable")
        self.reachable = True
        return True

    def _write_journal(self) -> None:
        """The gap journal, fenced by the lease: only the feed's leader writes it (a
        standby's holes are its own, and its newest times are not the feed's record)."""
        leadership = self._leadership
        if leadership.awaiting_promotion:
            return  # the takeover is settling gaps into the journal: they are the feed's
        newest, gaps = self._journal.take()
        if not (newest or gaps) or not leadership.leading:
            return
        if leadership.fence is None and not leadership.is_sole:
            return  # lost between the two reads: never write unfenced for a leased feed
        try:
            written = fenced_journal_write(self._client, self._feed, leadership.fence, newest, gaps)
        except (redis.RedisError, OSError):
            self._journal.give_back(newest, gaps)
            raise
        if not written:
            log.warning("gap journal write refused: this ingester no longer holds the lease")

    def _update_lag(self, now_ms: int) -> None:
        gauge = self._metrics.gauge(INGEST_LAG)
        for stream, newest in self._cache.newest().items():
            gauge.labels(stream).set(max(0.0, (now_ms - newest) / 1000.0))

    def close(self) -> None:
        self._client.close()


def _mid_json(m: Mid) -> bytes:
    payload: dict[str, Any] = {"px": str(m.px), "time": m.time}
    return orjson.dumps(payload)
