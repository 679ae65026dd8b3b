"""Real ``celery -A tasks worker`` processes: several workers evaluating the same tick fire
each alert once; a worker killed in the middle of a delivery loses nothing (the outbox
sweeper delivers it) and the receiver can drop the duplicate by its Idempotency-Key."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery.contrib.testing.worker import start_worker

from domain.notify.signing import IDEMPOTENCY_HEADER
from models.db import Database
from runtime import lifecycle
from settings import Settings
from tasks.application import create_app
from tests.integration.alerts.support import (
    add_alert,
    add_channel,
    add_user,
    mids,
    notifications,
    now_ms,
    wait_until,
)
from tests.integration.celery.support import WorkerProcess, drained, service_env
from tests.integration.notify.receiver import Receiver

pytestmark = pytest.mark.integration


@pytest.fixture()
def workers(alert_settings: Settings, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """Started worker processes, all stopped (killed) at teardown."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


def spawn(
    started: list[WorkerProcess], settings: Settings, tmp_path: Path, name: str, queues: str
) -> WorkerProcess:
    env = service_env(
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        broker_url=settings.effective_broker_url,
        data_dir=tmp_path / "var",
        webhook_allowlist="127.0.0.0/8",
        telegram_api_base=settings.telegram_api_base,
        notify_timeout_s=1,
        notify_sweep_after_s=5,
        broker_visibility_timeout_s=60,
        worker_soft_shutdown_timeout_s=3,
        worker_metrics_port=0,
        log_level="INFO",
    )
    # DEBUG: the per-task "succeeded" lines (DEBUG by default) show which worker took part
    worker = WorkerProcess(
        tmp_path, env, name=name, queues=queues, concurrency=2, extra_args=("--loglevel=DEBUG",)
    )
    started.append(worker)
    return worker


def test_two_workers_evaluating_the_same_tick_send_one_notification_per_alert(
    alert_settings: Settings,
    pg_database: Database,
    redis_client: redis.Redis,
    receiver: Receiver,
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    # Given 60 alerts that one BTC tick crosses, and two alert workers of two processes each
    user_id = add_user(pg_database, tier="enterprise")
    channel_id = add_channel(pg_database, alert_settings, user_id, receiver.url())
    alert_ids = [
        add_alert(
            pg_database,
            alert_settings,
            redis_client,
            user_id,
            channel_id,
            kind="price_above",
            coin="BTC",
            threshold=str(100 + i),
        )
        for i in range(60)
    ]
    for name in ("a1", "a2"):
        spawn(workers, alert_settings, tmp_path, name, "alerts").wait_ready()

    # When the same tick reaches both of them (the ingester's at-least-once replays, and
    # an overlap of batches), eight times
    app = create_app(alert_settings)
    try:
        tick = mids(now_ms(), BTC="1000")
        for _ in range(8):
            app.send_task("hyperwatch.alerts.evaluate", args=[tick])
        wait_until(lambda: drained(redis_client, "alerts"), 30, what="alerts drained")
    finally:
        app.close()
        lifecycle.registry.reset()

    # Then every alert fired exactly once: one outbox row each
    rows = notifications(pg_database)
    assert sorted(n.alert_id or 0 for n in rows) == alert_ids
    # and both workers really took part
    for worker in workers:
        assert "hyperwatch.alerts.evaluate" in worker.log() and "succeeded" in worker.log()


def test_worker_killed_mid_delivery_is_covered_by_the_sweeper(
    alert_settings: Settings,
    pg_database: Database,
    redis_client: redis.Redis,
    receiver: Receiver,
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    # Given an alert, and a worker (alerts + notify) whose delivery hangs at the receiver
    user_id = add_user(pg_database)
    channel_id = add_channel(pg_database, alert_settings, user_id, receiver.url())
    add_alert(pg_database, alert_settings, redis_client, user_id, channel_id,
              kind="price_above", coin="BTC", threshold="100")  # fmt: skip
    receiver.hold.set()
    doomed = spawn(workers, alert_settings, tmp_path, "doomed", "alerts,notify").wait_ready()
    app = create_app(alert_settings)
    app.loader.import_default_modules()
    try:
        app.send_task("hyperwatch.alerts.evaluate", args=[mids(now_ms(), BTC="101")])
        wait_until(lambda: receiver.received(), 20, what="the delivery in flight")

        # When the worker is killed (SIGKILL, pool children first) in mid-delivery
        for child in doomed.children():
            os.kill(child, signal.SIGKILL)
        doomed.signal(signal.SIGKILL)
        doomed.wait(10)
        receiver.hold.clear()
        [row] = notifications(pg_database)
        assert (row.status, row.attempts) == ("pending", 0)

        # and another worker runs beat's outbox sweep (every second here, 30 s in prod)
        with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING",
                          shutdown_timeout=20):  # fmt: skip

            def swept() -> bool:
                if notifications(pg_database)[0].status == "sent":
                    return True
                app.send_task("hyperwatch.notify.sweep_outbox")
                time.sleep(1)
                return False

            wait_until(swept, 40, what="the sweeper to deliver it")
    finally:
        app.close()
        lifecycle.registry.reset()

    # Then it is sent; the receiver saw it twice (at least once) with one idempotency key
    [row] = notifications(pg_database)
    assert row.status == "sent"
    keys = [r.headers[IDEMPOTENCY_HEADER] for r in receiver.received()]
    assert len(keys) == 2 and len(set(keys)) == 1
