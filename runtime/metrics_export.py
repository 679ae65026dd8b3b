"""Prometheus export for Celery workers, and the helpers task code calls to count things.

Tasks run in prefork children, each with its own memory, so a plain registry in the child
is invisible to any HTTP server. prometheus_client's multiprocess mode solves exactly that:
every process writes its samples to mmap files under ``PROMETHEUS_MULTIPROC_DIR`` and one
collector merges them. Layout and life cycle:

- a ``celery worker`` (the CLI worker; ``celeryd_init``) with ``WORKER_METRICS_PORT`` ≠ 0
  uses ``<DATA_DIR>/prometheus/<node name>``, emptied at start (a directory per node, so two
  workers on one host never wipe each other's files), and sets the variable before its pool
  forks, so every child writes there;
- the main process serves ``/metrics`` on ``WORKER_METRICS_HOST:WORKER_METRICS_PORT``: the
  children's counters and histograms (:data:`WORKER_DEFS`, every name declared even before
  its first sample) plus the latest health snapshot's gauges, which the
  ``health_snapshot`` job leaves in Redis (:data:`SNAPSHOT_KEY`, expiring after three
  periods: a stale snapshot disappears instead of lying), and the position poller's gauges
  (:data:`POLL_GAUGES_KEY`, written by each poll run the same way). Every worker serves the same
  snapshot; the values are cluster-wide, so dashboards take ``max`` across instances.

For task authors — call these inside tasks; they are cheap and only raise for a label name
that is not a string::

    from runtime.metrics_export import count_rows, count_dead_letter, count_alerts_fired,
        count_notification, observe_notification_latency, observe_poll_interval

    count_rows("trade_snapshots", result.new, result.duplicates)   # after a bulk write
    count_dead_letter("hyperwatch.persist.trades")                 # payload dead-lettered
    count_alerts_fired("price_above")                              # a claimed firing
    count_notification("sent", "slack")                            # sent/failed/suppressed/retry
    observe_notification_latency("slack", seconds)                 # event time → delivered
    observe_poll_interval("hot", seconds)                          # between two polls of a wallet

Task run time (``hyperwatch_task_duration_seconds``) and failures
(``hyperwatch_tasks_failed_total``) are recorded for *every* task by signal handlers
(:func:`connect_task_signals`); do not time tasks by hand.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import prometheus_client.values
import redis
from celery import bootsteps, signals
from prometheus_client import CollectorRegistry, start_wsgi_server
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from runtime import keys
from runtime.metrics import (
    ALERTS_FIRED,
    DEAD_LETTERS,
    NOTIFICATIONS,
    NOTIFY_LATENCY,
    ROWS_DUPLICATE,
    ROWS_STORED,
    TASK_DURATION,
    TASKS_FAILED,
    WALLET_POLL_INTERVAL,
    WALLET_POLL_OVERDUE,
    WALLET_POLL_WALLETS,
    MetricDef,
    Metrics,
)
from runtime.redis_clients import cache_redis
from settings import Settings

log = logging.getLogger(__name__)

# Incremented inside tasks (prefork children), exported by the worker main process.
WORKER_DEFS: tuple[MetricDef, ...] = (
    ROWS_STORED,
    ROWS_DUPLICATE,
    TASK_DURATION,
    TASKS_FAILED,
    DEAD_LETTERS,
    ALERTS_FIRED,
    NOTIFICATIONS,
    NOTIFY_LATENCY,
    WALLET_POLL_INTERVAL,
)
# Gauges of the position poller's latest run: a prefork child's gauge would be summed with
# the stale values of every other child that ran the job before, so the run leaves its
# samples in Redis (POLL_GAUGES_KEY) and every worker serves them, like the health snapshot.
POLL_GAUGE_DEFS: tuple[MetricDef, ...] = (WALLET_POLL_OVERDUE, WALLET_POLL_WALLETS)

SNAPSHOT_KEY = keys.HEALTH_SNAPSHOT.name()
POLL_GAUGES_KEY = keys.POLL_GAUGES.name()
ENV_DIR = "PROMETHEUS_MULTIPROC_DIR"


def family_name(d: MetricDef) -> str:
    """The family name a parser reports: counters lose their ``_total`` suffix."""
    return d.name.removesuffix("_total") if d.type == "counter" else d.name


# --- helpers for task code ---------------------------------------------------------------------

_metrics: Metrics | None = None


def task_metrics() -> Metrics:
    """This process's worker metrics, built on first use (in the child, after the fork)."""
    global _metrics
    if _metrics is None:
        _metrics = Metrics(WORKER_DEFS)
    return _metrics


