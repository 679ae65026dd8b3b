"""`hyperwatch up` as a command: what happens before anything is supervised."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.services import free_port

pytestmark = pytest.mark.e2e


def hyperwatch(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        timeout=timeout,
    )


def test_given_no_redis_when_up_then_one_clear_line_says_so_and_nothing_starts(
    tmp_path: Path,
) -> None:
    # Given nothing listening where REDIS_URL points
    url = f"redis://127.0.0.1:{free_port()}/0"

    # When the one-machine run starts
    t0 = time.monotonic()
    result = hyperwatch("up", "--feed", "sim", env={"REDIS_URL": url})

    # Then it fails fast with one line naming Redis, the URL and how to get one
    assert result.returncode == 1
    assert time.monotonic() - t0 < 15
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"hyperwatch: Redis at {url} is unreachable")
    assert "redis-server" in lines[0]
    assert result.stdout == b""
    # and nothing ran: not even the migration that would create the SQLite file
    assert not (tmp_path / "var").exists()


def test_given_redis_with_a_password_when_unreachable_then_the_password_is_not_printed(
    tmp_path: Path,
) -> None:
    url = f"redis://app:hunter2@127.0.0.1:{free_port()}/0"

    result = hyperwatch("up", env={"REDIS_URL": url})

    assert result.returncode == 1
    assert b"hunter2" not in result.stderr
    assert b"app:***@127.0.0.1" in result.stderr


def test_given_an_unreachable_database_when_up_then_migration_fails_and_nothing_else_starts(
    tmp_path: Path, redis_url: str
) -> None:
    database = f"postgresql+psycopg2://nobody@127.0.0.1:{free_port()}/hyperwatch"

    result = hyperwatch("up", env={"REDIS_URL": redis_url, "DATABASE_URL": database})

    assert result.returncode == 1
    out = result.stdout.decode()
    assert "[migrate] " in out
    assert "[up] database migration exited with code 1; nothing else started" in out
    assert "[up] started" not in out


def test_given_a_bad_setting_when_up_then_exit_2_naming_the_variable(tmp_path: Path) -> None:
    result = hyperwatch("up", env={"WORKER_SOFT_SHUTDOWN_TIMEOUT_S": "soon"})

    assert result.returncode == 2
    assert result.stderr.decode().startswith(
        "hyperwatch: invalid setting WORKER_SOFT_SHUTDOWN_TIMEOUT_S"
    )


def test_given_dry_run_when_up_then_the_plan_is_printed_and_nothing_runs(tmp_path: Path) -> None:
    result = hyperwatch(
        "up", "--feed", "sim", "--no-flower", "--worker-concurrency", "4", "--dry-run", env={}
    )

    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert [s["name"] for s in plan["start"]] == [
        "migrate",
        "simulator",
        "worker",
        "beat",
        "ingester",
        "api",
    ]
    assert plan["stop_order"] == ["api", "ingester", "simulator", "beat", "worker"]
    worker = next(s for s in plan["start"] if s["name"] == "worker")
    assert worker["argv"][worker["argv"].index("-c") + 1] == "4"
    assert not (tmp_path / "var").exists()


def test_given_a_migration_that_hangs_when_interrupted_then_it_stops_without_starting_anything(
    tmp_path: Path, redis_url: str
) -> None:
    # Given a "database" that accepts connections and never answers: the migration hangs
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    database = f"postgresql+psycopg2://nobody@127.0.0.1:{silent.getsockname()[1]}/hyperwatch"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database,
        "DATABASE_CONNECTION_TIMEOUT": "120000",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(3.0)  # past the Redis check, inside the migration
        assert process.poll() is None

        # When the operator presses Ctrl-C
        t0 = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        silent.close()

    # Then the migration is stopped, nothing else starts, and no traceback is printed
    text = out.decode()
    assert time.monotonic() - t0 < 10
    assert process.returncode == 1
    assert "[up] database migration interrupted; nothing else started" in text
    assert "[up] started" not in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        (
            {"FLOWER_ADDRESS": "0.0.0.0"},
            "refusing to serve on 0.0.0.0:5555 without FLOWER_BASIC_AUTH",
        ),
        ({"FLOWER_BASIC_AUTH": "ops:s3cret-pass"}, "the password of user 'ops' is trivially weak"),
    ],
)
def test_given_an_exposed_or_weakly_guarded_flower_when_up_then_nothing_starts(
    tmp_path: Path, env: dict[str, str], fragment: str
) -> None:
    # When the one-machine run starts with Flower beyond loopback and no credentials, or
    # with a trivially weak password (no Redis either: the plan is refused before that)
    result = hyperwatch("up", env={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", **env})

    # Then one line says why, exit 2, without the password, and nothing ran
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hyperwatch: Flower not started: "), lines
    assert fragment in lines[0] and b"s3cret-pass" not in result.stderr
    assert not (tmp_path / "var").exists()


def test_given_the_flower_opt_out_when_up_plans_then_flower_binds_every_interface(
    tmp_path: Path,
) -> None:
    result = hyperwatch(
        "up", "--dry-run",
        env={"FLOWER_ADDRESS": "0.0.0.0", "FLOWER_ALLOW_UNAUTHENTICATED": "true"},
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    [flower] = [s for s in json.loads(result.stdout)["start"] if s["name"] == "flower"]
    assert "--address=0.0.0.0" in flower["argv"]
    assert any(a.startswith("--conf=") and a.endswith("flowerconfig.py") for a in flower["argv"])
