"""A real Celery worker (in a thread, solo pool) on the private Redis and a real database.

Messages travel through the broker exactly as in production: published by ``send_task`` or
by the ingester's own kombu publisher, delivered, acknowledged late, retried as new
messages with a countdown.
"""

# ruff: noqa: F811 - pytest fixtures imported from the shared module are parameters here

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from sqlalchemy import text

from models import migrate
from models.db import Database, get_database
from runtime import lifecycle
from settings import Settings
from tasks.application import HyperwatchCelery, create_app
from tests.integration.celery.fixtures import (  # noqa: F401 - fixtures
    broker,
    celery_settings,
    inprocess_worker,
    publisher,
)
from tests.integration.celery.support import (
    drained,
    expected_bars,
    make_trades,
    stored_bars,
    stored_trade_keys,
    trades_payload,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_replayed_and_overlapping_batches_through_the_worker_store_each_trade_once(
    inprocess_worker: HyperwatchCelery, broker: redis.Redis, pg_database: Database
) -> None:
    # Given 1,000 trades published as a batch, the same batch again (an ingester replay
    # after reconnect), and an overlapping batch
    trades = make_trades(1_000)
    for payload in (
        trades_payload(trades[:600], seq=1),
        trades_payload(trades[:600], seq=1),
        trades_payload(trades[400:], seq=2),
    ):
        inprocess_worker.send_task("hyperwatch.persist.trades", args=[payload])

    # When the worker has acknowledged every message (late ack: after commit)
    wait_until(lambda: drained(broker, "ingest"), 30, what="ingest drained")

    # Then every trade is stored once and the bars equal one fold of the 1,000 trades
    with pg_database.engine.connect() as conn:
        assert stored_trade_keys(conn) == sorted((t.coin, t.time, t.tid) for t in trades)
        assert stored_bars(conn) == expected_bars(trades)


def test_batches_published_by_the_ingester_publisher_are_persisted(
    inprocess_worker: HyperwatchCelery, broker: redis.Redis, pg_database: Database
) -> None:
    # Given the ingester's own publisher (raw kombu, protocol-v2 body built by hand)
    from workers.ingester.broker import PERSIST_TRADES, BrokerClient

    client = BrokerClient(inprocess_worker.settings.effective_broker_url)
    trades = make_trades(50)

    # When it publishes a trade batch to the ingest queue
    try:
        client.send(PERSIST_TRADES, json.dumps(trades_payload(trades)).encode(), "[<batch>]")
    finally:
        client.close()

    # Then our worker runs hyperwatch.persist.trades on it and the trades are stored
    wait_until(lambda: drained(broker, "ingest"), 30, what="ingest drained")
    with pg_database.engine.connect() as conn:
        assert len(stored_trade_keys(conn)) == 50


def test_malformed_message_is_dead_lettered_and_acknowledged(
    inprocess_worker: HyperwatchCelery, broker: redis.Redis, pg_database: Database
) -> None:
    # Given a batch with an unknown kind; When the worker receives it
    inprocess_worker.send_task(
        "hyperwatch.persist.trades", args=[{"v": 1, "kind": "candles", "events": []}]
    )

    # Then it is acknowledged (not redelivered, not retried) and kept with its reason
    wait_until(lambda: drained(broker, "ingest"), 30, what="ingest drained")
    with pg_database.engine.connect() as conn:
        reasons = conn.execute(text("SELECT reason FROM dead_letters")).scalars().all()
    assert reasons == ["MalformedPayload: unknown batch kind 'candles'"]


def test_transient_lock_is_retried_through_the_broker_and_the_batch_lands_once(
    settings_for: Callable[..., Settings],
    redis_url: str,
    broker: redis.Redis,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a worker on SQLite that waits at most 100 ms for the write lock, and another
    # connection holding that lock
    settings = settings_for(
        database_url=f"sqlite:///{tmp_path / 'hw.db'}",
        database_connection_timeout=100,
        redis_url=redis_url,
        broker_url=redis_url,
        broker_visibility_timeout_s=20,  # retry countdowns are capped at 5 s
    )
    migrate.upgrade(settings)
    app = create_app(settings)
    app.loader.import_default_modules()
    holder = sqlite3.connect(tmp_path / "hw.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    caplog.set_level(logging.WARNING, logger="tasks.base")
    trades = make_trades(20)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=20):
            # When a batch arrives while the lock is held
            app.send_task("hyperwatch.persist.trades", args=[trades_payload(trades)])
            wait_until(
                lambda: any("retry 1/∞" in r.getMessage() for r in caplog.records),
                15,
                what="a retry to be scheduled",
            )
            # and the lock is released after the first attempt failed
            holder.execute("ROLLBACK")
            wait_until(lambda: drained(broker, "ingest"), 30, what="ingest drained")
    finally:
        holder.close()
        lifecycle.registry.reset()

    # Then the retry (a new message with a countdown) stored the batch, exactly once
    with get_database(settings).engine.connect() as conn:
        assert len(stored_trade_keys(conn)) == 20
        assert conn.execute(text("SELECT count(*) FROM dead_letters")).scalar_one() == 0
    assert any("transient OperationalError" in r.getMessage() for r in caplog.records)
