"""Acceptance: the README's run command, for real.

From an empty directory, ``hyperwatch up --feed sim`` (what ``make run`` runs) starts the
simulator, ingester, worker, beat and Flower; within 30 s ``hyperwatch health`` reports
healthy and trades are in the database; SIGTERM to the supervisor drains every process and
it exits 0, leaving no message in flight and no process behind.

Only the things one machine cannot share are changed from the defaults: a private Redis
and free ports. The worker keeps its default 45 s soft shutdown; because the supervisor
stops the ingester and the simulator first, the worker is usually idle by the time it gets
SIGTERM and does not wait at all (it would sleep the full 45 s if a task were running:
Celery's soft shutdown does not end early, reference §1.2).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from tests.support.services import free_port

pytestmark = pytest.mark.e2e

HEALTHY_WITHIN_S = 30.0


def hyperwatch(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        timeout=30,
    )


def count_rows(database_url: str, table: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608
    finally:
        engine.dispose()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/var/hyperwatch.db"  # the embedded default's location
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture()
def up_env(redis_url: str, database_url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        # The developer's own deployment settings must not leak into the run under test.
        if not k.startswith(("HL_", "DATABASE_", "BROKER_", "COINS", "TRACKED_", "FLOWER_"))
    }
    env.update(
        REDIS_URL=redis_url,
        DATABASE_URL=database_url,
        FLOWER_PORT=str(free_port()),
        INGESTER_HEALTH_PORT=str(free_port()),
        WORKER_METRICS_PORT=str(free_port()),
        API_PORT=str(free_port()),
    )
    env.pop("WORKER_SOFT_SHUTDOWN_TIMEOUT_S", None)  # the default (45 s) is what ships
    return env


@pytest.fixture()
def supervisor(tmp_path: Path, up_env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "up.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "up", "--feed", "sim"],
        cwd=tmp_path,
        env=up_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:  # the test failed before stopping it: do not leak it
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGINT)  # second signal: kills every child
                process.wait(timeout=10)
        log.close()


def test_given_a_fresh_directory_when_up_with_the_simulator_then_healthy_with_trades_and_drains_on_sigterm(
    tmp_path: Path,
    up_env: dict[str, str],
    database_url: str,
    redis_url: str,
    supervisor: subprocess.Popen[bytes],
) -> None:
    output = tmp_path / "up.log"

    # Given `hyperwatch up --feed sim` started in an empty directory (the fixture)
    # When we poll `hyperwatch health` and the trades table for up to 30 s
    deadline = time.monotonic() + HEALTHY_WITHIN_S
    report = None
    trades = 0
    while time.monotonic() < deadline:
        assert supervisor.poll() is None, output.read_text()[-4000:]
        if report is None or report.returncode != 0:
            report = hyperwatch("health", env=up_env, cwd=tmp_path)
        # Once everything is started the schema exists (the migration ran first).
        if trades == 0 and "[up] started ingester" in output.read_text():
            trades = count_rows(database_url, "trade_snapshots")
        if report.returncode == 0 and trades > 0:
            break
        time.sleep(1.0)

    # Then the whole deployment is healthy within 30 s
    # One string, not a tuple: pytest shortens a tuple's repr, and the check that failed is
    # in the middle of the health report.
    assert report is not None and report.returncode == 0, "\n".join(
        (report.stdout.decode() if report else "", output.read_text()[-4000:])
    )
    assert re.search(r"overall\s+healthy", report.stdout.decode())
    # and trades (plus, soon after, the simulated wallets' positions) are stored
    assert trades > 0, output.read_text()[-4000:]
    deadline = time.monotonic() + 15
    while count_rows(database_url, "position_snapshots") == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert count_rows(database_url, "position_snapshots") > 0
    # and Flower serves on its port once the summary says everything runs (Flower starts
    # last, after the worker answers a ping)
    deadline = time.monotonic() + 30
    while "[up] Ctrl-C to stop" not in output.read_text() and time.monotonic() < deadline:
        time.sleep(0.5)
    flower = f"http://127.0.0.1:{up_env['FLOWER_PORT']}/healthcheck"
    with urllib.request.urlopen(flower, timeout=5) as answer:
        assert answer.status == 200
    # and so does the subscriber API
    api = f"http://127.0.0.1:{up_env['API_PORT']}/readyz"
    with urllib.request.urlopen(api, timeout=5) as answer:
        assert answer.status == 200

    # When the supervisor gets SIGTERM
    stop_started = time.monotonic()
    supervisor.send_signal(signal.SIGTERM)
    code = supervisor.wait(timeout=120)
    took = time.monotonic() - stop_started

    # Then every process drained and the supervisor exits 0
    log = output.read_text()
    assert code == 0, log[-4000:]
    # (Flower logs only warnings under `up`: a clean run has no [flower] line.)
    for name in ("migrate", "simulator", "worker", "beat", "ingester"):
        assert re.search(rf"^\[{name}\] ", log, re.M), f"no output prefixed [{name}]"
    stopped = re.findall(r"^\[up\] (\w+) stopped \(exit code (-?\d+)\)$", log, re.M)
    assert stopped == [
        ("api", "0"),
        ("ingester", "0"),
        ("simulator", "0"),
        ("beat", "0"),
        ("worker", "0"),
        ("flower", "0"),
    ]
    # REMAP_SIGTERM=SIGQUIT reached the worker: SIGTERM started Celery's cold (soft)
    # shutdown, which sleeps WORKER_SOFT_SHUTDOWN_TIMEOUT_S only when a task was running
    # (the supervisor rewords Celery's "Cold shutdown" line, workers/supervisor/wording.py)
    assert "[worker] worker: soft shutdown (MainProcess)" in log
    assert "Warm shutdown" not in log
    # within the supervisor's budget: at worst the worker's 45 s soft wait plus teardown
    assert took < 60, f"drain took {took:.1f}s"
    # nothing was left in flight: every reserved message was acked or restored
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.hlen("unacked") == 0
    finally:
        client.close()
    # and no child outlived the supervisor
    pids = [int(p) for p in re.findall(r"^\[up\] started \w+ \(pid (\d+)\)$", log, re.M)]
    assert len(pids) == 6
    assert log.splitlines()[-1] == "[up] all stopped"
    assert not [pid for pid in pids if alive(pid)]