def count_rows(table: str, new: int, duplicates: int) -> None:
    """Rows a bulk write inserted and rows it skipped as already stored."""
    m = task_metrics()
    if new:
        m.counter(ROWS_STORED).labels(table).inc(new)
    if duplicates:
        m.counter(ROWS_DUPLICATE).labels(table).inc(duplicates)


def count_dead_letter(task: str) -> None:
    task_metrics().counter(DEAD_LETTERS).labels(task).inc()


def count_alerts_fired(kind: str, n: int = 1) -> None:
    task_metrics().counter(ALERTS_FIRED).labels(kind).inc(n)


def count_notification(status: str, channel: str) -> None:
    task_metrics().counter(NOTIFICATIONS).labels(status, channel).inc()


def observe_notification_latency(channel: str, seconds: float) -> None:
    task_metrics().histogram(NOTIFY_LATENCY).labels(channel).observe(max(0.0, seconds))


def observe_poll_interval(cadence_class: str, seconds: float) -> None:
    """Seconds between two successful position polls of one wallet (its class now)."""
    task_metrics().histogram(WALLET_POLL_INTERVAL).labels(cadence_class).observe(max(0.0, seconds))


# --- every task's duration and failures ---------------------------------------------------------

_started: dict[str, float] = {}


def _on_prerun(task_id: str | None = None, **_: Any) -> None:
    if task_id is not None:
        _started[task_id] = time.monotonic()


def _on_postrun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    started = _started.pop(task_id, None) if task_id is not None else None
    if started is not None and task is not None:
        seconds = time.monotonic() - started
        task_metrics().histogram(TASK_DURATION).labels(task.name).observe(seconds)


def _on_failure(sender: Any = None, **_: Any) -> None:
    if sender is not None:
        task_metrics().counter(TASKS_FAILED).labels(sender.name).inc()


def connect_task_signals() -> None:
    """Idempotent: the dispatch uids make a second call a no-op."""
    signals.task_prerun.connect(_on_prerun, weak=False, dispatch_uid="hw-metrics-prerun")
    signals.task_postrun.connect(_on_postrun, weak=False, dispatch_uid="hw-metrics-postrun")
    signals.task_failure.connect(_on_failure, weak=False, dispatch_uid="hw-metrics-failure")


# --- worker main process -----------------------------------------------------------------------


def multiprocess_dir(settings: Settings, node: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "@._-" else "_" for c in node)
    return Path(settings.data_dir) / "prometheus" / safe


