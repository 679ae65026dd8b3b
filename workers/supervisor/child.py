"""One supervised child process: start it, prefix its output, signal it, kill it.

Each child runs in its own session (process group), so a Ctrl-C in the terminal reaches only
the supervisor, which then stops the children in its own order; a forced kill goes to the
whole group so that a Celery worker's pool processes die with it. On Linux each child also
asks the kernel for SIGTERM if the supervisor dies without stopping it (``PR_SET_PDEATHSIG``),
so a SIGKILLed supervisor leaves no orphans — they shut down warm on their own.

Output: stdout and stderr are merged into one pipe and copied line by line, each line
prefixed with ``[name] ``, to one shared binary stream under a lock, flushed per line.
Blank lines are dropped and a child's ``rewords`` applied (``wording``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from workers.supervisor.wording import Reword, reword


@dataclass(frozen=True)
class Gate:
    """What a child waits for before its first start (a restart does not wait again).

    ``ready`` is polled until it returns True, for up to ``timeout_s``; the wait also ends
    when the child named ``after`` (the one it waits on) exits. Either way the child then
    starts: a gate orders start-up, it does not decide whether a child runs.
    """

    what: str  # for the operator, e.g. "the worker answers a ping"
    ready: Callable[[], bool]
    after: str | None = None
    timeout_s: float = 60.0


@dataclass(frozen=True)
class ChildSpec:
    """How to run one process and how long its warm shutdown may take."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    # SIGTERM → warm shutdown for every hyperwatch process; after this long it is killed.
    stop_timeout_s: float = 10.0
    # A port the child serves; later children start only once it accepts connections.
    listens_on: int | None = None
    # Started only once this holds (e.g. Flower, once the worker answers).
    starts_after: Gate | None = None
    # How some of its output lines are reworded or dropped (see wording.py).
    rewords: tuple[Reword, ...] = ()


class PrefixedOutput:
    """Lines from many children onto one stream, never interleaved mid-line."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def line(self, name: str, text: bytes) -> None:
        if not text.endswith(b"\n"):
            text += b"\n"
        with self._lock:
            self._stream.write(b"[" + name.encode() + b"] " + text)
            self._stream.flush()


_PR_SET_PDEATHSIG = 1
_libc: ctypes.CDLL | None = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - a libc without dlopen(NULL)
        _libc = None


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A preexec_fn asking for SIGTERM when the supervisor goes away (Linux only)."""
    libc = _libc
    if libc is None:
        return None

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        # The supervisor may have died between fork and prctl: then nobody will signal us.
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


class Child:
    """A running (or finished) instance of a :class:`ChildSpec`."""

    def __init__(self, spec: ChildSpec, output: PrefixedOutput) -> None:
        self.spec = spec
        self._output = output
        self._process: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None
        self.started_at = 0.0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self._process = subprocess.Popen(  # noqa: S603 - argv is built by the supervisor's plan
            self.spec.argv,
            env=dict(self.spec.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )
        self.started_at = time.monotonic()
        self._pump = threading.Thread(
            target=self._copy_output, name=f"output-{self.name}", daemon=True
        )
        self._pump.start()

    def _copy_output(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        with process.stdout:
            for raw in iter(process.stdout.readline, b""):
                text = reword(raw.rstrip(b"\r\n"), self.spec.rewords)
                if text is not None:
                    self._output.line(self.name, text)

    def poll(self) -> int | None:
        """The exit code once the process has exited (negative: killed by that signal)."""
        if self._process is None:
            return None
        returncode = self._process.poll()
        if returncode is not None and self._pump is not None:
            # Let the last lines (often the reason it exited) out before anyone reports it.
            self._pump.join(timeout=1.0)
        return returncode

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def send(self, sig: signal.Signals) -> None:
        """Signal the child's main process only: it stops its own helpers in its own order."""
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, sig)

    def kill(self) -> None:
        """SIGKILL the child's whole process group (pool processes included) and reap it."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()
        if self._pump is not None:
            self._pump.join(timeout=1.0)

    def wait(self, timeout: float) -> int | None:
        """Block up to ``timeout`` seconds for the exit code (used by one-shot steps)."""
        if self._process is None:
            return None
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.poll()
