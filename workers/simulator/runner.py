"""Ways to run the simulator: embedded in a thread, as a subprocess, or as the CLI's foreground.

Embedding (integration tests of the ingester)::

    from workers.simulator import SimulatorConfig, SimulatorServer

    with SimulatorServer(SimulatorConfig(port=0, rate=200, record_path=tmp / "gt.jsonl")).start_in_thread() as sim:
        sim.ws_url, sim.info_url, sim.base_url   # ws://127.0.0.1:PORT/ws, http://…/info, http://…
        sim.fault("stall", seconds=2)            # same as POST /_sim/fault
        sim.stats()                              # same as GET /_sim/stats
    # leaving the block (or sim.stop()) flushes clients and the ground-truth file

As a process (e2e tests, supervisors)::

    proc = SimulatorProcess.start(["--rate", "1000", "--record", "gt.jsonl"])
    proc.ws_url, proc.info_url
    proc.stop()   # SIGTERM → clean exit 0, ground truth flushed

The process prints exactly one line on stdout when it listens::

    hyperwatch simulate listening ws://127.0.0.1:PORT/ws info http://127.0.0.1:PORT/info

Signals in the foreground run: the first SIGTERM/SIGINT stops generating, delivers what is
queued, closes clients (1001), writes the ground truth's stop line and exits 0; a second
one flushes the ground truth and exits 1 at once.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from runtime.clock import Clock
from workers.simulator.config import SimulatorConfig
from workers.simulator.exchange import Exchange
from workers.simulator.faults import FaultRequest
from workers.simulator.server import AppServer

LISTENING = re.compile(r"^hyperwatch simulate listening (ws://\S+) info (http://\S+)$")


def listening_line(server: AppServer) -> str:
    return f"hyperwatch simulate listening {server.ws_url} info {server.info_url}"


class SimulatorServer:
    """A simulator to run: :meth:`start_in_thread` to embed, :meth:`run` in the foreground."""

    def __init__(self, config: SimulatorConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.config.validate()
        self.clock = clock

    async def _serve(self, stop: asyncio.Event, ready: Callable[[AppServer], None]) -> None:
        server = AppServer(self.config, self.clock)
        await server.start()
        try:
            if self.config.duration_s:
                asyncio.get_running_loop().call_later(self.config.duration_s, stop.set)
            ready(server)
            await server.serve(stop)
        finally:
            await server.close()

    def start_in_thread(self, timeout: float = 10.0) -> SimulatorHandle:
        """Start in a daemon thread with its own event loop; returns once it listens."""
        ready = threading.Event()
        box: dict[str, Any] = {}

        async def main() -> None:
            stop = asyncio.Event()
            box["loop"], box["stop"] = asyncio.get_running_loop(), stop

            def on_ready(server: AppServer) -> None:
                box["server"] = server
                ready.set()

            await self._serve(stop, on_ready)

        def target() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # surfaced to the starting thread below
                box["error"] = exc
            finally:
                ready.set()

        thread = threading.Thread(target=target, name="hyperwatch-simulator", daemon=True)
        thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"simulator did not start within {timeout} s")
        if "server" not in box:
            raise RuntimeError("simulator failed to start") from box.get("error")
        return SimulatorHandle(box["server"], box["loop"], box["stop"], thread)

    def run(self, on_listening: Callable[[str], None]) -> int:
        """Serve in the foreground until SIGTERM/SIGINT or ``duration``; the exit code."""
        return asyncio.run(self._run_foreground(on_listening))

    async def _run_foreground(self, on_listening: Callable[[str], None]) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        holder: dict[str, AppServer] = {}

        def on_signal() -> None:
            if not stop.is_set():
                stop.set()
                return
            server = holder.get("server")
            if server is not None:
                server.exchange.close_recorder(archive_timeout=1.0)
            os._exit(1)

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal)

        def ready(server: AppServer) -> None:
            holder["server"] = server
            on_listening(listening_line(server))

        await self._serve(stop, ready)
        return 0


class SimulatorHandle:
    """A simulator running in a background thread. ``stop()`` is idempotent."""

    def __init__(
        self,
        server: AppServer,
        loop: asyncio.AbstractEventLoop,
        stop: asyncio.Event,
        thread: threading.Thread,
    ) -> None:
        self._server = server
        self._loop = loop
        self._stop = stop
        self._thread = thread
        self.port = server.port
        self.base_url = server.base_url
        self.ws_url = server.ws_url
        self.info_url = server.info_url

    @property
    def exchange(self) -> Exchange:
        """The live state, for assertions; read it only via :meth:`call` while running."""
        return self._server.exchange

    def call(self, fn: Callable[[Exchange], Any], timeout: float = 5.0) -> Any:
        """Run ``fn(exchange)`` on the simulator's loop and return its result."""

        async def invoke() -> Any:
            return fn(self._server.exchange)

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout)

    def stats(self) -> dict[str, Any]:
        return dict(self.call(lambda ex: ex.stats.snapshot()))

    def fault(self, kind: str, **params: Any) -> dict[str, Any]:
        request = FaultRequest.parse({"kind": kind, **params})
        return dict(self.call(lambda ex: ex.faults.apply(request)))

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SimulatorProcess:
    """``hyperwatch simulate`` as a child process, started on a free port."""

    def __init__(self, proc: subprocess.Popen[str], ws_url: str, info_url: str) -> None:
        self.proc = proc
        self.ws_url = ws_url
        self.info_url = info_url
        self.base_url = info_url.removesuffix("/info")

    @classmethod
    def start(
        cls, args: list[str], timeout: float = 20.0, python: str = sys.executable
    ) -> SimulatorProcess:
        """Spawn with ``--port 0`` (unless given) and wait for the listening line."""
        argv = [python, "-m", "workers.cli", "simulate", *args]
        if "--port" not in args:
            argv += ["--port", "0"]
        # argv is this interpreter and our own module plus the caller's options: no shell.
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)  # noqa: S603
        stdout = proc.stdout
        assert stdout is not None
        line_box: list[str] = []
        reader = threading.Thread(target=lambda: line_box.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        match = LISTENING.match(line_box[0].strip()) if line_box else None
        if match is None:
            proc.kill()
            proc.wait()
            raise RuntimeError(
                f"simulator did not report listening: {line_box[0] if line_box else '(nothing)'!r}"
            )
        return cls(proc, match.group(1), match.group(2))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, wait, and return the exit code (kills after ``timeout``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)
