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

The first test runs once per broker kind (``broker``): plain Redis, where the broker fault
is a restart; and Redis Sentinel (a primary, a replica and three sentinels,
tests/support/sentinel.py), where it is the primary SIGKILLed mid-stream and a failover.
The non-default kinds carry the ``brokers`` marker: `make test-brokers`, after
`make test-heavy` in .ci/run.
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

from domain.archive import ArchiveImporter, discover
from models import migrate
from models.db import get_database
from settings import load_settings
from tests.support.rabbitmq import RabbitNode
from tests.support.sentinel import SentinelGroup
from tests.support.services import PostgresCluster, RedisServer
from tests.support.stack import Stack, StackConfig, compare, compare_complete, wait_until

# Heavy: whole stacks killed, partitioned and restarted; `make test-heavy`, which .ci/run
# runs after the test command.
pytestmark = [pytest.mark.e2e, pytest.mark.heavy]


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


class BrokerUnderTest:
    """The broker a fault-suite run uses, and the fault it suffers mid-stream."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.failed_over_from: int | None = None  # Sentinel: the port of the killed primary
        self.server: RedisServer | SentinelGroup = (
            SentinelGroup().start() if kind == "sentinel" else RedisServer(appendonly=True).start()
        )
        # RabbitMQ: the broker; the Redis above stays the cache (mids, leases, locks)
        self.rabbit = RabbitNode().start() if kind == "rabbitmq" else None

    def fail(self) -> str:
        """Plain Redis: restarted (down 2 s). Sentinel: the primary SIGKILLed; the sentinels
        promote the replica while the stream goes on. Returns the fault's name."""
        if isinstance(self.server, SentinelGroup):
            self.failed_over_from = self.server.kill_primary()
            return "sentinel_primary_sigkill"
        if self.rabbit is not None:
            self.rabbit.restart(down_for=2)
            return "rabbitmq_restart"
        self.server.restart(down_for=2)
        return "redis_restart"

    def close(self) -> None:
        if self.rabbit is not None:
            self.rabbit.close()
        self.server.close()


@pytest.fixture(
    params=[
        "redis",
        pytest.param("sentinel", marks=pytest.mark.brokers),
        pytest.param("rabbitmq", marks=pytest.mark.brokers),
    ],
)
def broker_services(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[BrokerUnderTest, PostgresCluster, str]]:
    broker = BrokerUnderTest(request.param)
    cluster = PostgresCluster().start()
    try:
        url = cluster.create_database("hyperwatch")
        migrate.upgrade(load_settings(database_url=url))
        yield broker, cluster, url
    finally:
        broker.close()
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
    tmp_path: Path, broker_services: tuple[BrokerUnderTest, PostgresCluster, str]
) -> None:
    broker, cluster, url = broker_services
    config = StackConfig(
        rate=300,
        replay_trades=3000,  # the reconnect replay covers every drop and stall below
        visibility_timeout_s=8,
        # a batch lost by a SIGKILLed worker (kombu pops before recording) is re-sent after this
        extra_env={"INGEST_CONFIRM_TIMEOUT_S": "5"},
        sim_args=("--malformed-rate", "0.01"),
    )
    stack = Stack(tmp_path, url, broker.server, config, rabbit=broker.rabbit)
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

        # … the broker fails: Redis is restarted, or the Sentinel primary is SIGKILLed and a
        # replica promoted (the ingester buffers and replays, workers reconnect)
        faults[broker.fail()] += 1
        _progress(stack, 2)
        if isinstance(broker.server, SentinelGroup):  # the stream goes on on the promoted node
            assert broker.server.primary_port() != broker.failed_over_from

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
        "broker": broker.kind,
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


def _gaps(url: str) -> list[dict[str, object]]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT stream, key, from_ms, to_ms, ended_by, status, healed_by FROM gaps")
            ).mappings()
            return [dict(r) for r in rows]
    finally:
        engine.dispose()


def test_given_ingester_kills_and_a_stop_during_an_outage_when_the_archive_is_imported_then_the_record_is_complete(
    tmp_path: Path, private_services: tuple[RedisServer, PostgresCluster, str]
) -> None:
    redis_server, _cluster, url = private_services
    archive = tmp_path / "archive"
    config = StackConfig(
        rate=300,
        replay_trades=20,  # a short replay: the holes below are real, only the archive fills them
        visibility_timeout_s=8,
        sim_args=("--archive-dir", str(archive), "--archive-level", "1"),
    )
    stack = Stack(tmp_path, url, redis_server, config)
    started = time.monotonic()
    try:
        # Given the pipeline running on a steady stream (trades flow before the ingester is up)
        stack.start_simulator()
        stack.start_worker()
        time.sleep(1)
        stack.start_ingester(name="ingester-1")
        _progress(stack, 3)

        # When the ingester is SIGKILLed mid-stream and started again 2 s later
        assert stack.ingester is not None
        stack.ingester.process.kill()
        stack.ingester.process.wait()
        time.sleep(2)
        stack.start_ingester(name="ingester-2")
        _progress(stack, 3)

        # … and stopped with SIGTERM while the feed is in an outage (a stall: the socket is
        # open and silent), then started again after it
        _sim_fault(stack, kind="stall", seconds=6)
        time.sleep(2)
        assert stack.ingester.stop() == 0
        time.sleep(3)
        stack.start_ingester(name="ingester-3")
        _progress(stack, 3)

        # … and everything stops; the simulator writes its archive as it stops
        codes = stack.stop_all()
        stack.wait_drained(180)
        codes |= stack.stop_workers()
        gaps = _gaps(url)

        # Then each interruption left gap rows: the kill a crash gap per coin, the stop one
        # opened at shutdown; both closed by the next start
        closed = [g for g in gaps if g["to_ms"] is not None]
        assert {g["key"] for g in closed if g["ended_by"] == "crash"} == {"BTC", "ETH", "SOL"}
        assert {g["key"] for g in closed if g["ended_by"] == "shutdown"} == {"BTC", "ETH", "SOL"}
        before = compare_complete(url, stack.truth_path)
        assert before.missing, "the holes were real: trades are missing before the import"

        # When the simulator's archive for the run is imported
        settings = load_settings(database_url=url)
        summary = ArchiveImporter(get_database(settings), ()).run(discover([archive]))
        get_database(settings).dispose()

        # Then the database equals the exchange's whole ground truth, and the gaps are healed
        comparison = compare_complete(url, stack.truth_path)
        after = _gaps(url)
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.close()

    report = {
        "before_import": before.summary(),
        "after_import": comparison.summary(),
        "gaps": len(after),
        "gaps_healed_by_archive": summary.gaps_healed,
        "seconds": round(time.monotonic() - started, 1),
        "exit_codes": codes,
    }
    print("\nCOMPLETENESS", json.dumps(report, indent=2))
    assert summary.failed == [] and summary.total("bad_lines") == 0
    assert comparison.missing == [], comparison.missing[:10]
    assert comparison.extra == [], comparison.extra[:10]
    assert comparison.mismatched == [], comparison.mismatched[:10]
    assert comparison.bar_errors == [], comparison.bar_errors[:10]
    assert comparison.stored == comparison.produced > 5_000
    # every closed gap is healed; only the final stop's gaps stay open (nothing after them)
    assert [g for g in after if g["to_ms"] is not None and g["status"] != "healed"] == []
    assert {g["ended_by"] for g in after if g["to_ms"] is None} <= {"shutdown"}
    assert all(code == 0 for code in codes.values()), codes
