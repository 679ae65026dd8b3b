"""``hyperwatch ingest`` as a real process: signals, exit codes, refusing bad coins."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.ingester.support import read_queues
from tests.support.services import RedisServer, free_port
from workers.simulator import SimulatorConfig, SimulatorHandle, SimulatorServer
from workers.simulator.groundtruth import read_ground_truth

pytestmark = pytest.mark.e2e


@pytest.fixture()
def sim(tmp_path: Path) -> Iterator[SimulatorHandle]:
    handle = SimulatorServer(
        SimulatorConfig(port=0, rate=500, seed=21, record_path=tmp_path / "truth.jsonl")
    ).start_in_thread()
    yield handle
    handle.stop()


def start_ingester(tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    full = {**os.environ, "INGESTER_HEALTH_PORT": "0", "LOG_LEVEL": "INFO", **env}
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "ingest"],
        env=full, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for(text: str, proc: subprocess.Popen[str], timeout: float = 10.0) -> list[str]:
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} not logged within {timeout} s: {''.join(lines)[-2000:]}")


def test_sigterm_flushes_every_buffered_event_and_exits_zero(
    tmp_path: Path, sim: SimulatorHandle, private_redis: RedisServer
) -> None:
    # Given an ingester whose batches only leave on size 100k or after 60 s: all held in memory
    proc = start_ingester(
        tmp_path, HL_WS_URL=sim.ws_url, HL_INFO_URL=sim.info_url, REDIS_URL=private_redis.url,
        COINS="BTC,ETH,SOL", INGEST_BATCH_SIZE="100000", INGEST_BATCH_MS="60000",
    )  # fmt: skip
    wait_for("subscribed:", proc)
    time.sleep(2.0)
    assert read_queues(private_redis.url).trades() == []  # nothing flushed yet
    # When it gets SIGTERM mid-stream
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=15)
    # Then it exits 0 promptly, having flushed everything it had received
    assert proc.returncode == 0, err[-2000:]
    assert time.monotonic() - started < 10
    published = read_queues(private_redis.url)
    keys = published.trade_keys()
    assert len(keys) > 500 and max(keys.values()) == 1
    sim.stop()
    assert set(keys) <= read_ground_truth(tmp_path / "truth.jsonl").trade_keys()
    # And the session's end was written, and its event count is exactly what was published
    (session,) = published.sessions().values()
    assert session["end_reason"] == "shutdown" and session["ended_at"] is not None
    contexts = sum(len(b["events"]) for b in published.args("hyperwatch.persist.asset_contexts"))
    mids = sum(
        len(b["events"])
        for b in published.args("hyperwatch.alerts.evaluate")
        if b["kind"] == "mids"
    )
    assert session["events"] == len(keys) + contexts + mids
    assert "ingester stopped cleanly" in err


def test_second_signal_exits_at_once_with_a_non_zero_code(
    tmp_path: Path, sim: SimulatorHandle
) -> None:
    # Given an ingester whose broker is unreachable, so a graceful stop waits to drain
    dead = f"redis://127.0.0.1:{free_port()}/0"
    proc = start_ingester(
        tmp_path, HL_WS_URL=sim.ws_url, HL_INFO_URL=sim.info_url, REDIS_URL=dead, COINS="BTC",
    )  # fmt: skip
    wait_for("subscribed:", proc)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    wait_for("graceful shutdown", proc)
    # When a second SIGTERM arrives during the drain
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=10)
    # Then it exits at once with 128 + SIGTERM
    assert proc.returncode == 128 + signal.SIGTERM
    assert time.monotonic() - started < 2
    assert "second SIGTERM" in err


@pytest.mark.parametrize(
    ("coins", "message"),
    [
        ("BTC,NOPE", "unknown coin 'NOPE' in COINS: not in Hyperliquid's perp universe"),
        ("eth", "unknown coin 'eth' in COINS: names are case-sensitive, did you mean 'ETH'?"),
        ("BTC,MATIC", "coin 'MATIC' is delisted on Hyperliquid; remove it from COINS"),
    ],
)
def test_unknown_coin_refuses_to_start_with_one_line_and_exit_2(
    tmp_path: Path, sim: SimulatorHandle, coins: str, message: str
) -> None:
    proc = start_ingester(
        tmp_path, HL_WS_URL=sim.ws_url, HL_INFO_URL=sim.info_url,
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", COINS=coins,
    )  # fmt: skip
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1] == f"hyperwatch: {message}"
    assert sim.stats()["connections_total"] == 0  # never subscribed to anything


def test_bad_setting_refuses_to_start_with_exit_2(tmp_path: Path) -> None:
    proc = start_ingester(tmp_path, INGEST_BATCH_SIZE="0")
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2 and "INGEST_BATCH_SIZE" in err.strip().splitlines()[-1]
