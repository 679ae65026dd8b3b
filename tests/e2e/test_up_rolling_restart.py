"""A rolling restart of two ingesters under ``hyperwatch up --ingesters 2`` leaves no hole.

The simulator runs apart from ``up`` (``--feed live`` pointed at it) so its ground truth is
recorded for the whole run. Each ingester in turn gets SIGTERM — as a deploy does — and
``up`` starts it again; the other one keeps the feed. While ``up`` still runs, the gaps
table must be empty (neither restart opened a hole), and after a clean stop the database
must hold every trade the exchange produced while an ingester was connected, once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import create_engine, text

from runtime import keys
from tests.support.services import PostgresDatabase, RedisServer, free_port
from tests.support.stack import compare, wait_until
from workers.simulator import SimulatorProcess

# Heavy: whole stacks killed, partitioned and restarted; `make test-heavy`, which .ci/run
# runs after the test command.
pytestmark = [pytest.mark.e2e, pytest.mark.heavy]

COINS = "BTC,ETH,SOL"


def _two_free_ports() -> int:
    """A port p with p + 1 free too (the second ingester's health port)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two adjacent free ports")


def _started_pids(log: Path) -> dict[str, int]:
    """The newest pid ``up`` reported for each child."""
    pids: dict[str, int] = {}
    for match in re.finditer(r"started (\S+) \(pid (\d+)\)", log.read_text(errors="replace")):
        pids[match.group(1)] = int(match.group(2))
    return pids


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def _count(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture()
def private_redis() -> Iterator[str]:
    # Its own server, not the session's: a process another test left behind on the shared
    # one (an ingester of the default feed) would stand by in this feed.
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture()
def fresh_database() -> Iterator[str]:
    # Not the session's database: other tests' trades and gap rows would be counted here.
    database = PostgresDatabase()
    try:
        yield database.url
    finally:
        database.close()


def test_given_two_ingesters_under_up_when_each_is_restarted_in_turn_then_nothing_is_lost_and_no_gap_opens(
    tmp_path: Path, private_redis: str, fresh_database: str
) -> None:
    redis_url, postgres_url = private_redis, fresh_database
    truth = tmp_path / "truth.jsonl"
    sim = SimulatorProcess.start(
        ["--rate", "200", "--coins", COINS, "--seed", "11", "--replay-trades", "20",
         "--record", str(truth)]
    )  # fmt: skip
    health = _two_free_ports()
    ports = {"ingester": health, "ingester-2": health + 1}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HL_", "DATABASE_", "BROKER_", "COINS", "TRACKED_", "FLOWER_"))
    }
    env.update(
        REDIS_URL=redis_url,
        DATABASE_URL=postgres_url,
        HL_WS_URL=sim.ws_url,
        HL_INFO_URL=sim.info_url,
        COINS=COINS,
        INGESTER_HEALTH_PORT=str(health),
        WORKER_METRICS_PORT=str(free_port()),
        API_PORT=str(free_port()),
        WORKER_SOFT_SHUTDOWN_TIMEOUT_S="5",
        DATA_DIR=str(tmp_path / "var"),
    )
    log_path = tmp_path / "up.log"
    log = log_path.open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "up", "--feed", "live", "--ingesters", "2",
         "--no-flower"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        # Given both ingesters up and trades stored
        wait_until(lambda: all(_ready(p) for p in ports.values()), 60, "both ingesters ready")
        wait_until(
            lambda: _count(postgres_url, "SELECT count(*) FROM trade_snapshots") > 100,
            60, "trades stored",
        )  # fmt: skip

        # When each ingester in turn, the leader first, is stopped with SIGTERM and started
        # again by `up` (the lead passes to the other, which is then restarted in its turn)
        lease = redis.Redis.from_url(redis_url)
        owner = lease.get(keys.INGEST_LEASE.name(feed="default"))
        lease.close()
        assert owner is not None
        leader_pid = int(owner.decode().rsplit("-", 1)[1])
        first = next(n for n, pid in _started_pids(log_path).items() if pid == leader_pid)
        for name in (first, "ingester-2" if first == "ingester" else "ingester"):
            old = _started_pids(log_path)[name]
            os.kill(old, signal.SIGTERM)
            wait_until(
                lambda n=name, o=old: _started_pids(log_path).get(n, o) != o,  # type: ignore[misc]
                30, f"{name} started again",
            )  # fmt: skip
            wait_until(lambda n=name: _ready(ports[n]), 60, f"{name} ready again")  # type: ignore[misc]
            time.sleep(3)

        # Then no gap was opened by either restart
        time.sleep(2)
        gaps_during = _count(postgres_url, "SELECT count(*) FROM gaps")
        gap_rows = _rows(postgres_url, "SELECT key, from_ms, to_ms, ended_by FROM gaps")

        # And after a clean stop nothing is missing or doubled
        up.send_signal(signal.SIGTERM)
        assert up.wait(120) == 0
        sim.stop()
        comparison = compare(postgres_url, truth)
        up_log = log_path.read_text(errors="replace")
    except BaseException:
        print(log_path.read_text(errors="replace")[-8000:])
        raise
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
            try:
                up.wait(60)
            except subprocess.TimeoutExpired:
                up.send_signal(signal.SIGINT)
                up.wait(10)
        log.close()
        sim.stop(5)

    print("\nROLLING", json.dumps({"gaps_during": gaps_during, **comparison.summary()}))
    assert gaps_during == 0, (gap_rows, up_log[-12000:])
    # Both restarts stopped the leader, which handed over to the ready standby each time
    # (the final stop hands over once more if it stops the leader first)
    assert up_log.count("handing over to it") >= 2, up_log[-4000:]
    assert comparison.lost == [] and comparison.in_gaps == 0, comparison.lost[:10]
    assert comparison.duplicated == 0 and comparison.phantom == []
    assert comparison.mismatched == [] and comparison.bar_errors == []
    assert comparison.expected > 1_000
