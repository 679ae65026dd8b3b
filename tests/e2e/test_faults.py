"""Truth under faults: the database equals what the exchange sent, through every failure.

One steady stream from the simulator (its ground truth recorded) runs through the real
ingester, a private Redis (AOF on, as deployed), real Celery workers and a private
PostgreSQL server. In turn the suite SIGKILLs workers, restarts Redis, restarts PostgreSQL,
drops and stalls the WebSocket, injects malformed frames, and finally sends SIGTERM to
every process. Then the database is compared with the ground truth: every trade stored
exactly once with its exact fields (except trades the protocol cannot replay, which must lie
inside a gap the ingester recorded), nothing invented, bars equal to a fresh fold of the
trades. Figures are printed and written to ``FAULT_SUITE_REPORT`` (docs/RELIABILITY.md
carries the latest).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from models import migrate
from settings import load_settings
from tests.support.services import PostgresCluster, RedisServer
from tests.support.stack import Stack, StackConfig, compare, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture()
def private_services() -> Iterator[tuple[RedisServer, PostgresCluster, str]]:
    redis_server = RedisServer(appendonly=True).start()
    cluster = PostgresCluster().start()
    try:
        url = cluster.create_database("hyperwatch")
        migrate.upgrade(load_settings(database_url=url))
        yield redis_server, cluster, url
    finally:
        redis_server.close()
        cluster.close()


def _stored(stack: Stack) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM trade_snapshots")).scalar_one())
    except Exception:
        return -1
    finally:
        engine.dispose()


def _progress(stack: Stack, seconds: float) -> None:
    """Let the stream run, then make sure rows are still arriving."""
    before = _stored(stack)
    time.sleep(seconds)
    wait_until(
        lambda: stack.revive_workers() >= 0 and _stored(stack) > before,
        60, "new trades stored after the fault",
    )  # fmt: skip


def _sim_fault(stack: Stack, **body: object) -> None:
    assert stack.simulator is not None
    httpx.post(f"{stack.simulator.base_url}/_sim/fault", json=body, timeout=5).raise_for_status()


def test_given_steady_stream_when_every_fault_is_injected_then_database_equals_ground_truth(
    tmp_path: Path, private_services: tuple[RedisServer, PostgresCluster, str]
) -> None:
    redis_server, cluster, url = private_services
    config = StackConfig(
        rate=300,
        replay_trades=3000,  # the reconnect replay covers every drop and stall below
        visibility_timeout_s=8,
        # a batch lost by a SIGKILLed worker (kombu pops before recording) is re-sent after this
        extra_env={"INGEST_CONFIRM_TIMEOUT_S": "5"},
        sim_args=("--malformed-rate", "0.01"),
    )
    stack = Stack(tmp_path, url, redis_server, config)
    faults: Counter[str] = Counter()
    started = time.monotonic()
    try:
        # Given the whole pipeline running on a steady stream
        stack.start_simulator()
        stack.start_worker()
        # a 2 s silence watchdog makes a stall end in a reconnect (and its replay)
        stack.start_ingester(stream_silence_s=2)
        _progress(stack, 3)

        # When workers are killed with SIGKILL, five times, mid-stream
        for _ in range(5):
            time.sleep(1.0)
            stack.kill_worker(next(iter(stack.workers)))
            faults["worker_sigkill"] += 1
            stack.start_worker()
        _progress(stack, 1)

        # … Redis is restarted (the ingester buffers, workers reconnect)
        redis_server.restart(down_for=2)
        faults["redis_restart"] += 1
        _progress(stack, 2)

        # … PostgreSQL is restarted (tasks retry until it is back)
        cluster.restart(down_for=3)
        faults["postgres_restart"] += 1
        _progress(stack, 2)

        # … the WebSocket is dropped and stalled every few seconds
        for _ in range(3):
            _sim_fault(stack, kind="drop")
            faults["ws_drop"] += 1
            time.sleep(2)
            _sim_fault(stack, kind="stall", seconds=4)
            faults["ws_stall"] += 1
            time.sleep(5)
        _progress(stack, 1)

        # … malformed frames arrive (besides the 1 % background rate)
        _sim_fault(stack, kind="malformed", count=200)
        faults["malformed_burst"] += 1
        _progress(stack, 1)

        # … and finally every process gets SIGTERM
        codes = stack.stop_all()
        stack.wait_drained(180)
        codes |= stack.stop_workers()
        faults["sigterm_all"] += 1

        # Then the database equals the ground truth
        comparison = compare(url, stack.truth_path)
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.close()

    report = {
        "events": comparison.summary(),
        "faults": dict(faults),
        "faults_injected": sum(faults.values()),
        "seconds": round(time.monotonic() - started, 1),
        "exit_codes": codes,
        "workers_that_exited_by_themselves": stack.crashed,
    }
    print("\nFAULT SUITE", json.dumps(report, indent=2))
    if os.environ.get("FAULT_SUITE_REPORT"):
        Path(os.environ["FAULT_SUITE_REPORT"]).write_text(json.dumps(report, indent=2) + "\n")
    assert comparison.lost == [], f"lost {len(comparison.lost)}: {comparison.lost[:10]}"
    assert comparison.duplicated == 0
    assert comparison.phantom == [], comparison.phantom[:10]
    assert comparison.mismatched == [], comparison.mismatched[:10]
    assert comparison.bar_errors == [], comparison.bar_errors[:10]
    assert comparison.expected > 5_000
    assert all(code == 0 for code in codes.values()), codes