def enable_multiprocess(path: Path) -> None:
    """Empty ``path`` and make every metric created from now on (here and in forked children)
    write there. Must run in the worker main process before its pool forks."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV_DIR] = str(path)
    # prometheus_client picks its value class when it is first imported; a task module may
    # have imported it before this ran, so pick again now that the variable is set.
    prometheus_client.values.ValueClass = prometheus_client.values.get_value_class()


def _on_celeryd_init(sender: Any = None, instance: Any = None, **_: Any) -> None:
    settings: Settings | None = getattr(getattr(instance, "app", None), "settings", None)
    if settings is None or not settings.worker_metrics_port or instance is None:
        return
    path = multiprocess_dir(settings, str(sender))
    enable_multiprocess(path)
    instance.hyperwatch_metrics_dir = path


def connect_worker_init() -> None:
    signals.celeryd_init.connect(_on_celeryd_init, weak=False, dispatch_uid="hw-metrics-init")


def _empty_family(d: MetricDef) -> Metric:
    return Metric(family_name(d), d.help, d.type)


class WorkerCollector(Collector):
    """The children's samples merged from ``path``, plus every worker metric's name."""

    def __init__(self, path: Path) -> None:
        self._merged = MultiProcessCollector(None, path=str(path))

    def collect(self) -> Iterator[Metric]:
        seen: set[str] = set()
        for family in self._merged.collect():
            seen.add(family.name)
            yield family
        for d in WORKER_DEFS:
            if family_name(d) not in seen:
                yield _empty_family(d)


def write_snapshot(
    client: redis.Redis,
    samples: Iterable[tuple[str, float, dict[str, str]]],
    ttl_s: float,
    key: str = SNAPSHOT_KEY,
) -> None:
    payload = json.dumps([[name, value, labels] for name, value, labels in samples])
    client.set(key, payload, px=int(ttl_s * 1000))


def read_snapshot(
    client: redis.Redis, key: str = SNAPSHOT_KEY
) -> list[tuple[str, float, dict[str, str]]]:
    raw = client.get(key)
    if raw is None:
        return []
    return [
        (str(n), float(v), {str(k): str(x) for k, x in lb.items()}) for n, v, lb in json.loads(raw)
    ]


def gauge_families(
    defs: Iterable[MetricDef], samples: Iterable[tuple[str, float, dict[str, str]]]
) -> list[GaugeMetricFamily]:
    """One gauge family per definition (declared even with no sample) holding ``samples``."""
    families = {d.name: GaugeMetricFamily(d.name, d.help, labels=list(d.labels)) for d in defs}
    order = {d.name: d.labels for d in defs}
    for name, value, labels in samples:
        family = families.get(name)
        if family is not None:
            family.add_metric([labels.get(label, "") for label in order[name]], value)
    return list(families.values())


class SnapshotCollector(Collector):
    """The latest snapshot from Redis (the health snapshot's, or the position poller's at
    ``key``) as gauges (absent samples when it is stale)."""

    def __init__(
        self, client: redis.Redis, defs: tuple[MetricDef, ...], key: str = SNAPSHOT_KEY
    ) -> None:
        self._client = client
        self._defs = defs
        self._key = key

    def collect(self) -> Iterator[Metric]:
        try:
            samples = read_snapshot(self._client, self._key)
        except (redis.RedisError, OSError, ValueError) as exc:
            # Task metrics must still be served; the gauges' absence shows the problem and
            # the health checks name it.
            log.warning("snapshot %s unreadable from Redis: %s", self._key, exc)
            samples = []
        yield from gauge_families(self._defs, samples)


class MetricsServerStep(bootsteps.StartStopStep):
    """Worker bootstep (main process): serve ``/metrics`` while the worker runs."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._server: Any = None
        self._client: redis.Redis | None = None

    def start(self, parent: Any) -> None:
        path: Path | None = getattr(parent, "hyperwatch_metrics_dir", None)
        settings: Settings | None = getattr(parent.app, "settings", None)
        if path is None or settings is None:
            return  # metrics off, or not a `celery worker` process (in-process test worker)
        from runtime.health import SNAPSHOT_DEFS

        self._client = cache_redis(settings)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(WorkerCollector(path))
        registry.register(SnapshotCollector(self._client, SNAPSHOT_DEFS))
        registry.register(SnapshotCollector(self._client, POLL_GAUGE_DEFS, POLL_GAUGES_KEY))
        host, port = settings.worker_metrics_host, settings.worker_metrics_port
        try:
            self._server, _thread = start_wsgi_server(port, host, registry)
        except OSError as exc:
            # Processing data matters more than exporting numbers about it: keep running.
            log.error("worker /metrics not served on %s:%d: %s", host, port, exc)
            return
        log.info("worker /metrics on http://%s:%d/metrics", host, port)

    def stop(self, parent: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def terminate(self, parent: Any) -> None:
        self.stop(parent)
