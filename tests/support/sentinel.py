"""A private Redis Sentinel group for tests: a primary, a replica and three sentinels, all
on ports from this suite's spare range (27000-27999, never the shared Redis on 6379).

The group is what a deployment runs (AOF on, ``noeviction``) with short failure detection
(``down-after-milliseconds`` 1000, so a killed primary is replaced within a few seconds).
:attr:`SentinelGroup.url` is kombu's ``sentinel://`` URL and :attr:`master_name` the
group's name; :meth:`kill_primary` SIGKILLs whichever node is primary now (a crash, not a
shutdown) and returns at once — the stack has to live through the failover.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.support.services import unavailable, wait_for_port

SPARE_PORTS = range(27000, 28000)
MASTER_NAME = "hw-test"
_next = SPARE_PORTS.start


def spare_port() -> int:
    """A free port from the spare range (each call a different one, in this process)."""
    global _next
    while _next < SPARE_PORTS.stop:
        port, _next = _next, _next + 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port left in 27000-27999")


class SentinelGroup:
    """Primary + replica + three sentinels; :meth:`close` stops them and removes their files."""

    def __init__(self, master_name: str = MASTER_NAME) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server binary")
        self.binary = binary or "redis-server"
        self.master_name = master_name
        self.dir = Path(tempfile.mkdtemp(prefix="hw-sentinel-"))
        self.nodes: dict[int, subprocess.Popen[bytes]] = {}  # redis data nodes by port
        self.sentinels: dict[int, subprocess.Popen[bytes]] = {}
        self.killed: list[int] = []

    # --- processes -----------------------------------------------------------------------
    def _data_node(self, port: int, replica_of: int | None) -> None:
        workdir = self.dir / f"node-{port}"
        workdir.mkdir(exist_ok=True)
        args = [
            self.binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--dir", str(workdir), "--maxmemory-policy", "noeviction",
            "--loglevel", "warning", "--logfile", str(workdir / "redis.log"),
        ]  # fmt: skip
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.nodes[port] = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(port)

    def _sentinel(self, port: int, primary: int) -> None:
        conf = self.dir / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"logfile {self.dir / f'sentinel-{port}.log'}\n"
            f"sentinel monitor {self.master_name} 127.0.0.1 {primary} 2\n"
            f"sentinel down-after-milliseconds {self.master_name} 1000\n"
            f"sentinel failover-timeout {self.master_name} 4000\n"
            f"sentinel parallel-syncs {self.master_name} 1\n"
        )
        self.sentinels[port] = subprocess.Popen(
            [self.binary, str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(port)

    def start(self) -> SentinelGroup:
        primary, replica = spare_port(), spare_port()
        self._data_node(primary, None)
        self._data_node(replica, primary)
        for _ in range(3):
            self._sentinel(spare_port(), primary)
        self._wait(lambda: self._replica_in_sync(primary), 20, "the replica in sync")
        self._wait(lambda: self._sentinels_agree(primary), 20, "every sentinel sees the replica")
        return self

    # --- what the tests use ----------------------------------------------------------------
    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{port}" for port in self.sentinels) + "/0"

    def primary_port(self) -> int:
        for port in self.sentinels:
            try:
                client = redis.Redis(port=port, socket_timeout=1)
                _host, primary = client.sentinel_get_master_addr_by_name(self.master_name)
                client.close()
                return int(primary)
            except (redis.RedisError, TypeError):
                continue
        raise RuntimeError("no sentinel answers")

    def kill_primary(self) -> int:
        """SIGKILL the primary now; returns its port (failover happens in the background)."""
        port = self.primary_port()
        process = self.nodes.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        self.killed.append(port)
        return port

    def wait_failover(self, old: int, timeout: float = 30.0) -> int:
        """Until the sentinels name a primary other than ``old`` that answers as primary."""

        def promoted() -> bool:
            try:
                port = self.primary_port()
                role = redis.Redis(port=port, socket_timeout=1).role()
            except (redis.RedisError, RuntimeError):
                return False
            return port != old and role[0] in (b"master", "master")

        self._wait(promoted, timeout, "the sentinels' failover")
        return self.primary_port()

    def close(self) -> None:
        for process in [*self.sentinels.values(), *self.nodes.values()]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.sentinels.values(), *self.nodes.values()]:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _wait(predicate: object, timeout: float, what: str) -> None:
        assert callable(predicate)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}")

    def _replica_in_sync(self, primary: int) -> bool:
        info = redis.Redis(port=primary, socket_timeout=1).info("replication")
        return int(info.get("connected_slaves", 0)) >= 1 and "online" in str(info.get("slave0"))

    def _sentinels_agree(self, primary: int) -> bool:
        for port in self.sentinels:
            client = redis.Redis(port=port, socket_timeout=1)
            try:
                replicas = client.sentinel_slaves(self.master_name)
                others = client.sentinel_sentinels(self.master_name)
            except redis.RedisError:
                return False
            finally:
                client.close()
            if not replicas or len(others) < 2:
                return False
        return True
