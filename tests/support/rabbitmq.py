"""A private RabbitMQ node for tests, on ports from this suite's spare range (27000-27999):
never the shared node on 5672.

Everything the node writes is under one temp dir (``RABBITMQ_MNESIA_BASE``, ``LOG_BASE``,
its own config file, its Erlang cookie in ``HOME``), and it registers with its *own* epmd
(``ERL_EPMD_PORT``), so it neither sees nor disturbs another node on the machine.
:meth:`RabbitNode.restart` stops it cleanly and starts it on the same data (quorum queues
and their messages survive); :meth:`backlog` counts ready *and* unacknowledged messages
(``rabbitmqctl list_queues``), which a passive declare does not.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.sentinel import spare_port
from tests.support.services import unavailable, wait_for_port

SBIN = Path("/usr/lib/rabbitmq/bin")


def _tool(name: str) -> str | None:
    candidate = SBIN / name
    return str(candidate) if candidate.exists() else shutil.which(name)


class RabbitNode:
    def __init__(self) -> None:
        server, ctl = _tool("rabbitmq-server"), _tool("rabbitmqctl")
        if server is None or ctl is None:
            unavailable("rabbitmq-server")
        self.server, self.ctl = server or "rabbitmq-server", ctl or "rabbitmqctl"
        self.port, self.dist_port, self.epmd_port = spare_port(), spare_port(), spare_port()
        self.node = f"hw-test-{self.port}@localhost"
        self.dir = Path(tempfile.mkdtemp(prefix="hw-rabbit-"))
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "loopback_users = none\n"
            # list_queues reads counts from statistics: emitted every 250 ms, not 5 s.
            "collect_statistics_interval = 250\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.dir),  # its own .erlang.cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.dir / "pid"),
        }

    def start(self, timeout: float = 60.0) -> RabbitNode:
        log = (self.dir / "server.log").open("ab")
        self.process = subprocess.Popen(
            [self.server], env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        wait_for_port(self.port, timeout)
        self._ctl("await_startup", timeout=timeout)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(subprocess.SubprocessError):
                self._ctl("stop", timeout=60)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def backlog(self, queues: tuple[str, ...]) -> int:
        """Messages ready or delivered-but-unacknowledged on ``queues``: the statistics'
        count (ready + unacked, up to 250 ms old) or the live ready count of a passive
        declare, whichever is larger."""
        from kombu import Connection

        out = self._ctl("list_queues", "--quiet", "--no-table-headers", "name", "messages")
        counted = {
            parts[0]: int(parts[-1])
            for parts in (line.split() for line in out.splitlines())
            if len(parts) >= 2 and parts[-1].isdigit()
        }
        with Connection(self.url, connect_timeout=5) as conn:
            channel = conn.channel()
            live = {q: int(channel.queue_declare(q, passive=True)[1]) for q in queues}
        return sum(max(counted.get(q, 0), live[q]) for q in queues)

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                [shutil.which("epmd") or "epmd", "-port", str(self.epmd_port), "-kill"],
                env=self.env(), capture_output=True, timeout=10,
            )  # fmt: skip
        shutil.rmtree(self.dir, ignore_errors=True)

    def _ctl(self, *args: str, timeout: float = 30.0) -> str:
        done = subprocess.run(
            [self.ctl, "-n", self.node, *args], env=self.env(), capture_output=True,
            timeout=timeout, check=True,
        )  # fmt: skip
        return done.stdout.decode()
