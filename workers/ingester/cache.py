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
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import redis

from events import AssetContext, Mid, event_to_wire
from runtime import keys
from runtime.clock import Clock
from runtime.lifecycle import join_in_slices
from runtime.metrics import INGEST_LAG, Metrics
from workers.ingester.gaps import Gap, GapJournal, GapKey, parse_field

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
        on_journal: Callable[[list[Gap], dict[GapKey, int]], None] | None = None,
    ) -> None:
        super().__init__(name="ingest-cache", daemon=True)
        self._cache = cache
        self._journal = journal or GapJournal()
        self._gaps_open_key = keys.GAPS_OPEN.name(feed=feed)
        self._gaps_newest_key = keys.GAPS_NEWEST.name(feed=feed)
        # The previous run's journal is read before this run writes its own over it.
        self._on_journal = on_journal
        self._journal_loaded = on_journal is None
        self._client = redis.Redis.from_url(
            redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
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
        newest, gaps = self._journal.take() if self._load_journal() else ({}, {})
        now_ms = self._clock.time_ms()
        self._update_lag(now_ms)
        pipe = self._client.pipeline(transaction=False)
        if mids:
            pipe.hset(MIDS_KEY, mapping={c: _mid_json(m) for c, m in mids.items()})
        if ctx:
            pipe.hset(CTX_KEY, mapping={c: orjson.dumps(event_to_wire(v)) for c, v in ctx.items()})
        if last:
            pipe.hset(LAST_EVENT_KEY, mapping={k: v for k, v in last.items()})
        if newest:
            pipe.hset(self._gaps_newest_key, mapping=newest)  # type: ignore[arg-type]
        opened = {name: doc for name, doc in gaps.items() if doc is not None}
        if opened:
            pipe.hset(self._gaps_open_key, mapping=opened)  # type: ignore[arg-type]
        closed = [name for name, doc in gaps.items() if doc is None]
        if closed:
            pipe.hdel(self._gaps_open_key, *closed)
        pipe.set(self._hb_key, now_ms, ex=HEARTBEAT_TTL_S)
        try:
            pipe.execute()
        except (redis.RedisError, OSError) as exc:
            self._cache.give_back(mids, ctx, last)
            self._journal.give_back(newest, gaps)
            if self.reachable:
                log.warning("cache redis unreachable, will retry: %s", exc)
            self.reachable = False
            return False
        if not self.reachable:
            log.info("cache redis reachable")
        self.reachable = True
        return True

    def _load_journal(self) -> bool:
        """True once the previous run's journal was read and handed over."""
        if self._journal_loaded:
            return True
        try:
            gaps, newest = self.load_gap_journal()
        except (redis.RedisError, OSError):
            return False  # the cache write below reports the outage
        assert self._on_journal is not None
        self._on_journal(gaps, newest)
        self._journal_loaded = True
        return True

    def load_gap_journal(self) -> tuple[list[Gap], dict[GapKey, int]]:
        """The previous run's open gaps and newest times per key (raises RedisError)."""
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(self._gaps_open_key)
        pipe.hgetall(self._gaps_newest_key)
        raw_open, raw_newest = pipe.execute()
        gaps = []
        for name, doc in raw_open.items():
            try:
                gaps.append(Gap.from_wire(orjson.loads(doc)))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                log.error("unreadable gap journal entry %r dropped: %r", name, doc[:200])
        newest: dict[GapKey, int] = {}
        for name, ms in raw_newest.items():
            key = parse_field(name.decode() if isinstance(name, bytes) else name)
            if key is not None and str(ms.decode() if isinstance(ms, bytes) else ms).isdigit():
                newest[key] = int(ms)
        return gaps, newest

    def _update_lag(self, now_ms: int) -> None:
        gauge = self._metrics.gauge(INGEST_LAG)
        for stream, newest in self._cache.newest().items():
            gauge.labels(stream).set(max(0.0, (now_ms - newest) / 1000.0))

    def close(self) -> None:
        self._client.close()


def _mid_json(m: Mid) -> bytes:
    payload: dict[str, Any] = {"px": str(m.px), "time": m.time}
    return orjson.dumps(payload)
