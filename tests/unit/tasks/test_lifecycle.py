"""The shutdown handler registry and the graceful-stop signal contract."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from functools import partial

import pytest

from runtime.lifecycle import SIGNAL_SLICE_S, ShutdownRegistry, wait_in_slices


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


def test_wait_in_slices_never_blocks_longer_than_a_slice() -> None:
    # Given a wait that records how long it was asked to block
    asked: list[float] = []
    clock = {"calls": 0}

    def done() -> bool:
        clock["calls"] += 1
        return clock["calls"] > 4

    # When waiting up to 30 s for something that happens on the fifth look
    assert wait_in_slices(asked.append, done, 30.0) is True
    # Then each wait was one slice
    assert asked == [SIGNAL_SLICE_S] * 4


def test_wait_in_slices_gives_up_at_the_timeout() -> None:
    event = threading.Event()
    started = time.monotonic()
    assert wait_in_slices(event.wait, event.is_set, 0.5) is False
    assert 0.5 <= time.monotonic() - started < 1.5


# A main thread waiting 30 s for a thread that never ends, as the ingester's shutdown waits
# for its threads; its SIGTERM handler exits at once.
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading
    from runtime.lifecycle import join_in_slices
    signal.signal(signal.SIGTERM, lambda *_: os._exit(3))
    stuck = threading.Thread(target=threading.Event().wait, daemon=True)
    stuck.start()
    print("waiting", flush=True)
    join_in_slices(stuck, 30.0)
    sys.exit(0)
    """
)


def test_a_signal_reaches_a_main_thread_that_is_joining_a_thread() -> None:
    # A main thread in a 30 s Event.wait was seen to miss a signal until the wait ended,
    # about one run in ten under load; sliced waits bound that. Ten tries, each < 5 s.
    for _ in range(10):
        process = subprocess.Popen(
            [sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "waiting"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 3
