"""Process lifecycle: the shutdown handler registry, exit codes, signal-responsive waits.

Contract for every long-running hyperwatch process:

- ``SIGTERM`` (what systemd and Kubernetes send) and ``SIGINT`` (Ctrl-C) start a graceful
  stop: the process stops taking new work, finishes or hands back what it holds, runs the
  registered shutdown handlers once and exits :data:`EXIT_OK`.
- A second ``SIGTERM``/``SIGINT`` during that stop means "now". The ingester exits at once
  with 128 + the signal number, as a shell reports a process killed by it; its unsent
  batches were counted as lost (``workers/ingester/signals.py``). ``hyperwatch up`` SIGKILLs
  its children's process groups and exits :data:`EXIT_FORCED`
  (``workers/supervisor/supervisor.py``). Nothing acknowledged is lost either way: Celery
  messages ack late.
- ``SIGKILL`` runs nothing; idempotent storage and late acks make that safe.

Celery workers keep Celery's own signal handling (see ``celeryconfig.py``): started with
``REMAP_SIGTERM=SIGQUIT``, SIGTERM is a *soft* shutdown — running tasks get
``WORKER_SOFT_SHUTDOWN_TIMEOUT_S`` (the worker sleeps for all of it), then whatever still runs
is cancelled and its message goes back to the queue, as do reserved messages. Exit code 0
when every running task finished in time, 1 when some had to be cancelled (their messages
were requeued, nothing is lost). Without the remap SIGTERM is a warm shutdown that waits for
running tasks without limit (exit 0). SIGINT: first warm, the next one cold, the third hard
(exit 1). Either way the handlers below run in every pool child as it exits
(``worker_process_shutdown``) and in the main process last (``worker_shutdown``).

The registry: modules register small, idempotent callables by name (dispose database pools,
close Redis clients, flush Sentry). :func:`run_shutdown_handlers` runs each once, newest
first (so something registered later, which may depend on earlier resources, closes before
them); a failing handler is logged and the rest still run.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

log = logging.getLogger(__name__)

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1  # an unexpected error; the supervisor should restart the process
EXIT_USAGE: Final = 2  # bad settings or arguments; restarting will not help
EXIT_FORCED: Final = 3  # a second signal cut the graceful stop short

Handler = Callable[[], object]


@dataclass
class ShutdownRegistry:
    """Named shutdown handlers, run once in reverse order of registration."""

    _handlers: dict[str, Handler] = field(default_factory=dict)
    _ran_in_pid: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, name: str, handler: Handler) -> None:
        """Add (or replace, keeping its position) the handler called ``name``."""
        with self._lock:
            self._handlers[name] = handler

    def unregister(self, name: str) -> None:
        with self._lock:
            self._handlers.pop(name, None)

    @property
    def names(self) -> list[str]:
        return list(self._handlers)

    def run(self) -> list[str]:
        """Run every handler once per process; returns the names of those that failed.

        A forked child inherits the registry but not the "already ran" mark, so a prefork
        pool child runs the handlers for its own copies of the resources.
        """
        with self._lock:
            if self._ran_in_pid == os.getpid():
                return []
            self._ran_in_pid = os.getpid()
            handlers = list(reversed(self._handlers.items()))
        failed = []
        for name, handler in handlers:
            try:
                handler()
            except Exception:
                log.exception("shutdown handler %r failed", name)
                failed.append(name)
        log.info(
            "shutdown handlers ran in pid %d: %s",
            os.getpid(),
            ", ".join(name for name, _ in handlers) or "none",
        )
        return failed

    def reset(self) -> None:
        """Forget every handler and the "ran" mark (tests)."""
        with self._lock:
            self._handlers.clear()
            self._ran_in_pid = None


registry = ShutdownRegistry()


def register(name: str, handler: Handler) -> None:
    """Register a handler on the process-wide registry."""
    registry.register(name, handler)


def unregister(name: str) -> None:
    registry.unregister(name)


def run_shutdown_handlers() -> list[str]:
    """Run the process-wide registry (once); returns the names of failed handlers."""
    return registry.run()


_atexit_installed = False


def run_at_exit() -> None:
    """Also run the handlers when the interpreter exits normally (idempotent).

    For exits that no framework signal announces — Celery's cold shutdown sends no
    ``worker_shutdown`` — while ``os._exit`` (pool children) still relies on the caller.
    """
    global _atexit_installed
    if not _atexit_installed:
        atexit.register(run_shutdown_handlers)
        _atexit_installed = True


# Python runs signal handlers on the main thread, between bytecodes. A main thread blocked
# in a lock wait (Event.wait, Thread.join with a timeout) was seen to run a handler only
# when its 30 s wait ended (a CI run of the old GracefulStop test, about one run in ten
# under load: the signal delivered, its handler not run). A main thread that must answer
# a second SIGTERM at once therefore never blocks longer than this.
SIGNAL_SLICE_S: Final = 0.2


def wait_in_slices(
    wait: Callable[[float], object], done: Callable[[], bool], timeout_s: float
) -> bool:
    """Call ``wait(slice)`` until ``done()`` or ``timeout_s`` has passed; returns ``done()``.

    For the main thread of a process with signal handlers (the ingester's shutdown): each
    wait is at most :data:`SIGNAL_SLICE_S`, so a handler waits that long at worst."""
    deadline = time.monotonic() + timeout_s
    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            return done()
        wait(min(SIGNAL_SLICE_S, left))
    return True


def join_in_slices(thread: threading.Thread, timeout_s: float) -> bool:
    """``thread.join(timeout_s)`` that lets signal handlers run; True if it ended."""
    return wait_in_slices(thread.join, lambda: not thread.is_alive(), timeout_s)
