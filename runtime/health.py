"""Health of a hyperwatch deployment: measure every dependency, then judge each one.

What the statuses mean, per check (thresholds are ``HEALTH_*`` settings):

- ``database``: healthy when ``SELECT 1`` answers within ``HEALTH_DB_LATENCY_DEGRADED_MS``
  and the tables can be read; degraded when slower; unhealthy when unreachable or the
  schema cannot be read.
- ``redis`` (cache, heartbeats, locks) and, when ``BROKER_URL`` names another server,
  ``broker``: the same with ``HEALTH_REDIS_LATENCY_DEGRADED_MS``. Behind Sentinel each also
  names the node the sentinels call primary now (``primary``); a Sentinel group none of
  whose sentinels answers is unreachable, like a Redis that does not.
- ``queues``: messages waiting per Celery queue (every priority list of it); degraded when
  any queue holds more than ``HEALTH_QUEUE_DEPTH_DEGRADED``, unhealthy above
  ``HEALTH_QUEUE_DEPTH_UNHEALTHY``.
- ``ingest``: age of the newest event any stream delivered (``keys.INGEST_LAST_EVENT``,
  written by the ingester). The *freshest* stream decides, because some streams are sparse
  by nature (a quiet wallet's fills) while asset contexts arrive every second; every
  stream's lag is still reported. Degraded above ``HEALTH_INGEST_LAG_DEGRADED_S``,
  unhealthy above ``HEALTH_INGEST_LAG_UNHEALTHY_S`` or when no event was ever recorded.
- ``workers``: nodes whose Redis heartbeat is younger than
  ``HEALTH_WORKER_HEARTBEAT_STALE_S``; unhealthy with none (nothing is persisted).
- ``memory``: resident memory of each live worker node (main + pool); degraded above
  ``HEALTH_MEMORY_DEGRADED_MB``.
- ``gaps``: degraded while a gap not yet filled (open, or only partly healed) touches the
  last ``HEALTH_GAP_WINDOW_S``: the record of that time may be incomplete until healing or
  an archive import fills it (``hyperwatch gaps --open``).
- ``cold``: degraded while a day's export to the cold tier is recorded ``failed``
  (``cold_exports``): retention keeps that day's partition and tries again each run; the
  reason is in the check (runbook: docs/OPERATIONS.md, "export failing").
- ``beat``: degraded when no beat holds the schedule lock — retention, partitions ahead,
  the outbox sweeper and position polling have stopped, data still flows.

The overall status is the worst check's; :class:`Status` values are the exit codes of
``hyperwatch health`` (0/1/2). Measuring never raises: a dependency that cannot be read
is a :class:`Failure` carrying the error, and judges as unhealthy — never as "fine" or
"empty".
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute

from models.asset_context import AssetContextSnapshot
from models.cold_export import ColdExport
from models.db import Database, get_database
from models.fill import UserFill
from models.position import PositionSnapshot
from models.repositories.gaps import GapRepository, GapSummary
from models.trade import TradeBar, TradeSnapshot
from runtime import heartbeat, keys
from runtime.brokers import Broker, for_settings
from runtime.clock import SYSTEM_CLOCK, Clock
from runtime.metrics import (
    COLD_EXPORT_FAILURES,
    DB_LATENCY,
    GAP_SECONDS,
    GAPS_UNFILLED,
    HEALTH_STATUS,
    INGEST_LAG,
    NEWEST_ROW_AGE,
    QUEUE_DEPTH,
    REDIS_LATENCY,
    WORKER_MEMORY,
    WORKERS_ALIVE,
    MetricDef,
)
from runtime.redis_clients import cache_redis, is_sentinel, primary_address
from settings import Settings, redact_url

MIB = 1024 * 1024


# Tables whose newest row shows data still arriving, with their event-time column (ms).
NEWEST_ROW_COLUMNS: dict[str, InstrumentedAttribute[int]] = {
    "trade_snapshots": TradeSnapshot.time,
    "trade_bars": TradeBar.minute,
    "asset_context_snapshots": AssetContextSnapshot.time,
    "position_snapshots": PositionSnapshot.time,
    "user_fills": UserFill.time,
}


GAP_SECONDS_SPAN_MS = 86_400_000  # the gap-seconds gauge covers the last 24 h


class Status(enum.IntEnum):
    HEALTHY = 0
    DEGRADED = 1
    UNHEALTHY = 2

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Failure:
    """A measurement that could not be taken, and why."""

    error: str


T = TypeVar("T")


def _measure(read: Callable[[], T]) -> T | Failure:
    try:
        return read()
    except Exception as exc:  # every failure becomes a reported Failure, never a value
        return Failure(_describe(exc))


def _describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
    text = str(orig if orig is not None else exc).strip().splitlines()
    message = text[0] if text else ""
    # redis-py's MasterNotFoundError appends the repr of every sentinel client it asked
    message = message.split(" : <", 1)[0]
    return f"{type(orig or exc).__name__}: {redact_url(message)}"[:300]


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    node: str
    time_ms: int
    pid: int
    rss_bytes: int


@dataclass(frozen=True)
class Measurements:
    """Everything the checks judge, taken at ``time_ms``."""

    time_ms: int
    db_latency_s: float | Failure
    newest_row_ms: dict[str, int | None] | Failure
    redis_latency_s: float | Failure
    broker_latency_s: float | Failure | None  # None: the broker is the cache Redis
    queue_depths: dict[str, int] | Failure
    last_event_ms: dict[str, int] | Failure
    workers: dict[str, WorkerBeat] | Failure
    beat_holder: str | Failure | None
    gaps: GapSummary | Failure | None = None  # None: not measured (older snapshots)
    feeds: dict[str, FeedLeadership] | Failure | None = None  # None: not measured
    # host:port of the primary behind Sentinel; None: a plain Redis (one node, nothing to name)
    redis_primary: str | Failure | None = None
    broker_primary: str | Failure | None = None
    # "table day: error" of each day whose cold-tier export is recorded failed
    cold_failures: list[str] | Failure | None = None  # None: not measured


@dataclass(frozen=True, slots=True)
class IngesterSeen:
    """One ingester as it last advertised itself in its feed's candidates hash."""

    owner: str
    time_ms: int
    ready: bool
    leading: bool


