"""Worker liveness that needs no broker round trip.

Every ``WORKER_HEARTBEAT_INTERVAL_S`` a thread in the worker's main process

1. touches ``<DATA_DIR>/heartbeats/<node name>``: what ``hyperwatch health worker`` checks,
   so it works as a Kubernetes exec liveness probe (fresh file = alive);
2. writes ``keys.WORKER_HEARTBEAT`` in Redis — time, pid and the node's resident memory
   — expiring after ``HEALTH_WORKER_HEARTBEAT_STALE_S``: what ``hyperwatch health`` and the
   health snapshot count as live workers.

Why a thread and not only a timer entry on the worker's event loop (the usual recipe): the
loop does not run while the consumer reconnects to the broker, so a timer-only heartbeat
goes stale during a Redis outage and the orchestrator restarts workers that a restart
cannot help — the failure mode of ``celery inspect ping`` probes. The loop still matters:
a timer entry records each turn (:class:`LoopWatch`), and while the consumer *has* a
connection, a loop that stopped turning for the stale period stops the file touches, so a
wedged main loop fails the probe. A Redis error never stops the file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import redis
from celery import bootsteps

from runtime import keys
from runtime.clock import SYSTEM_CLOCK, Clock
from runtime.redis_clients import cache_redis
from settings import Settings

log = logging.getLogger(__name__)

KEY_PATTERN = keys.WORKER_HEARTBEAT.pattern
_UNSAFE = re.compile(r"[^A-Za-z0-9@._-]")


def worker_key(node: str) -> str:
    return keys.WORKER_HEARTBEAT.name(node=node)


def heartbeat_path(data_dir: Path, node: str) -> Path:
    """One file per worker node name; characters a path cannot carry become ``_``."""
    return Path(data_dir) / "heartbeats" / _UNSAFE.sub("_", node)


def node_memory_bytes(pid: int | None = None) -> int:
    """Resident memory of a process and all its children (the worker's pool)."""
    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            continue  # a pool child that exited between listing and reading
    return total


@dataclass(frozen=True, slots=True)
class FileAge:
    """What the heartbeat file says: ``age_s`` None when the file does not exist."""

    path: Path
    age_s: float | None

    def fresh(self, max_age_s: float) -> bool:
        return self.age_s is not None and self.age_s <= max_age_s


def file_age(path: Path, clock: Clock = SYSTEM_CLOCK) -> FileAge:
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return FileAge(path, None)
    return FileAge(path, max(0.0, clock.time() - mtime))


class LoopWatch:
    """Did the worker's main loop turn recently? ``turned`` is called from a loop timer."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._last = clock.monotonic()

    def turned(self) -> None:
        self._last = self._clock.monotonic()

    def alive(self, connected: bool, stale_s: float) -> bool:
        """Without a broker connection the loop is not expected to turn (reconnecting)."""
        return not connected or self._clock.monotonic() - self._last <= stale_s


class Heartbeat:
    """One node's heartbeat: the file and the Redis key. :meth:`beat` never raises."""

    def __init__(
        self,
        node: str,
        data_dir: Path,
        client: redis.Redis,
        ttl_s: float,
        clock: Clock = SYSTEM_CLOCK,
        memory: Callable[[], int] = node_memory_bytes,
    ) -> None:
        self.node = node
        self.path = heartbeat_path(data_dir, node)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._client = client
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._clock = clock
        self._memory = memory
        self._redis_ok = True

    def beat(self, alive: bool = True) -> None:
        if not alive:
            log.error("worker %s: main loop stalled, heartbeat withheld", self.node)
            return
        self.touch()
        self.publish()

    def touch(self) -> None:
        stamp = self._clock.time()
        self.path.write_text(f"{stamp:.3f} {os.getpid()}\n")
        os.utime(self.path, (stamp, stamp))

    def publish(self) -> None:
        value = {
            "node": self.node,
            "time_ms": int(self._clock.time() * 1000),
            "pid": os.getpid(),
            "rss_bytes": self._memory(),
        }
        try:
            self._client.set(worker_key(self.node), json.dumps(value), px=self._ttl_ms)
        except (redis.RedisError, OSError) as exc:
            # The file keeps the worker alive for the orchestrator; `hyperwatch health`
            # reports Redis itself as down, so one line per outage is enough here.
            if self._redis_ok:
                log.warning("worker %s: heartbeat not written to Redis: %s", self.node, exc)
            self._redis_ok = False
            return
        if not self._redis_ok:
            log.info("worker %s: heartbeat written to Redis again", self.node)
        self._redis_ok = True

    def forget(self) -> None:
        """On clean shutdown: stop counting this node as live (the file just ages, so a
        probe during a long warm shutdown still passes until the stale limit)."""
        try:
            self._client.delete(worker_key(self.node))
        except (redis.RedisError, OSError) as exc:
            log.warning("worker %s: heartbeat key not removed: %s", self.node, exc)
        finally:
            self._client.close()


class HeartbeatThread(threading.Thread):
    def __init__(self, heartbeat: Heartbeat, interval_s: float, alive: Callable[[], bool]) -> None:
        super().__init__(name="hw-heartbeat", daemon=True)
        self._heartbeat = heartbeat
        self._interval_s = interval_s
        self._alive = alive
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            try:
                self._heartbeat.beat(self._alive())
            except Exception:  # a failing touch is logged; the stale file then tells
                log.exception("worker %s: heartbeat failed", self._heartbeat.node)
            if self._stop_event.wait(self._interval_s):
                return

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop_event.set()
        self.join(timeout_s)


class HeartbeatStep(bootsteps.StartStopStep):
    """Worker bootstep (main process): the loop timer entry and the heartbeat thread."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._thread: HeartbeatThread | None = None
        self._heartbeat: Heartbeat | None = None
        self._timer_entry: Any = None

    def start(self, parent: Any) -> None:
        settings: Settings | None = getattr(parent.app, "settings", None)
        if settings is None:
            return  # not a hyperwatch app (a test's bare Celery app)
        watch = LoopWatch()
        interval = settings.worker_heartbeat_interval_s
        self._timer_entry = parent.timer.call_repeatedly(interval, watch.turned)
        client = cache_redis(settings)
        self._heartbeat = Heartbeat(
            parent.hostname, settings.data_dir, client, settings.health_worker_heartbeat_stale_s
        )
        stale_s = settings.health_worker_heartbeat_stale_s

        def alive() -> bool:
            consumer = getattr(parent, "consumer", None)
            connected = getattr(consumer, "connection", None) is not None
            return watch.alive(connected, stale_s)

        self._thread = HeartbeatThread(self._heartbeat, interval, alive)
        self._thread.start()

    def stop(self, parent: Any) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        if self._timer_entry is not None:
            self._timer_entry.cancel()
            self._timer_entry = None
        if self._heartbeat is not None:
            self._heartbeat.forget()
            self._heartbeat = None

    def terminate(self, parent: Any) -> None:
        self.stop(parent)
