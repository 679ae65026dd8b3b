"""The image entrypoint, run for real with stand-ins for `celery` and `hyperwatch` on PATH.

What matters is that each role *execs*: the process the orchestrator started (and signals)
must be the hyperwatch/Celery process itself, not a shell waiting on it. The stand-ins
report their pid and arguments, then wait for SIGTERM; the test checks the pid is the one
it started and that SIGTERM sent to that pid reaches them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from celeryconfig import QUEUE_NAMES
from tests.unit.deploy.conftest import ENTRYPOINT

STAND_IN = """#!/bin/sh
out="$STAND_IN_OUT"
echo "pid=$$" > "$out.tmp"
echo "name=$(basename "$0")" >> "$out.tmp"
echo "args=$*" >> "$out.tmp"
echo "remap=${REMAP_SIGTERM:-}" >> "$out.tmp"
trap 'echo term >> "$out"; exit 0' TERM
mv "$out.tmp" "$out"
while :; do sleep 0.05; done
"""


@pytest.fixture()
def bin_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    for name in ("celery", "hyperwatch"):
        script = directory / name
        script.write_text(STAND_IN)
        script.chmod(0o755)
    return directory


def run_role(bin_dir: Path, tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    out = tmp_path / "stand-in.out"
    environment = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "STAND_IN_OUT": str(out),
        **(env or {}),
    }
    process = subprocess.Popen(["/bin/sh", str(ENTRYPOINT), *args], env=environment)
    deadline = time.monotonic() + 10
    while not out.exists() and time.monotonic() < deadline:
        assert process.poll() is None, f"entrypoint exited {process.returncode}"
        time.sleep(0.02)
    assert out.exists(), "the stand-in never started"
    report = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    return process, report, out


def stop(process: subprocess.Popen[bytes], out: Path) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert out.read_text().splitlines()[-1] == "term"


@pytest.mark.parametrize(
    ("role", "binary", "args"),
    [
        ("migrate", "hyperwatch", "db upgrade"),
        ("ingester", "hyperwatch", "ingest"),
        (
            "beat",
            "celery",
            "-A tasks beat --loglevel INFO --schedule /var/lib/hyperwatch/celerybeat-schedule",
        ),
        ("flower", "celery", "-A tasks flower"),
        ("simulator", "hyperwatch", "simulate --host 0.0.0.0 --port 8765 --users 2"),
        ("health", "hyperwatch", "health"),
    ],
)
def test_given_a_role_when_started_then_its_process_replaces_the_shell_and_gets_sigterm(
    bin_dir: Path, tmp_path: Path, role: str, binary: str, args: str
) -> None:
    # Given the entrypoint started as the container's process, with a role
    process, report, out = run_role(bin_dir, tmp_path, role)

    # Then the role's program runs under the very pid that was started (exec, no fork)
    assert report["pid"] == str(process.pid)
    assert report["name"] == binary
    assert report["args"] == args
    # and SIGTERM sent to that pid reaches it
    stop(process, out)


def test_given_the_worker_role_when_started_then_sigterm_is_remapped_and_every_queue_consumed(
    bin_dir: Path, tmp_path: Path
) -> None:
    process, report, out = run_role(bin_dir, tmp_path, "worker")

    assert report["pid"] == str(process.pid)
    assert report["remap"] == "SIGQUIT"
    assert report["args"] == (
        f"-A tasks worker -Q {','.join(QUEUE_NAMES)} -c 2 -n celery@%h --loglevel INFO"
    )
    stop(process, out)


def test_given_worker_settings_when_started_then_queues_concurrency_and_extra_args_pass_through(
    bin_dir: Path, tmp_path: Path
) -> None:
    process, report, out = run_role(
        bin_dir,
        tmp_path,
        "worker",
        "--without-mingle",
        env={"WORKER_QUEUES": "notify", "WORKER_CONCURRENCY": "8", "LOG_LEVEL": "DEBUG"},
    )

    assert report["args"] == (
        "-A tasks worker -Q notify -c 8 -n celery@%h --loglevel DEBUG --without-mingle"
    )
    stop(process, out)


def test_given_an_explicit_remap_when_started_then_the_operator_choice_is_kept(
    bin_dir: Path, tmp_path: Path
) -> None:
    process, report, out = run_role(bin_dir, tmp_path, "worker", env={"REMAP_SIGTERM": "SIGTERM"})

    assert report["remap"] == "SIGTERM"
    stop(process, out)


def test_given_any_other_command_when_started_then_it_is_exec_d_as_given(
    bin_dir: Path, tmp_path: Path
) -> None:
    process, report, out = run_role(bin_dir, tmp_path, "hyperwatch", "config", "show")

    assert report["pid"] == str(process.pid)
    assert report["args"] == "config show"
    stop(process, out)


def test_given_no_role_when_started_then_usage_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(["/bin/sh", str(ENTRYPOINT)], capture_output=True, timeout=10)

    assert result.returncode == 2
    assert b"usage: hyperwatch-entrypoint" in result.stderr


def test_given_the_script_when_read_then_every_role_ends_in_exec() -> None:
    body = ENTRYPOINT.read_text().split('case "$role" in', 1)[1].split("esac", 1)[0]
    arms = [arm for arm in body.split(";;") if arm.strip()]

    for arm in arms:
        label = arm.strip().splitlines()[0]
        commands = [
            line.strip()
            for line in arm.strip().splitlines()[1:]
            if line.strip() and not line.strip().startswith("#")
        ]
        starts = [c for c in commands if not c.startswith(("-", '"', "--"))]
        if label == '"")':
            assert starts[-1] == "exit 2"
            continue
        assert starts and starts[0].startswith("exec "), label


def test_given_the_script_when_listed_then_it_is_executable() -> None:
    assert os.access(ENTRYPOINT, os.X_OK)
