"""The health snapshot job against PostgreSQL and the private Redis."""

from __future__ import annotations

import json
import time
from decimal import Decimal as D
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.engine import make_url

from events import Trade
from models import HealthMetric
from models.db import Database, get_database
from models.repositories import TradeRepository
from runtime.health import Probe
from runtime.heartbeat import worker_key
from runtime.metrics_export import SNAPSHOT_KEY, read_snapshot
from settings import Settings, load_settings
from tasks.maintenance.beat_guard import LOCK_KEY
from tasks.maintenance.health_snapshot import SnapshotNotStored, health_snapshot, take_snapshot
from tests.support.services import free_port
from workers.ingester.cache import LAST_EVENT_KEY


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture()
def cache(redis_url: str) -> Any:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def live_system(cache: redis.Redis, database: Database) -> None:
    """What a running deployment leaves behind: events, a worker, a beat, queued work, rows."""
    t = now_ms()
    cache.hset(LAST_EVENT_KEY, mapping={"trades": t - 1_000, "activeAssetCtx": t - 200})
    heartbeat = {"node": "w1@h", "time_ms": t, "pid": 1, "rss_bytes": 300 * 1024 * 1024}
    cache.set(worker_key("w1@h"), json.dumps(heartbeat), ex=60)
    cache.set(LOCK_KEY, "h:1:beat", ex=30)
    cache.rpush("maintenance", "m1", "m2", "m3")
    cache.rpush("ingest\x06\x163", "i1")  # a priority-3 message of the ingest queue
    with database.session() as s:
        TradeRepository(s).add_batch([Trade("BTC", t - 5_000, 1, D(1), D(1), "B", "0x1")])


def stored(database: Database) -> dict[tuple[str, str], float]:
    with database.engine.connect() as conn:
        rows = conn.execute(select(HealthMetric.name, HealthMetric.labels, HealthMetric.value))
        return {(name, json.dumps(labels, sort_keys=True)): value for name, labels, value in rows}


def value(rows: dict[tuple[str, str], float], name: str, **labels: str) -> float:
    return rows[(f"hyperwatch_{name}", json.dumps(labels, sort_keys=True))]


def settings_for_pg(pg_database: Database, redis_url: str, **more: Any) -> Settings:
    return load_settings(database_url=pg_database.url, redis_url=redis_url, **more)


def test_given_a_live_system_when_snapshotted_then_every_measurement_is_stored(
    pg_database: Database, redis_url: str, cache: redis.Redis
) -> None:
    settings = settings_for_pg(pg_database, redis_url)
    live_system(cache, pg_database)
    probe = Probe.from_settings(settings)
    try:
        result = take_snapshot(probe, settings, pg_database, probe.cache)
    finally:
        probe.close()
    rows = stored(pg_database)
    assert str(result.status) == "healthy" and result.rows == len(rows)
    assert value(rows, "queue_depth", queue="maintenance") == 3
    assert value(rows, "queue_depth", queue="ingest") == 1
    assert value(rows, "queue_depth", queue="notify") == 0
    assert 0.5 < value(rows, "ingest_lag_seconds", stream="trades") < 10
    assert 4 < value(rows, "newest_row_age_seconds", table="trade_snapshots") < 15
    assert ("hyperwatch_newest_row_age_seconds", '{"table": "user_fills"}') not in rows  # empty
    assert value(rows, "workers_alive") == 1
    assert value(rows, "worker_memory_bytes", node="w1@h") == 300 * 1024 * 1024
    assert (
        0 < value(rows, "db_latency_seconds") < 1 and 0 < value(rows, "redis_latency_seconds") < 1
    )
    assert value(rows, "health_status", check="overall") == 0
    # And the exported gauges wait in Redis for the workers' /metrics (the ingester owns lag)
    exported = {name for name, _v, _l in read_snapshot(cache)}
    assert (
        "hyperwatch_workers_alive" in exported and "hyperwatch_ingest_lag_seconds" not in exported
    )
    assert 0 < cache.pttl(SNAPSHOT_KEY) <= 90_000


def test_given_redis_down_when_snapshotted_then_the_database_still_gets_it_and_the_job_fails(
    pg_database: Database,
) -> None:
    settings = load_settings(
        database_url=pg_database.url, redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    probe = Probe.from_settings(settings)
    try:
        with pytest.raises(SnapshotNotStored, match="redis"):
            take_snapshot(probe, settings, pg_database, probe.cache)
    finally:
        probe.close()
    rows = stored(pg_database)
    assert value(rows, "health_status", check="redis") == 2
    assert value(rows, "health_status", check="overall") == 2
    assert ("hyperwatch_redis_latency_seconds", "{}") not in rows  # absent, not zero


def test_given_database_down_when_snapshotted_then_redis_still_gets_it_and_the_job_fails(
    postgres_url: str, redis_url: str, cache: redis.Redis
) -> None:
    missing = make_url(postgres_url).set(database="hw_no_such_database")
    settings = load_settings(
        database_url=missing.render_as_string(hide_password=False), redis_url=redis_url
    )
    database = get_database(settings)
    probe = Probe.from_settings(settings)
    try:
        with pytest.raises(SnapshotNotStored, match="database"):
            take_snapshot(probe, settings, database, probe.cache)
    finally:
        probe.close()
        database.dispose()
    statuses = {lb["check"]: v for n, v, lb in read_snapshot(cache) if n.endswith("health_status")}
    assert statuses["database"] == 2 and statuses["overall"] == 2


def test_given_the_task_when_called_then_it_snapshots_with_the_worker_settings(
    pg_database: Database, redis_url: str, cache: redis.Redis, make_app: Any
) -> None:
    live_system(cache, pg_database)
    make_app(settings_for_pg(pg_database, redis_url))
    assert health_snapshot() == "healthy"
    assert value(stored(pg_database), "workers_alive") == 1
