"""`hyperwatch simulate` as a process: the listening line, signals, exit codes."""

from __future__ import annotations

import subprocess
import sys

from tests.integration.simulator.conftest import Client
from workers.simulator import SimulatorProcess, read_ground_truth


def test_listens_on_a_free_port_and_exits_cleanly_on_sigterm(tmp_path) -> None:
    # Given the command started on port 0 with a ground-truth file
    path = tmp_path / "gt.jsonl"
    proc = SimulatorProcess.start(
        ["--rate", "200", "--record", str(path), "--log-level", "WARNING"]
    )
    try:
        # When a client uses it
        client = Client(proc.ws_url)
        client.send({"method": "ping"})
        assert client.recv() == {"channel": "pong"}
        assert proc.info_url.startswith("http://127.0.0.1:") and proc.info_url.endswith("/info")
    finally:
        # Then SIGTERM exits 0 and the ground truth is complete (stop line written)
        code = proc.stop()
    assert code == 0
    truth = read_ground_truth(path)
    assert truth.start is not None and truth.stop is not None
    assert truth.stop["trades"] == len(truth.trades)


def test_duration_ends_the_run() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "workers.cli",
            "simulate",
            "--port",
            "0",
            "--duration",
            "0.3",
            "--log-level",
            "WARNING",
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("hyperwatch simulate listening ws://127.0.0.1:")
    assert len(result.stdout.strip().splitlines()) == 1


def test_bad_option_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "simulate", "--port", "0", "--rate", "0"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "rate" in result.stderr and result.stdout == ""


def test_negative_wallets_is_a_usage_error_naming_the_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "simulate", "--port", "0", "--wallets", "-1"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "wallets: a count ≥ 0" in result.stderr and result.stdout == ""
