"""Every 30 s: the health measurements into ``health_metrics`` (trends, post-mortems) and
into Redis (the gauges every worker's ``/metrics`` serves).

One snapshot = database and Redis latency, queue depth per queue, ingest lag per stream,
newest-row age per table, live workers and their memory, and each check's status — the
same :class:`~runtime.health.Probe` and judgement as ``hyperwatch health``. A dependency that
cannot be measured is recorded as an unhealthy status (its value rows are absent, never
zero). The job itself fails only when it cannot *store* the snapshot; it still writes
whichever of the two stores is reachable.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import redis
from celery import Task, shared_task

from models.db import Database, get_database
from models.repositories import HealthMetricRepository
from runtime.health import SNAPSHOT_DEFS, Probe, Status, judge, samples
from runtime.metrics_export import count_rows, write_snapshot
from settings import Settings

log = logging.getLogger(__name__)

PERIOD_S = 30
# Three missed periods and the exported gauges vanish rather than show old values.
SNAPSHOT_TTL_S = 3 * PERIOD_S


class SnapshotNotStored(RuntimeError):
    """The snapshot could not be written to the database and/or Redis."""


@dataclass(frozen=True)
class SnapshotResult:
    status: Status
    rows: int


def take_snapshot(
    probe: Probe, settings: Settings, database: Database, cache: redis.Redis
) -> SnapshotResult:
    m = probe.measure()
    report = judge(m, settings)
    rows = samples(m, report, settings)
    exported = {d.name for d in SNAPSHOT_DEFS}
    errors: list[str] = []
    try:
        write_snapshot(cache, [r for r in rows if r[0] in exported], SNAPSHOT_TTL_S)
    except (redis.RedisError, OSError) as exc:
        errors.append(f"redis: {exc}")
    at = dt.datetime.fromtimestamp(m.time_ms / 1000, dt.UTC)
    try:
        with database.session() as session:
            HealthMetricRepository(session).record(at, rows)
        count_rows("health_metrics", len(rows), 0)
    except Exception as exc:  # any database error: reported below, after Redis got its copy
        errors.append(f"database: {exc}")
    if errors:
        raise SnapshotNotStored("health snapshot not stored: " + "; ".join(errors))
    if report.status is not Status.HEALTHY:
        bad = [f"{c.name}: {c.reason}" for c in report.checks if c.status is not Status.HEALTHY]
        log.warning("health %s: %s", report.status, "; ".join(bad))
    return SnapshotResult(report.status, len(rows))


@shared_task(bind=True, name="hyperwatch.maintenance.health_snapshot", ignore_result=True)
def health_snapshot(self: Task) -> str:
    """Queue maintenance, every 30 s. Not idempotent by design (each run is a measurement
    at an instant); beat sends it with ``expires`` so a backlog never replays old ones. Not
    retried: the next run is 30 s away."""
    settings: Settings = self.app.settings
    probe = Probe.from_settings(settings)
    try:
        result = take_snapshot(probe, settings, get_database(settings), probe.cache)
    finally:
        probe.close()
    return str(result.status)
