"""Warm shutdown and crashes of real ``celery -A tasks worker`` processes.

A batch is "running" when its worker has inserted the trades and waits on a real
PostgreSQL lock that the test holds on ``trade_bars`` (support.TableLock): the state of any
batch caught mid-transaction, reached without mocks or sleeps in product code. The test
knows the batch is mid-flight because PostgreSQL shows the worker's backend waiting.
"""

# ruff: noqa: F811 - pytest fixtures imported from the shared module are parameters here

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest
import redis
from sqlalchemy import text

from models.db import Database
from settings import Settings
from tasks.application import HyperwatchCelery
from tests.integration.celery.fixtures import (  # noqa: F401 - fixtures
    broker,
    celery_settings,
    publisher,
    spawn_worker,
    worker_env,
)
from tests.integration.celery.support import (
    WorkerProcess,
    drained,
    expected_bars,
    make_trades,
    queue_depth,
    stored_bars,
    stored_trade_keys,
    table_lock,
    trades_payload,
    unacked,
    wait_until,
)

pytestmark = pytest.mark.e2e

Spawn = Callable[..., WorkerProcess]
BATCHES = 5
PER_BATCH = 400


def publish_batches(app: HyperwatchCelery) -> list[list]:
    """Five batches of 400 distinct trades; returns them per batch."""
    trades = make_trades(BATCHES * PER_BATCH)
    batches = [trades[i * PER_BATCH : (i + 1) * PER_BATCH] for i in range(BATCHES)]
    for seq, batch in enumerate(batches):
        app.send_task("hyperwatch.persist.trades", args=[trades_payload(batch, seq=seq)])
    return batches


def drain_with_new_worker(spawn: Spawn, broker: redis.Redis, env: dict | None = None) -> None:
    spawn(env, name="drainer").wait_ready()
    wait_until(lambda: drained(broker, "ingest"), 60, what="ingest drained")


def assert_exactly_once(database: Database, batches: list[list]) -> None:
    everything = [t for batch in batches for t in batch]
    with database.engine.connect() as conn:
        assert stored_trade_keys(conn) == sorted((t.coin, t.time, t.tid) for t in everything)
        assert stored_bars(conn) == expected_bars(everything)


