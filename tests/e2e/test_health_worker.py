"""A real ``celery -A tasks worker``: /metrics from prefork children, the heartbeat file as
a liveness probe that survives a Redis outage and fails when the process is frozen."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from models import HealthMetric
from models.db import Database
from runtime.health import SNAPSHOT_DEFS
from runtime.heartbeat import file_age, heartbeat_path
from runtime.metrics_export import WORKER_DEFS, family_name
from tasks.application import HyperwatchCelery
from tests.integration.celery.fixtures import (  # noqa: F401 - fixtures
    celery_settings,
    publisher,
    spawn_worker,
    worker_env,
)
from tests.integration.celery.support import WorkerProcess, wait_until
from tests.support.services import free_port, wait_for_port

pytestmark = pytest.mark.e2e

HYPERWATCH = str(Path(sys.executable).with_name("hyperwatch"))
STALE_S = 3.0
JOBS = (
    "hyperwatch.maintenance.health_snapshot",
    "hyperwatch.maintenance.create_partitions",
    "hyperwatch.maintenance.retention",
)


def scrape(port: int) -> dict[str, Any]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {f.name: f for f in text_string_to_metric_families(text)}


def probe(env: dict[str, str], node: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HYPERWATCH, "health", "worker", "--node", node],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def durations(families: dict[str, Any]) -> dict[str, float]:
    family = families["hyperwatch_task_duration_seconds"]
    return {s.labels["task"]: s.value for s in family.samples if s.name.endswith("_count")}


@pytest.mark.heavy  # 17 s of a real worker's jobs: runs in make test-heavy
def test_given_a_worker_when_it_runs_jobs_then_metrics_and_liveness_tell_the_truth(
    spawn_worker: Callable[..., WorkerProcess],  # noqa: F811 - fixture
    worker_env: dict[str, str],  # noqa: F811 - fixture
    publisher: HyperwatchCelery,  # noqa: F811 - fixture
    pg_database: Database,
    redis_server: Any,
    tmp_path: Path,
) -> None:
    port = free_port()
    settings = {
        "worker_metrics_port": port,
        "worker_heartbeat_interval_s": 0.5,
        "health_worker_heartbeat_stale_s": STALE_S,
    }
    worker = spawn_worker(settings, name="hw1", queues="maintenance", concurrency=2)
    worker.wait_ready()
    wait_for_port(port)
    env = {**worker_env, **{k.upper(): str(v) for k, v in settings.items()}}
    node = "hw1@%h"

    # Given jobs run in the prefork children
    for task in JOBS:
        args = ["trade_bars"] if task.endswith("retention") else []
        publisher.send_task(task, args=args)
    wait_until(lambda: set(JOBS) <= set(durations(scrape(port))), 30, what="jobs timed")

    # Then /metrics carries every worker name, the children's samples and the snapshot
    families = scrape(port)
    assert {family_name(d) for d in WORKER_DEFS} <= set(families)
    assert {d.name for d in SNAPSHOT_DEFS} <= set(families)
    stored = {s.labels["table"]: s.value for s in families["hyperwatch_rows_stored"].samples}
    with pg_database.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(HealthMetric)).scalar_one()
    assert stored["health_metrics"] == rows > 0
    assert families["hyperwatch_workers_alive"].samples[0].value == 1.0
    (memory,) = families["hyperwatch_worker_memory_bytes"].samples
    assert memory.labels["node"].startswith("hw1@") and memory.value > 10_000_000

    # And the liveness probe passes, reading only the heartbeat file
    alive = probe(env, node, tmp_path)
    assert alive.returncode == 0, alive.stderr
    path = heartbeat_path(tmp_path / "var", memory.labels["node"])

    # When Redis is down for longer than the stale limit, the worker is still alive
    redis_server.stop()
    try:
        time.sleep(STALE_S + 1.5)
        assert file_age(path).fresh(1.5), file_age(path)
        assert probe(env, node, tmp_path).returncode == 0
    finally:
        redis_server.start()

    # When the worker process is frozen, the probe fails once the file is stale
    worker.signal(signal.SIGSTOP)
    try:
        time.sleep(STALE_S + 1.0)
        frozen = probe(env, node, tmp_path)
        assert frozen.returncode == 2 and "old (limit 3 s)" in frozen.stderr, frozen
    finally:
        worker.signal(signal.SIGCONT)
    wait_until(lambda: file_age(path).fresh(1.0), 10, what="heartbeat after SIGCONT")

    worker.signal(signal.SIGTERM)
    assert worker.wait(30) in (0, 1), worker.log()
    assert "worker /metrics on" in worker.log()
    assert not os.path.exists(f"/proc/{worker.pid}")
