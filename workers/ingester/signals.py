"""Process signals: the first SIGTERM/SIGINT asks for a graceful stop, a second exits at once.

Python runs signal handlers on the main thread between bytecodes, so the handler only sets
an event; the service's supervising main thread does the stopping. A second signal means
the operator (or orchestrator) will not wait for the drain: exit with 128 + signal number,
without cleanup, which is what a shell would report for a process killed by it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


class SignalHandler:
    """First SIGTERM/SIGINT asks for a graceful stop; a second one exits at once."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self._stop.is_set():
            os.write(
                2,
                f"hyperwatch ingest: second {signal.Signals(signum).name}, exiting now\n".encode(),
            )
            os._exit(128 + signum)
        # Set before logging: a second signal can run this handler again, nested, while
        # the first is still inside the logging call, and must then see the flag.
        self._stop.set()
        log.info("%s received: graceful shutdown", signal.Signals(signum).name)