def stored_count(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM trade_snapshots")).scalar_one())


def os_pid_of_backend(database: Database, backend_pid: int) -> int:
    # models.db names every connection "hyperwatch:<os pid>".
    with database.engine.connect() as conn:
        name = conn.execute(
            text("SELECT application_name FROM pg_stat_activity WHERE pid = :p"), {"p": backend_pid}
        ).scalar_one()
    return int(name.split(":")[1])


@pytest.mark.parametrize("remap", [True, False], ids=["REMAP_SIGTERM=SIGQUIT", "plain-SIGTERM"])
def test_sigterm_lets_the_running_batch_finish_and_requeues_reserved_messages(
    remap: bool,
    spawn_worker: Spawn,
    publisher: HyperwatchCelery,
    broker: redis.Redis,
    pg_database: Database,
    celery_settings: Settings,
) -> None:
    # Given a worker (1 process, prefetch 4) running one batch and holding 3 more reserved
    worker = spawn_worker(
        {"worker_prefetch_multiplier": 4}, concurrency=1, remap_sigterm=remap
    ).wait_ready()
    with table_lock(celery_settings.database_url) as lock:
        batches = publish_batches(publisher)
        lock.wait_blocked()
        wait_until(lambda: unacked(broker) == 4, 10, what="4 messages reserved")

        # When it receives SIGTERM mid-batch, and the batch can then go on
        worker.signal(signal.SIGTERM)
        worker.wait_log("Initiating Soft Shutdown" if remap else "Warm shutdown")
        lock.release()
        rc = worker.wait(30)

    # Then the running batch completed, the worker exited 0, the reserved messages and the
    # one never fetched are back in the queue, nothing is left unacknowledged
    assert rc == 0, worker.log()
    assert stored_count(pg_database) == PER_BATCH
    assert (queue_depth(broker, "ingest"), unacked(broker)) == (BATCHES - 1, 0)
    assert "Restoring 3 unacknowledged message(s)" in worker.log()
    # and both the pool child and the main process ran the shutdown handlers
    assert worker.log().count("shutdown handlers ran in pid") >= 2

    # And a new worker stores the rest: every trade exactly once, bars exact
    drain_with_new_worker(spawn_worker, broker)
    assert_exactly_once(pg_database, batches)


def test_sigterm_with_a_batch_blocked_past_the_soft_timeout_gives_it_back_in_time(
    spawn_worker: Spawn,
    publisher: HyperwatchCelery,
    broker: redis.Redis,
    pg_database: Database,
    celery_settings: Settings,
) -> None:
    # Given a worker started as orchestrators do (REMAP_SIGTERM=SIGQUIT, 3 s soft timeout)
    # whose batch waits on a lock that is not released before the soft timeout ends
    worker = spawn_worker({"worker_prefetch_multiplier": 4}, concurrency=1).wait_ready()
    with table_lock(celery_settings.database_url) as lock:
        batches = publish_batches(publisher)
        lock.wait_blocked()

        # When SIGTERM arrives
        worker.signal(signal.SIGTERM)
        rc = worker.wait(15)
        assert lock.waiters() == []

    # Then the batch's statement hit its time bound (below the soft timeout: Celery cannot
    # cancel a process waiting inside libpq), rolled back and was handed back as a retry;
    # the worker exited on time, nothing was committed, every batch is back in the queue
    assert rc == 0, worker.log()
    assert "retry 1/∞ in" in worker.log()
    assert "canceling statement due to statement timeout" in worker.log()
    assert stored_count(pg_database) == 0
    assert (queue_depth(broker, "ingest"), unacked(broker)) == (BATCHES, 0)

    # And the next worker stores everything exactly once
    drain_with_new_worker(spawn_worker, broker)
    assert_exactly_once(pg_database, batches)


def test_sigkill_of_the_worker_mid_batch_redelivers_after_the_visibility_timeout(
    spawn_worker: Spawn,
    publisher: HyperwatchCelery,
    broker: redis.Redis,
    pg_database: Database,
    celery_settings: Settings,
) -> None:
    # Given a worker with a 5 s visibility timeout, mid-batch with more reserved
    # (No SIGTERM here: a long soft timeout keeps the statement bound out of the way.)
    short = {
        "broker_visibility_timeout_s": 5,
        "worker_prefetch_multiplier": 4,
        "worker_soft_shutdown_timeout_s": 20,
    }
    worker = spawn_worker(short, concurrency=1).wait_ready()
    with table_lock(celery_settings.database_url) as lock:
        batches = publish_batches(publisher)
        lock.wait_blocked()
        wait_until(lambda: unacked(broker) == 4, 10, what="4 messages reserved")

        # When the main process is SIGKILLed (its pool child dies with it: PDEATHSIG)
        worker.signal(signal.SIGKILL)
        assert worker.wait(10) == -signal.SIGKILL
        wait_until(lambda: lock.waiters() == [], 10, what="the batch's transaction to end")

    # Then nothing of the batch was committed and its message is still unacknowledged
    assert stored_count(pg_database) == 0
    assert (queue_depth(broker, "ingest"), unacked(broker)) == (1, 4)

    # And once the visibility timeout passes a new worker gets it: stored exactly once
    drain_with_new_worker(spawn_worker, broker, short)
    assert_exactly_once(pg_database, batches)


def test_sigkill_of_a_pool_child_mid_batch_requeues_its_message_at_once(
    spawn_worker: Spawn,
    publisher: HyperwatchCelery,
    broker: redis.Redis,
    pg_database: Database,
    celery_settings: Settings,
) -> None:
    # Given a worker with two pool children, one of them mid-batch
    worker = spawn_worker({"worker_soft_shutdown_timeout_s": 20}, concurrency=2).wait_ready()
    with table_lock(celery_settings.database_url) as lock:
        batches = publish_batches(publisher)
        waiting = lock.wait_blocked(count=2)
        victim = os_pid_of_backend(pg_database, waiting[0])
        assert victim in worker.children()

        # When that child is SIGKILLed (an OOM kill)
        os.kill(victim, signal.SIGKILL)
        worker.wait_log("WorkerLostError")
        # the message is rejected back to the queue and a new child takes it up
        wait_until(lambda: len(lock.waiters()) == 2, 20, what="the batch to run again")
        lock.release()
        wait_until(lambda: drained(broker, "ingest"), 30, what="ingest drained")

    # Then the worker survived and every batch, the killed one included, is stored once
    assert worker.process.poll() is None
    assert_exactly_once(pg_database, batches)
