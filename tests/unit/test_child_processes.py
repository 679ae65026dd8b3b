"""Parsing processes are forked only from a process running one thread."""

from __future__ import annotations

import subprocess
import sys
import threading

from runtime.child_processes import parsing_context


def test_given_one_thread_when_a_context_is_chosen_then_fork() -> None:
    # A fresh interpreter: this one may run other tests' leftover threads.
    chosen = subprocess.run(
        [sys.executable, "-c", "from runtime.child_processes import parsing_context as p; "
         "print(p().get_start_method())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert chosen.stdout.strip() == "fork"


def test_given_another_thread_running_when_a_context_is_chosen_then_spawn() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert parsing_context().get_start_method() == "spawn"
    finally:
        stop.set()
        other.join()
