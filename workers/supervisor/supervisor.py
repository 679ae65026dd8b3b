"""Run a set of children, keep them up, and stop them in order.

Contract (what ``hyperwatch up`` promises, see docs/OPERATIONS.md):

* Start: children start in the given order; a child with ``listens_on`` must accept TCP
  connections before the next one starts (the simulator, before the ingester dials it); a
  child with ``starts_after`` waits for its gate first (Flower, until the worker answers).
  Once all have started, the ``summary`` lines are printed, once.
* A child that exits on its own is restarted per :class:`RestartPolicy`; when the policy
  gives up, everything is stopped and the exit code is 1 (2 if the child reported a bad
  setting).
* First SIGTERM, SIGINT or SIGHUP: stop. Children get SIGTERM one at a time in
  ``stop_order`` — the ingester first so it flushes its batches while the broker and the
  worker are still there, then beat so nothing new is scheduled, then the worker drains,
  Flower last. Each has its own ``stop_timeout_s``; one that overruns it is SIGKILLed and the
  exit code becomes 1.
* A second signal while stopping: every remaining child's process group is SIGKILLed at
  once and the exit code is 3 (``runtime.lifecycle.EXIT_FORCED``).
* Exit 0 only when every child exited 0 after being asked to stop. Exit codes are those of
  ``runtime.lifecycle``, shared by every hyperwatch process.
* The last line is ``all stopped`` (with the exit code when it is not 0), once every child
  has exited.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from runtime.clock import SYSTEM_CLOCK, Clock
from runtime.lifecycle import EXIT_FAILURE, EXIT_FORCED, EXIT_OK, EXIT_USAGE
from workers.supervisor.child import Child, ChildSpec, PrefixedOutput
from workers.supervisor.restart import GiveUp, RestartPolicy, RestartTracker

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
LISTEN_TIMEOUT_S = 30.0


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ChildSpec],
        stop_order: Sequence[str],
        output: PrefixedOutput,
        policy: RestartPolicy | None = None,
        poll_s: float = 0.1,
        clock: Clock = SYSTEM_CLOCK,
        summary: Sequence[str] = (),
    ) -> None:
        unknown = set(stop_order) - {s.name for s in specs}
        if unknown:
            raise ValueError(f"stop_order names unknown children: {sorted(unknown)}")
        self._children = [Child(spec, output) for spec in specs]
        # Children missing from stop_order stop last, in reverse start order.
        named = [c for name in stop_order for c in self._children if c.name == name]
        self._stop_order = named + [c for c in reversed(self._children) if c not in named]
        self._output = output
        self._policy = policy or RestartPolicy()
        self._trackers = {c.name: RestartTracker(self._policy) for c in self._children}
        self._restart_at: dict[str, float] = {}
        self._poll_s = poll_s
        self._clock = clock
        self._signals: list[int] = []
        self._exit_code = EXIT_OK
        self._summary = list(summary)

    # --- public -----------------------------------------------------------------------------
    def run(self) -> int:
        """Supervise until stopped; return the process exit code."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            if self._start_all():
                for line in self._summary:
                    self.say(line)
                while not self._signals and self._exit_code == EXIT_OK:
                    self._tick()
                    time.sleep(self._poll_s)
            if self._signals:
                self.say(f"{signal.Signals(self._signals[0]).name} received: stopping")
            code = self._stop_all()
            self._say_all_stopped(code)
            return code
        except Exception as exc:
            # A bug here must not leave the children running unsupervised.
            self.say(f"supervisor failed ({type(exc).__name__}: {exc}); stopping every child")
            self._exit_code = EXIT_FAILURE
            self._say_all_stopped(self._stop_all())
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def say(self, message: str) -> None:
        self._output.line("up", message.encode())

    # --- signals ----------------------------------------------------------------------------
    @property
    def _forced(self) -> bool:
        # The first signal asks for a stop (also when already stopping after a failure);
        # any further one means "now".
        return len(self._signals) >= 2

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only record: the loop acts on it, so no work happens inside a signal handler.
        self._signals.append(signum)

    # --- start ------------------------------------------------------------------------------
    def _start_all(self) -> bool:
        for child in self._children:
            if child.spec.starts_after is not None and not self._signals:
                self._wait_gate(child)
            if self._signals:
                return False
            self._start(child)
            if child.spec.listens_on is not None and not self._wait_listening(child):
                self._exit_code = EXIT_FAILURE
                return False
        return True

    def _start(self, child: Child) -> None:
        child.start()
        self.say(f"started {child.name} (pid {child.pid})")

    def _wait_gate(self, child: Child) -> None:
        """Until the child's gate opens, the child it waits on exits, or the gate times out."""
        gate = child.spec.starts_after
        assert gate is not None
        awaited = next((c for c in self._children if c.name == gate.after), None)
        deadline = self._clock.monotonic() + gate.timeout_s
        while not self._signals:
            if gate.ready():
                return
            if awaited is not None and awaited.poll() is not None:
                self.say(f"{awaited.name} exited before {gate.what}; starting {child.name}")
                return
            if self._clock.monotonic() >= deadline:
                self.say(
                    f"no sign that {gate.what} after {gate.timeout_s:g}s; starting {child.name}"
                )
                return
            time.sleep(self._poll_s)

    def _wait_listening(self, child: Child) -> bool:
        port = child.spec.listens_on
        assert port is not None
        deadline = self._clock.monotonic() + LISTEN_TIMEOUT_S
        while self._clock.monotonic() < deadline and not self._signals:
            returncode = child.poll()
            if returncode is not None:
                self.say(f"{child.name} exited with code {returncode} before listening")
                return False
            if _accepts(port):
                return True
            time.sleep(self._poll_s)
        if not self._signals:
            self.say(f"{child.name} not listening on port {port} after {LISTEN_TIMEOUT_S:g}s")
        return False

    # --- keep up ----------------------------------------------------------------------------
    def _tick(self) -> None:
        now = self._clock.monotonic()
        for child in self._children:
            if child.name in self._restart_at:
                if now >= self._restart_at[child.name]:
                    del self._restart_at[child.name]
                    self._start(child)
                continue
            returncode = child.poll()
            if returncode is None:
                continue
            ran_for = now - child.started_at
            decision = self._trackers[child.name].on_exit(returncode, ran_for)
            if isinstance(decision, GiveUp):
                self.say(f"{child.name} exited with code {returncode}: {decision.reason}; stopping")
                self._exit_code = EXIT_USAGE if returncode == EXIT_USAGE else EXIT_FAILURE
                return
            self.say(
                f"{child.name} exited with code {returncode} after {ran_for:.1f}s; "
                f"restarting in {decision.delay_s:g}s"
            )
            self._restart_at[child.name] = now + decision.delay_s

    # --- stop -------------------------------------------------------------------------------
    def _stop_all(self) -> int:
        clean = self._exit_code == EXIT_OK
        for child in self._stop_order:
            if child.poll() is not None or child.pid is None or child.name in self._restart_at:
                continue
            timeout = child.spec.stop_timeout_s
            self.say(f"stopping {child.name} (SIGTERM, up to {timeout:g}s)")
            child.send(signal.SIGTERM)
            returncode = self._wait_stopped(child, timeout)
            if returncode is None:  # a second signal: no more waiting for anyone
                return self._kill_all()
            if returncode != 0:
                clean = False
            self.say(f"{child.name} stopped (exit code {returncode})")
        if clean:
            return EXIT_OK
        return self._exit_code if self._exit_code != EXIT_OK else EXIT_FAILURE

    def _wait_stopped(self, child: Child, timeout: float) -> int | None:
        """The child's exit code; -9 if it overran ``timeout``; None on a second signal."""
        deadline = self._clock.monotonic() + timeout
        while True:
            returncode = child.poll()
            if returncode is not None:
                return returncode
            if self._forced:
                return None
            if self._clock.monotonic() >= deadline:
                self.say(f"{child.name} still running after {timeout:g}s: killing it")
                child.kill()
                return -signal.SIGKILL
            time.sleep(self._poll_s)

    def _say_all_stopped(self, code: int) -> None:
        self.say("all stopped" if code == EXIT_OK else f"all stopped (exit code {code})")

    def _kill_all(self) -> int:
        sig = self._signals[-1]
        self.say(f"second signal ({signal.Signals(sig).name}): killing every child now")
        for child in self._children:
            if child.poll() is None and child.pid is not None:
                child.kill()
        return EXIT_FORCED


def _accepts(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def describe(specs: Sequence[ChildSpec]) -> list[dict[str, Any]]:
    """The plan as data (for ``hyperwatch up --dry-run``): names, commands, stop budgets."""
    return [
        {
            "name": s.name,
            "argv": list(s.argv),
            "stop_timeout_s": s.stop_timeout_s,
            **({"starts_after": s.starts_after.what} if s.starts_after is not None else {}),
        }
        for s in specs
    ]
