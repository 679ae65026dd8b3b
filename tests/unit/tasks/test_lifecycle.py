"""The shutdown handler registry and the graceful-stop signal contract."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from functools import partial

import pytest

from workers.lifecycle import EXIT_FORCED, ShutdownRegistry


def test_handlers_run_once_newest_first() -> None:
    # Given three handlers
    calls: list[str] = []
    registry = ShutdownRegistry()
    for name in ("database", "redis", "sentry"):
        registry.register(name, partial(calls.append, name))

    # When the registry runs twice
    registry.run()
    registry.run()

    # Then each ran once, in reverse order of registration
    assert calls == ["sentry", "redis", "database"]


def test_a_failing_handler_is_logged_and_the_rest_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a handler that raises between two that work
    calls: list[str] = []
    registry = ShutdownRegistry()
    registry.register("first", lambda: calls.append("first"))
    registry.register("broken", lambda: 1 / 0)
    registry.register("last", lambda: calls.append("last"))

    # When it runs; Then nothing raises, the others ran and the failure is logged by name
    with caplog.at_level(logging.ERROR):
        failed = registry.run()
    assert failed == ["broken"]
    assert calls == ["last", "first"]
    assert "shutdown handler 'broken' failed" in caplog.text


def test_registering_a_name_again_replaces_the_handler_in_place() -> None:
    calls: list[str] = []
    registry = ShutdownRegistry()
    registry.register("a", lambda: calls.append("a1"))
    registry.register("b", lambda: calls.append("b"))
    registry.register("a", lambda: calls.append("a2"))
    registry.unregister("missing")
    registry.run()
    assert calls == ["b", "a2"]


def test_a_forked_child_runs_the_handlers_for_itself() -> None:
    # Given a registry that already ran in this process
    registry = ShutdownRegistry()
    read_end, write_end = os.pipe()
    registry.register("report", lambda: os.write(write_end, str(os.getpid()).encode()))
    registry.run()
    assert int(os.read(read_end, 32)) == os.getpid()

    # When a forked child runs it; Then the child's handlers run too (its own resources)
    child = os.fork()
    if child == 0:  # pragma: no cover - child
        registry.run()
        os._exit(0)
    os.waitpid(child, 0)
    assert int(os.read(read_end, 32)) == child
    os.close(read_end)
    os.close(write_end)


SCRIPT = textwrap.dedent(
    """
    import logging, sys, threading
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    from workers import lifecycle
    lifecycle.register("flush", lambda: print("handler ran", flush=True))
    stop = lifecycle.GracefulStop().install()
    print("ready", flush=True)
    stop.requested.wait()
    print("stopping on", stop.signal_name, flush=True)
    if sys.argv[1] == "slow":
        threading.Event().wait(30)   # a stop that takes long; a second signal cuts it short
    lifecycle.run_shutdown_handlers()
    sys.exit(lifecycle.EXIT_OK)
    """
)


def start(mode: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, mode], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_first_signal_stops_gracefully_and_exits_0(sig: signal.Signals) -> None:
    # Given a process using GracefulStop; When it gets SIGTERM or SIGINT
    process = start("fast")
    process.send_signal(sig)
    out, _ = process.communicate(timeout=10)

    # Then it stops through its normal path, runs the handlers and exits 0
    assert process.returncode == 0
    assert f"stopping on {sig.name}" in out and "handler ran" in out


def test_second_signal_runs_the_handlers_and_exits_forced() -> None:
    # Given a process whose graceful stop is still going on
    process = start("slow")
    process.send_signal(signal.SIGTERM)
    assert process.stdout is not None
    while process.stdout.readline().strip() != "stopping on SIGTERM":
        pass

    # When a second SIGTERM arrives; Then handlers run and it exits EXIT_FORCED at once
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=10)
    assert process.returncode == EXIT_FORCED
    assert "handler ran" in out
