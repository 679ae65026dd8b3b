"""Acceptance: what a newcomer sees running `make run` (`hyperwatch up --feed sim`).

One summary block once everything runs (where Flower, metrics, health, the database and
Redis are; "Ctrl-C to stop"), then quiet while nothing goes wrong: no per-task lines, no
Flower inspect warnings — at most about one line a second (the issue's acceptance is under
60 lines in 60 s; this test watches a shorter window). Ctrl-C drains everything and the
last line is "all stopped", with nothing alarming ("Cold shutdown", "terminate") on the
way. The database is the embedded default: SQLite in DATA_DIR, no DATABASE_URL.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.heavy]  # 27 s: runs in make test-heavy

QUIET_WINDOW_S = 15.0
STARTED_WITHIN_S = 45.0
ALARMING = re.compile(r"cold shutdown|terminat", re.IGNORECASE)


@pytest.fixture()
def up_env(redis_url: str, tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        # The developer's own deployment settings must not leak into the run under test.
        if not k.startswith(("HL_", "DATABASE_", "BROKER_", "COINS", "TRACKED_", "FLOWER_", "LOG_"))
    }
    env.update(
        REDIS_URL=redis_url,
        DATA_DIR=str(tmp_path / "var"),
        FLOWER_PORT=str(free_port()),
        INGESTER_HEALTH_PORT=str(free_port()),
        WORKER_METRICS_PORT=str(free_port()),
        API_PORT=str(free_port()),
    )
    return env


@pytest.fixture()
def up(tmp_path: Path, up_env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    output = tmp_path / "up.log"
    with output.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "up", "--feed", "sim"],
            cwd=tmp_path,
            env=up_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process, output
        finally:
            if process.poll() is None:  # the test failed before stopping it
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    process.send_signal(signal.SIGINT)  # second signal: kills every child
                    process.wait(timeout=10)


def test_given_make_run_when_it_runs_and_stops_then_one_summary_quiet_running_and_all_stopped(
    up: tuple[subprocess.Popen[bytes], Path], up_env: dict[str, str], tmp_path: Path
) -> None:
    process, output = up

    # Given `hyperwatch up --feed sim` started (the fixture)
    # When start-up completes
    deadline = time.monotonic() + STARTED_WITHIN_S
    while "[up] Ctrl-C to stop" not in output.read_text():
        assert process.poll() is None, output.read_text()[-4000:]
        assert time.monotonic() < deadline, output.read_text()[-4000:]
        time.sleep(0.5)
    # Then one block says where everything is, and never a secret
    lines = output.read_text().splitlines()
    summary_at = next(i for i, line in enumerate(lines) if line.startswith("[up] hyperwatch is up"))
    block = "\n".join(lines[summary_at:])
    assert f"http://127.0.0.1:{up_env['FLOWER_PORT']}" in block
    assert "FLOWER_BASIC_AUTH" in block
    assert f"http://127.0.0.1:{up_env['WORKER_METRICS_PORT']}/metrics" in block
    assert f"http://127.0.0.1:{up_env['INGESTER_HEALTH_PORT']}/healthz" in block
    assert f"database  sqlite:///{tmp_path}/var/hyperwatch.db" in block
    assert f"Redis     {up_env['REDIS_URL']}" in block
    assert sum(line.startswith("[up] hyperwatch is up") for line in lines) == 1
    # and the banners are off: the block is not buried under Celery's
    assert summary_at < 40, "\n".join(lines[:summary_at])

    # When it runs for a while with nothing going wrong
    time.sleep(QUIET_WINDOW_S)
    now = output.read_text().splitlines()
    during = now[now.index(next(x for x in now if x.startswith("[up] Ctrl-C to stop"))) + 1 :]

    # Then it stays quiet: no per-task lines, no Flower inspect warnings, ~ a line a second at most
    assert len(during) < QUIET_WINDOW_S, "\n".join(during)
    assert not [line for line in during if re.search(r"received$|succeeded in|Inspect", line)]

    # When the newcomer presses Ctrl-C
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=120)

    # Then everything drained, the last line is "all stopped", and nothing alarming was said
    text = output.read_text()
    assert code == 0, text[-4000:]
    assert text.splitlines()[-1] == "[up] all stopped"
    assert text.count("all stopped") == 1
    assert not [line for line in text.splitlines() if ALARMING.search(line)], text[-4000:]
    # (REMAP_SIGTERM still reached the worker: Celery's soft shutdown, reworded)
    assert "[worker] worker: soft shutdown (MainProcess)" in text
    # and the embedded database is where the summary said
    assert (tmp_path / "var" / "hyperwatch.db").is_file()
