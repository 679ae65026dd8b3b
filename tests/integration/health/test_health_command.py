"""``hyperwatch health`` against the real PostgreSQL and the private Redis: exit 0/1/2."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result
from prometheus_client.parser import text_string_to_metric_families

from models.db import Database
from models.repositories import GapRepository
from runtime.health import SNAPSHOT_DEFS
from runtime.heartbeat import heartbeat_path, worker_key
from tasks.maintenance.beat_guard import LOCK_KEY
from workers.cli import cli
from workers.ingester.cache import LAST_EVENT_KEY


@pytest.fixture()
def env(
    monkeypatch: pytest.MonkeyPatch, pg_database: Database, redis_url: str, tmp_path: Path
) -> dict[str, str]:
    values = {
        "DATABASE_URL": pg_database.url,
        "REDIS_URL": redis_url,
        "DATA_DIR": str(tmp_path / "var"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BROKER_URL", raising=False)
    return values


@pytest.fixture()
def cache(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def everything_running(cache: redis.Redis) -> None:
    now = time.time_ns() // 1_000_000
    cache.hset(LAST_EVENT_KEY, mapping={"activeAssetCtx": now - 300})
    beat = {"node": "w1@h", "time_ms": now, "pid": 1, "rss_bytes": 100 * 1024 * 1024}
    cache.set(worker_key("w1@h"), json.dumps(beat), ex=60)
    cache.set(LOCK_KEY, "h:1:beat", ex=30)


def health(*args: str) -> Result:
    return CliRunner().invoke(cli, ["health", *args], catch_exceptions=False)


def test_given_every_dependency_fine_when_checked_then_healthy_and_exit_0(
    env: dict[str, str], cache: redis.Redis
) -> None:
    everything_running(cache)
    result = health("--json")
    report = json.loads(result.output)
    assert result.exit_code == 0, result.output
    assert report["status"] == "healthy"
    assert {name: c["status"] for name, c in report["checks"].items()} == {
        name: "healthy"
        for name in (
            "database",
            "redis",
            "queues",
            "ingest",
            "workers",
            "memory",
            "beat",
            "gaps",
            "leaders",
            "cold",
        )
    }


def test_given_a_recent_gap_not_yet_filled_when_checked_then_degraded_and_exit_1(
    env: dict[str, str], cache: redis.Redis, pg_database: Database
) -> None:
    everything_running(cache)
    now = time.time_ns() // 1_000_000
    with pg_database.session() as s:
        GapRepository(s).record(
            [{"id": "g", "source": "i", "stream": "trades", "key": "BTC",
              "from_ms": now - 5_000, "to_ms": now - 1_000, "ended_by": "closed"}]
        )  # fmt: skip
        s.commit()
    result = health("--json")
    report = json.loads(result.output)
    assert result.exit_code == 1 and report["status"] == "degraded"
    assert report["checks"]["gaps"]["status"] == "degraded"
    assert "hyperwatch gaps --open" in report["checks"]["gaps"]["reason"]
    # When healing fills it, health is back to healthy
    with pg_database.session() as s:
        GapRepository(s).settle("g", "healed", "rest", 0)
        s.commit()
    assert health("--json").exit_code == 0
    assert report["checks"]["workers"]["nodes"] == ["w1@h"]


def test_given_a_backlog_when_checked_then_degraded_and_exit_1(
    env: dict[str, str], cache: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEALTH_QUEUE_DEPTH_DEGRADED", "2")
    everything_running(cache)
    cache.rpush("ingest", "a", "b")
    cache.rpush("ingest\x06\x169", "c")  # the backlog includes every priority list
    result = health()
    assert result.exit_code == 1, result.output
    assert "queues    degraded   backlog: ingest 3 > 2" in result.output
    assert result.output.rstrip().endswith("overall   degraded")


def test_given_redis_down_when_checked_then_unhealthy_exit_2_with_the_reason(
    env: dict[str, str], cache: redis.Redis, redis_server: Any
) -> None:
    everything_running(cache)
    redis_server.stop()
    try:
        started = time.monotonic()
        result = health("--json")
        elapsed = time.monotonic() - started
    finally:
        redis_server.start()
    report = json.loads(result.output)
    assert result.exit_code == 2
    assert report["checks"]["redis"]["status"] == "unhealthy"
    assert "unreachable: ConnectionError" in report["checks"]["redis"]["reason"]
    assert report["checks"]["database"]["status"] == "healthy"  # judged on its own
    assert elapsed < 10  # a probe reports a dead dependency, it does not hang on it


def test_given_database_down_when_checked_then_unhealthy_naming_it(
    env: dict[str, str], cache: redis.Redis, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    from sqlalchemy.engine import make_url

    missing = make_url(postgres_url).set(database="hw_no_such_database")
    monkeypatch.setenv("DATABASE_URL", missing.render_as_string(hide_password=False))
    everything_running(cache)
    result = health()
    assert result.exit_code == 2
    assert "database  unhealthy  unreachable: OperationalError" in result.output
    assert "hw_no_such_database" in result.output


def test_given_metrics_flag_when_checked_then_prometheus_text_with_every_snapshot_gauge(
    env: dict[str, str], cache: redis.Redis
) -> None:
    everything_running(cache)
    result = health("--metrics")
    assert result.exit_code == 0
    families = {f.name: f for f in text_string_to_metric_families(result.output)}
    assert {d.name for d in SNAPSHOT_DEFS} <= set(families)
    assert families["hyperwatch_workers_alive"].samples[0].value == 1.0
    depths = {s.labels["queue"]: s.value for s in families["hyperwatch_queue_depth"].samples}
    assert depths == {"ingest": 0, "alerts": 0, "notify": 0, "maintenance": 0}


def test_given_heartbeat_file_when_probing_a_worker_then_fresh_0_stale_or_missing_2(
    env: dict[str, str],
) -> None:
    path = heartbeat_path(Path(env["DATA_DIR"]), "w1@probe-host")
    missing = health("worker", "--node", "w1@probe-host")
    assert missing.exit_code == 2 and "no heartbeat file" in missing.output
    path.parent.mkdir(parents=True)
    path.write_text("x")
    assert health("worker", "--node", "w1@probe-host").exit_code == 0
    old = time.time() - 61  # HEALTH_WORKER_HEARTBEAT_STALE_S defaults to 60
    os.utime(path, (old, old))
    stale = health("worker", "--node", "w1@probe-host")
    assert stale.exit_code == 2 and "61." in stale.output
    assert health("worker", "--node", "w1@probe-host", "--max-age", "120").exit_code == 0
