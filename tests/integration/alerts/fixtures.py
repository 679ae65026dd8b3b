"""Fixtures for alert / notification tests; test modules import the ones they use.

- ``alert_settings``: Settings on the private Redis and a fresh PostgreSQL database, with
  loopback allowlisted for webhooks (the receivers live on 127.0.0.1), the Telegram API
  base at the receiver, and short notify timings so retries and sweeps happen in a test.
- ``redis_client``: a client on the private Redis.
- ``app``: a Celery app from ``create_app`` with every task module imported.
- ``worker``: a real in-process worker (solo pool, in a thread) consuming every queue.
- ``receiver``: a local HTTP receiver.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from celery.contrib.testing.worker import start_worker

from models.db import Database
from runtime import lifecycle
from settings import Settings
from tasks.application import HyperwatchCelery, create_app
from tests.integration.notify.receiver import Receiver, receiving


@pytest.fixture()
def alert_settings(
    settings_for: Callable[..., Settings],
    pg_database: Database,
    postgres_url: str,
    redis_url: str,
    receiver: Receiver,
) -> Settings:
    return settings_for(
        telegram_api_base=receiver.url(""),
        database_url=postgres_url,
        redis_url=redis_url,
        broker_url=redis_url,
        webhook_allowlist="127.0.0.0/8",
        notify_timeout_s=2,
        notify_sweep_after_s=5,
        broker_visibility_timeout_s=60,
        worker_soft_shutdown_timeout_s=3,
        worker_metrics_port=0,
    )


@pytest.fixture()
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture()
def app(alert_settings: Settings) -> Iterator[HyperwatchCelery]:
    application = create_app(alert_settings)
    application.loader.import_default_modules()
    yield application
    deliverer = getattr(application, "_hyperwatch_deliverer", None)
    if deliverer is not None:
        deliverer.close()
    application.close()
    lifecycle.registry.reset()


@pytest.fixture()
def worker(app: HyperwatchCelery) -> Iterator[HyperwatchCelery]:
    with start_worker(
        app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=20
    ):
        yield app


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r