@dataclass(frozen=True, slots=True)
class FeedLeadership:
    """A feed's lease holder (``token:owner``, None: nobody) and its ingesters."""

    holder: str | None
    ingesters: tuple[IngesterSeen, ...]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    reason: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"status": str(self.status), "reason": self.reason, **self.data}


@dataclass(frozen=True)
class HealthReport:
    time_ms: int
    checks: tuple[Check, ...]

    @property
    def status(self) -> Status:
        return max((c.status for c in self.checks), default=Status.HEALTHY)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "time": dt.datetime.fromtimestamp(self.time_ms / 1000, dt.UTC).isoformat(),
            "checks": {c.name: c.as_dict() for c in self.checks},
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, sort_keys=False)


# --- measuring (I/O) -------------------------------------------------------------------------


class Probe:
    """Takes :class:`Measurements` from the database and Redis. Never raises."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        cache: redis.Redis,
        broker: Broker,
        broker_separate: bool = False,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.database = database
        self.cache = cache
        self.broker = broker
        self.broker_separate = broker_separate  # False: the broker is the cache Redis
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> Probe:
        separate = settings.effective_broker_url != settings.redis_url
        return cls(
            settings, get_database(settings), cache_redis(settings), for_settings(settings),
            separate,
        )  # fmt: skip

    def close(self) -> None:
        self.cache.close()
        self.broker.close()

    def _cache_primary(self) -> str | Failure | None:
        s = self.settings
        if not is_sentinel(s.redis_url):
            return None
        return _measure(lambda: primary_address(s.redis_url, s.redis_sentinel_master))

    def measure(self) -> Measurements:
        cache_latency = _measure(lambda: _ping(self.cache))
        broker_latency = None if not self.broker_separate else _measure(self._ping_broker)
        broker_ok = broker_latency if broker_latency is not None else cache_latency

        def cache_read(read: Callable[[], T]) -> T | Failure:
            # A dependency that did not answer its ping is reported by every check that
            # needs it, without paying its timeout again for every read.
            return cache_latency if isinstance(cache_latency, Failure) else _measure(read)

        db_latency = _measure(self.database.ping)
        return Measurements(
            time_ms=self._clock.time_ms(),
            db_latency_s=db_latency,
            newest_row_ms=(
                db_latency if isinstance(db_latency, Failure) else _measure(self._newest_rows)
            ),
            redis_latency_s=cache_latency,
            broker_latency_s=broker_latency,
            queue_depths=(
                broker_ok
                if isinstance(broker_ok, Failure)
                else _measure(lambda: self.broker.queue_depths(keys.QUEUE_NAMES))
            ),
            last_event_ms=cache_read(self._last_events),
            workers=cache_read(self._workers),
            beat_holder=cache_read(self._beat_holder),
            gaps=db_latency if isinstance(db_latency, Failure) else _measure(self._gaps),
            feeds=cache_read(self._feeds),
            redis_primary=self._cache_primary(),
            broker_primary=(None if not self.broker_separate else _measure(self.broker.primary)),
            cold_failures=(
                db_latency if isinstance(db_latency, Failure) else _measure(self._cold_failures)
            ),
        )

    def _ping_broker(self) -> float:
        started = time.perf_counter()
        self.broker.ping()
        return time.perf_counter() - started

    def _cold_failures(self) -> list[str]:
        with self.database.engine.connect() as conn:
            rows = conn.execute(
                select(ColdExport.table_name, ColdExport.day, ColdExport.error)
                .where(ColdExport.status == "failed")
                .order_by(ColdExport.day, ColdExport.table_name)
            )
            return [f"{table} {day}: {error or ''}"[:300] for table, day, error in rows]

    def _newest_rows(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        with self.database.engine.connect() as conn:
            for table, column in NEWEST_ROW_COLUMNS.items():
                value = conn.execute(select(func.max(column))).scalar()
                out[table] = None if value is None else int(value)
        return out

    def _gaps(self) -> GapSummary:
        now_ms = self._clock.time_ms()
        with self.database.session() as session:
            return GapRepository(session).summary(
                now_ms - GAP_SECONDS_SPAN_MS,
                now_ms,
                recent_ms=now_ms - int(self.settings.health_gap_window_s * 1000),
            )

    def _feeds(self) -> dict[str, FeedLeadership]:
        prefix = keys.INGEST_CANDIDATES.prefix
        feeds: dict[str, FeedLeadership] = {}
        for raw_key in self.cache.scan_iter(match=keys.INGEST_CANDIDATES.pattern, count=500):
            feed = _text(raw_key).removeprefix(prefix)
            seen = []
            for owner, doc in self.cache.hgetall(raw_key).items():
                try:
                    info = json.loads(doc)
                    seen.append(
                        IngesterSeen(
                            _text(owner),
                            int(info["ms"]),
                            bool(info["ready"]),
                            bool(info["leading"]),
                        )
                    )
                except (ValueError, KeyError, TypeError):
                    continue  # junk in the hash says nothing about who runs
            holder = self.cache.get(keys.INGEST_LEASE.name(feed=feed))
            feeds[feed] = FeedLeadership(
                None if holder is None else _text(holder),
                tuple(sorted(seen, key=lambda i: i.owner)),
            )
        return feeds

    def _last_events(self) -> dict[str, int]:
        raw = self.cache.hgetall(keys.INGEST_LAST_EVENT.name())
        return {_text(k): int(v) for k, v in raw.items()}

    def _workers(self) -> dict[str, WorkerBeat]:
        keys = list(self.cache.scan_iter(match=heartbeat.KEY_PATTERN, count=500))
        if not keys:
            return {}
        out: dict[str, WorkerBeat] = {}
        for raw in self.cache.mget(keys):
            if raw is None:
                continue  # expired between SCAN and MGET
            value = json.loads(raw)
            out[value["node"]] = WorkerBeat(
                value["node"], int(value["time_ms"]), int(value["pid"]), int(value["rss_bytes"])
            )
        return out

    def _beat_holder(self) -> str | None:
        value = self.cache.get(keys.BEAT_LOCK.name())
        return None if value is None else _text(value)


def _ping(client: redis.Redis) -> float:
    started = time.perf_counter()
    client.ping()
    return time.perf_counter() - started


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- judging (pure) --------------------------------------------------------------------------


def judge(m: Measurements, settings: Settings) -> HealthReport:
    checks = [
        check_database(m, settings),
        check_redis("redis", m.redis_latency_s, settings, m.redis_primary),
    ]
    if m.broker_latency_s is not None:
        checks.append(check_redis("broker", m.broker_latency_s, settings, m.broker_primary))
    checks += [
        check_queues(m, settings),
        check_ingest(m, settings),
        check_workers(m, settings),
        check_memory(m, settings),
        check_beat(m),
    ]
    if m.gaps is not None:
        checks.append(check_gaps(m, settings))
    if m.feeds is not None:
        checks.append(check_ingesters(m))
    if m.cold_failures is not None:
        checks.append(check_cold_tier(m))
    return HealthReport(m.time_ms, tuple(checks))


def check_cold_tier(m: Measurements) -> Check:
    if isinstance(m.cold_failures, Failure) or m.cold_failures is None:
        error = m.cold_failures.error if isinstance(m.cold_failures, Failure) else "not measured"
        return Check("cold", Status.UNHEALTHY, f"cannot read the cold tier record: {error}")
    failures = m.cold_failures
    if failures:
        reason = (
            f"{len(failures)} day(s) not exported to the cold tier, partitions kept: "
            f"{failures[0]}" + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else "")
        )
        return Check("cold", Status.DEGRADED, reason, {"failed": failures})
    return Check("cold", Status.HEALTHY, "no failed export", {"failed": []})


def check_database(m: Measurements, settings: Settings) -> Check:
    if isinstance(m.db_latency_s, Failure):
        return Check("database", Status.UNHEALTHY, f"unreachable: {m.db_latency_s.error}")
    latency_ms = m.db_latency_s * 1000
    data: dict[str, Any] = {"latency_ms": round(latency_ms, 2)}
    if isinstance(m.newest_row_ms, Failure):
        reason = f"tables unreadable (migrated?): {m.newest_row_ms.error}"
        return Check("database", Status.UNHEALTHY, reason, data)
    data["newest_row_age_s"] = {
        table: None if ms is None else round(max(0, m.time_ms - ms) / 1000, 1)
        for table, ms in m.newest_row_ms.items()
    }
    if latency_ms > settings.health_db_latency_degraded_ms:
        limit = settings.health_db_latency_degraded_ms
        return Check("database", Status.DEGRADED, f"slow: {latency_ms:.0f} ms > {limit:g} ms", data)
    return Check("database", Status.HEALTHY, f"latency {latency_ms:.1f} ms", data)


def check_redis(
    name: str,
    latency_s: float | Failure,
    settings: Settings,
    primary: str | Failure | None = None,
) -> Check:
    if isinstance(latency_s, Failure):
        return Check(name, Status.UNHEALTHY, f"unreachable: {latency_s.error}")
    latency_ms = latency_s * 1000
    data: dict[str, Any] = {"latency_ms": round(latency_ms, 2)}
    at = ""
    if primary is not None:  # behind Sentinel: which node answered
        data["primary"] = primary if isinstance(primary, str) else f"unknown: {primary.error}"
        at = f", primary {data['primary']}"
    limit = settings.health_redis_latency_degraded_ms
    if latency_ms > limit:
        reason = f"slow: {latency_ms:.0f} ms > {limit:g} ms{at}"
        return Check(name, Status.DEGRADED, reason, data)
    return Check(name, Status.HEALTHY, f"latency {latency_ms:.1f} ms{at}", data)


def check_queues(m: Measurements, settings: Settings) -> Check:
    if isinstance(m.queue_depths, Failure):
        return Check("queues", Status.UNHEALTHY, f"cannot read queues: {m.queue_depths.error}")
    data = {"depth": dict(m.queue_depths)}
    worst = max(m.queue_depths.items(), key=lambda kv: kv[1], default=("", 0))
    summary = ", ".join(f"{q} {n}" for q, n in m.queue_depths.items())
    if worst[1] > settings.health_queue_depth_unhealthy:
        limit = settings.health_queue_depth_unhealthy
        return Check("queues", Status.UNHEALTHY, f"backlog: {worst[0]} {worst[1]} > {limit}", data)
    if worst[1] > settings.health_queue_depth_degraded:
        limit = settings.health_queue_depth_degraded
        return Check("queues", Status.DEGRADED, f"backlog: {worst[0]} {worst[1]} > {limit}", data)
    return Check("queues", Status.HEALTHY, f"waiting: {summary}", data)


def check_ingest(m: Measurements, settings: Settings) -> Check:
    if isinstance(m.last_event_ms, Failure):
        return Check("ingest", Status.UNHEALTHY, f"cannot read: {m.last_event_ms.error}")
    if not m.last_event_ms:
        return Check("ingest", Status.UNHEALTHY, "no ingester has recorded an event")
    lags = {s: max(0.0, (m.time_ms - ms) / 1000) for s, ms in m.last_event_ms.items()}
    data = {"lag_s": {s: round(v, 1) for s, v in sorted(lags.items())}}
    freshest = min(lags.values())
    if freshest > settings.health_ingest_lag_unhealthy_s:
        reason = f"no event for {freshest:.0f} s (> {settings.health_ingest_lag_unhealthy_s:g} s)"
        return Check("ingest", Status.UNHEALTHY, reason, data)
    if freshest > settings.health_ingest_lag_degraded_s:
        reason = f"no event for {freshest:.0f} s (> {settings.health_ingest_lag_degraded_s:g} s)"
        return Check("ingest", Status.DEGRADED, reason, data)
    return Check("ingest", Status.HEALTHY, f"newest event {freshest:.1f} s ago", data)


def live_workers(m: Measurements, settings: Settings) -> dict[str, WorkerBeat]:
    if isinstance(m.workers, Failure):
        return {}
    limit_ms = settings.health_worker_heartbeat_stale_s * 1000
    return {n: w for n, w in m.workers.items() if m.time_ms - w.time_ms <= limit_ms}


def check_workers(m: Measurements, settings: Settings) -> Check:
    if isinstance(m.workers, Failure):
        return Check("workers", Status.UNHEALTHY, f"cannot read heartbeats: {m.workers.error}")
    live = live_workers(m, settings)
    data = {"alive": len(live), "nodes": sorted(live)}
    if not live:
        limit = settings.health_worker_heartbeat_stale_s
        return Check("workers", Status.UNHEALTHY, f"no worker heartbeat in {limit:g} s", data)
    return Check("workers", Status.HEALTHY, f"{len(live)} alive", data)


def check_memory(m: Measurements, settings: Settings) -> Check:
    if isinstance(m.workers, Failure):
        return Check("memory", Status.UNHEALTHY, f"cannot read heartbeats: {m.workers.error}")
    live = live_workers(m, settings)
    data = {"rss_mb": {n: round(w.rss_bytes / MIB, 1) for n, w in sorted(live.items())}}
    if not live:
        return Check("memory", Status.HEALTHY, "no live worker to measure", data)
    limit = settings.health_memory_degraded_mb
    heavy = sorted(n for n, w in live.items() if w.rss_bytes > limit * MIB)
    if heavy:
        return Check("memory", Status.DEGRADED, f"above {limit} MiB: {', '.join(heavy)}", data)
    top = max(live.values(), key=lambda w: w.rss_bytes)
    return Check(
        "memory", Status.HEALTHY, f"largest {top.node} {top.rss_bytes / MIB:.0f} MiB", data
    )


def check_beat(m: Measurements) -> Check:
    if isinstance(m.beat_holder, Failure):
        return Check("beat", Status.UNHEALTHY, f"cannot read the lock: {m.beat_holder.error}")
    if m.beat_holder is None:
        reason = "no beat holds the schedule lock: periodic jobs are not running"
        return Check("beat", Status.DEGRADED, reason)
    return Check("beat", Status.HEALTHY, "scheduling", {"holder": m.beat_holder})


def check_gaps(m: Measurements, settings: Settings) -> Check:
    if isinstance(m.gaps, Failure) or m.gaps is None:
        error = m.gaps.error if isinstance(m.gaps, Failure) else "not measured"
        return Check("gaps", Status.UNHEALTHY, f"cannot read the gaps: {error}")
    window_s = settings.health_gap_window_s
    recent = {stream: n for stream, n in m.gaps.unfilled.items() if n}
    data = {"unfilled": recent, "window_s": window_s}
    if recent:
        total = sum(recent.values())
        reason = (
            f"{total} gap(s) not yet filled in the last {window_s:g} s: `hyperwatch gaps --open`"
        )
        return Check("gaps", Status.DEGRADED, reason, data)
    return Check("gaps", Status.HEALTHY, "every recent gap filled", data)


# An ingester advertises itself several times a second; one unheard of for this long has
# stopped (or lost Redis) and no longer counts as a leader or standby.
INGESTER_FRESH_MS = 10_000


def check_ingesters(m: Measurements) -> Check:
    """Who leads each feed and who stands by (``workers/ingester/lease.py``)."""
    if isinstance(m.feeds, Failure) or m.feeds is None:
        error = m.feeds.error if isinstance(m.feeds, Failure) else "not measured"
        return Check("leaders", Status.UNHEALTHY, f"cannot read the leases: {error}")
    data: dict[str, Any] = {}
    leaderless = []
    for feed, state in sorted(m.feeds.items()):
        live = [i for i in state.ingesters if m.time_ms - i.time_ms <= INGESTER_FRESH_MS]
        if not live:
            continue  # a feed nobody runs any more
        leader = state.holder.split(":", 1)[1] if state.holder else None
        data[feed] = {
            "leader": leader,
            "standbys": [i.owner for i in live if i.owner != leader],
            "ready": sum(i.ready for i in live),
        }
        if leader is None:
            leaderless.append(feed)
    if leaderless:
        reason = f"no ingester leads feed(s) {', '.join(leaderless)}: nothing is published"
        return Check("leaders", Status.DEGRADED, reason, {"feeds": data})
    if not data:
        return Check("leaders", Status.HEALTHY, "no ingester has advertised itself", {"feeds": {}})
    without_standby = [f for f, d in data.items() if not d["standbys"]]
    reason = f"{len(data)} feed(s) led"
    if without_standby:
        reason += f"; without a standby: {', '.join(without_standby)}"
    return Check("leaders", Status.HEALTHY, reason, {"feeds": data})


# --- as metric samples -----------------------------------------------------------------------

# What the health snapshot exports (INGEST_LAG is the ingester's own gauge; it is only
# stored in `health_metrics`, so two processes never export one series).
SNAPSHOT_DEFS: tuple[MetricDef, ...] = (
    QUEUE_DEPTH,
    DB_LATENCY,
    REDIS_LATENCY,
    NEWEST_ROW_AGE,
    WORKERS_ALIVE,
    WORKER_MEMORY,
    GAPS_UNFILLED,
    GAP_SECONDS,
    COLD_EXPORT_FAILURES,
    HEALTH_STATUS,
)

Sample = tuple[str, float, dict[str, str]]


def samples(m: Measurements, report: HealthReport, settings: Settings) -> list[Sample]:
    """(metric name, value, labels) of every measurement that was taken."""
    return list(_samples(m, report, settings))


def _samples(m: Measurements, report: HealthReport, settings: Settings) -> Iterator[Sample]:
    if not isinstance(m.db_latency_s, Failure):
        yield DB_LATENCY.name, m.db_latency_s, {}
    if not isinstance(m.redis_latency_s, Failure):
        yield REDIS_LATENCY.name, m.redis_latency_s, {}
    if not isinstance(m.queue_depths, Failure):
        for queue, depth in m.queue_depths.items():
            yield QUEUE_DEPTH.name, float(depth), {"queue": queue}
    if not isinstance(m.last_event_ms, Failure):
        for stream, ms in sorted(m.last_event_ms.items()):
            yield INGEST_LAG.name, max(0.0, (m.time_ms - ms) / 1000), {"stream": stream}
    if not isinstance(m.newest_row_ms, Failure):
        for table, newest in m.newest_row_ms.items():
            if newest is not None:  # an empty table has no newest row: absent, not zero
                age = max(0.0, (m.time_ms - newest) / 1000)
                yield NEWEST_ROW_AGE.name, age, {"table": table}
    if not isinstance(m.workers, Failure):
        live = live_workers(m, settings)
        yield WORKERS_ALIVE.name, float(len(live)), {}
        for node, w in sorted(live.items()):
            yield WORKER_MEMORY.name, float(w.rss_bytes), {"node": node}
    if isinstance(m.gaps, GapSummary):
        for stream in ("trades", "userFills"):
            yield GAPS_UNFILLED.name, float(m.gaps.unfilled.get(stream, 0)), {"stream": stream}
            for status in ("open", "healed", "unrecoverable"):
                value = m.gaps.seconds.get((stream, status), 0.0)
                yield GAP_SECONDS.name, value, {"stream": stream, "status": status}
    if isinstance(m.cold_failures, list):
        yield COLD_EXPORT_FAILURES.name, float(len(m.cold_failures)), {}
    for check in report.checks:
        yield HEALTH_STATUS.name, float(check.status), {"check": check.name}
    yield HEALTH_STATUS.name, float(report.status), {"check": "overall"}


def exported(all_samples: list[Sample]) -> dict[str, list[tuple[float, Mapping[str, str]]]]:
    """Samples of the exported gauges (SNAPSHOT_DEFS) grouped by metric name."""
    names = {d.name for d in SNAPSHOT_DEFS}
    out: dict[str, list[tuple[float, Mapping[str, str]]]] = {d.name: [] for d in SNAPSHOT_DEFS}
    for name, value, labels in all_samples:
        if name in names:
            out[name].append((value, labels))
    return out
