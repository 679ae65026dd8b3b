"""Fixtures for Celery tests; test modules import the ones they use.

- ``celery_settings``: Settings pointing at the private Redis and a fresh PostgreSQL db.
- ``broker``: a redis client on the private server (queue depth, ``unacked``).
- ``publisher``: a Celery app built by ``create_app`` to send tasks from the test.
- ``inprocess_worker``: a real worker (``celery.contrib.testing.worker.start_worker``, solo
  pool, in a thread) consuming the real broker with the app ``create_app`` builds.
- ``worker_env`` / ``spawn_worker``: environment and factory for ``celery -A tasks worker``
  subprocesses, every one stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery.contrib.testing.worker import start_worker

from models.db import Database
from runtime import lifecycle
from settings import Settings
from tasks.application import HyperwatchCelery, create_app
from tests.integration.celery.support import WorkerProcess, service_env


@pytest.fixture()
def celery_settings(
    settings_for: Callable[..., Settings], pg_database: Database, postgres_url: str, redis_url: str
) -> Settings:
    return settings_for(
        database_url=postgres_url,
        redis_url=redis_url,
        broker_url=redis_url,
        worker_soft_shutdown_timeout_s=3,
        broker_visibility_timeout_s=60,
    )


@pytest.fixture()
def broker(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture()
def publisher(celery_settings: Settings) -> Iterator[HyperwatchCelery]:
    app = create_app(celery_settings)
    app.loader.import_default_modules()
    yield app
    app.close()
    lifecycle.registry.reset()


@pytest.fixture()
def inprocess_worker(publisher: HyperwatchCelery) -> Iterator[HyperwatchCelery]:
    with start_worker(
        publisher, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=20
    ):
        yield publisher


@pytest.fixture()
def worker_env(celery_settings: Settings, tmp_path: Path) -> dict[str, str]:
    return service_env(
        database_url=celery_settings.database_url,
        redis_url=celery_settings.redis_url,
        broker_url=celery_settings.effective_broker_url,
        data_dir=tmp_path / "var",
        worker_soft_shutdown_timeout_s=3,
        worker_metrics_port=0,  # several workers per test; /metrics is the ops tests' concern
        log_level="INFO",
    )


@pytest.fixture()
def spawn_worker(
    worker_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def spawn(env_overrides: dict[str, Any] | None = None, **kwargs: Any) -> WorkerProcess:
        env = dict(worker_env)
        env.update({k.upper(): str(v) for k, v in (env_overrides or {}).items()})
        worker = WorkerProcess(tmp_path, env, **kwargs)
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        worker.stop()
