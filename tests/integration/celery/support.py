"""Helpers for Celery tests: trade batches, queue state, real worker processes, table locks.

Everything here drives real things: ``celery -A tasks worker`` subprocesses, the private
redis-server, PostgreSQL locks. Waits poll a condition with a deadline; none sleeps a fixed
time hoping something happened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

from events import Trade, encode_batch
from models.repositories.bars import fold
from settings import Settings

REPO = Path(__file__).resolve().parents[3]
CELERY = str(Path(sys.executable).with_name("celery"))
T0 = 1_787_052_600_000  # a minute boundary


def wait_until(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


# --- data ----------------------------------------------------------------------------------


def make_trades(n: int, first_tid: int = 1, coins: tuple[str, ...] = ("BTC", "ETH")) -> list[Trade]:
    """``n`` distinct trades over a few minutes, both sides, several coins."""
    return [
        Trade(
            coin=coins[i % len(coins)],
            time=T0 + (i * 37) % 180_000,
            tid=first_tid + i,
            px=Decimal("117342.5") + Decimal(i % 97) / 10,
            sz=Decimal("0.00125") * (1 + i % 7),
            side="B" if i % 3 else "A",
            hash="0x" + "cd" * 32,
        )
        for i in range(n)
    ]


def trades_payload(trades: list[Trade], seq: int = 0) -> dict[str, Any]:
    return encode_batch("trades", trades, source="test", seq=seq)


def expected_bars(trades: list[Trade]) -> dict[tuple[str, int], tuple[Any, ...]]:
    """(coin, minute) → (volume, buy, sell, delta, count, open, close) folded from ``trades``."""
    deltas = fold([(t.coin, t.time, t.tid, t.px, t.sz, t.side) for t in trades])
    return {
        (d.coin, d.minute): (
            d.volume,
            d.buy_volume,
            d.sell_volume,
            d.volume_delta,
            d.trade_count,
            d.open,
            d.close,
        )
        for d in deltas
    }


def stored_bars(conn: Connection) -> dict[tuple[str, int], tuple[Any, ...]]:
    rows = conn.execute(
        text(
            "SELECT coin, minute, volume, buy_volume, sell_volume, volume_delta, trade_count,"
            " open, close FROM trade_bars"
        )
    )
    return {
        (r.coin, int(r.minute)): (
            Decimal(r.volume),
            Decimal(r.buy_volume),
            Decimal(r.sell_volume),
            Decimal(r.volume_delta),
            int(r.trade_count),
            Decimal(r.open),
            Decimal(r.close),
        )
        for r in rows
    }


def stored_trade_keys(conn: Connection) -> list[tuple[str, int, int]]:
    """Every stored trade key, duplicates included (the table's key forbids them anyway)."""
    rows = conn.execute(text("SELECT coin, time, tid FROM trade_snapshots"))
    return sorted((r.coin, int(r.time), int(r.tid)) for r in rows)


# --- broker ----------------------------------------------------------------------------------


def queue_depth(client: redis.Redis, queue: str) -> int:
    """Messages waiting in ``queue`` (kombu keeps one list per priority step)."""
    keys = [k for k in client.keys(f"{queue}*") if client.type(k) == b"list"]
    return sum(int(client.llen(k)) for k in keys)


def unacked(client: redis.Redis) -> int:
    return int(client.hlen("unacked"))


# kombu's Redis transport takes a message off its list (BRPOP) and records it in
# ``unacked`` in a second round trip, so for a moment a message being fetched is in neither
# place. One look can fall in that window; a queue counts as drained only when it looks
# empty on every look across DRAIN_SETTLE_S (a CI run lost a retried batch to that race).
DRAIN_SETTLE_S = 0.3


def holds_steadily(condition: Callable[[], bool], seconds: float = DRAIN_SETTLE_S) -> bool:
    """``condition`` is true on every look (every 50 ms) for ``seconds``."""
    deadline = time.monotonic() + seconds
    while condition():
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)
    return False


def drained(client: redis.Redis, queue: str) -> bool:
    """Nothing waiting and nothing delivered-but-unacknowledged (late ack: all committed)."""
    return holds_steadily(lambda: queue_depth(client, queue) == 0 and unacked(client) == 0)


# --- worker processes ------------------------------------------------------------------------

_SETTING_NAMES = {name.upper() for name in Settings.model_fields}


def service_env(base: Mapping[str, str] | None = None, **settings: object) -> dict[str, str]:
    """The process environment with every hyperwatch setting removed, then ``settings``."""
    env = {
        k: v
        for k, v in (base or os.environ).items()
        if k not in _SETTING_NAMES and k not in ("REMAP_SIGTERM", "SENTRY_DSN")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k.upper(): str(v) for k, v in settings.items() if v is not None})
    return env


class WorkerProcess:
    """``celery -A tasks worker`` as a real subprocess, its log in a file."""

    def __init__(
        self,
        workdir: Path,
        env: Mapping[str, str],
        name: str = "w1",
        queues: str = "ingest",
        concurrency: int = 1,
        extra_args: tuple[str, ...] = (),
        remap_sigterm: bool = True,
    ) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        env = dict(env)
        if remap_sigterm:
            env["REMAP_SIGTERM"] = "SIGQUIT"
        args = [
            CELERY, "-A", "tasks", "worker", "-n", f"{name}@%h", "-Q", queues,
            "-c", str(concurrency), "--loglevel=INFO", "--without-mingle", "--without-gossip",
            *extra_args,
        ]  # fmt: skip
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            args, cwd=workdir, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> WorkerProcess:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited {self.process.returncode}:\n{self.log()}")
            return " ready." in self.log()

        wait_until(ready, timeout, what=f"{self.name} ready")
        return self

    def wait_log(self, fragment: str, timeout: float = 30.0) -> None:
        wait_until(lambda: fragment in self.log(), timeout, what=f"{fragment!r} in {self.name} log")

    def children(self) -> list[int]:
        return [c.pid for c in psutil.Process(self.pid).children()]

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running after {timeout}s:\n{self.log()}"
            ) from None

    def stop(self) -> None:
        """Make sure the worker and its pool are gone (test teardown)."""
        if self.process.poll() is None:
            for pid in self.children():
                _kill(pid)
            _kill(self.pid)
            self.process.wait(10)
        self._log.close()


def _kill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


# --- database locks --------------------------------------------------------------------------


class TableLock:
    """Hold a real PostgreSQL lock on a table, so a writer blocks mid-transaction.

    The stand-in for a long batch: the persist task inserts its trades, then waits on the
    lock before updating ``trade_bars`` — exactly the state of a batch that is running when
    a signal arrives, with no mock and no sleep in product code.
    """

    def __init__(self, url: str, table: str = "trade_bars") -> None:
        self.table = table
        self._engine = create_engine(url)
        self._conn: Connection | None = self._engine.connect()
        self._tx = self._conn.begin()
        self._conn.execute(text(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
        self._monitor = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def waiters(self) -> list[int]:
        """Backend pids waiting for this lock."""
        rows = self._monitor.execute(
            text("SELECT pid FROM pg_locks WHERE NOT granted AND relation = CAST(:t AS regclass)"),
            {"t": self.table},
        )
        return [int(r.pid) for r in rows]

    def wait_blocked(self, count: int = 1, timeout: float = 30.0) -> list[int]:
        return wait_until(
            lambda: (w := self.waiters()) and len(w) >= count and w,
            timeout,
            what=f"{count} writer(s) blocked on {self.table}",
        )

    def release(self) -> None:
        if self._conn is not None:
            self._tx.rollback()
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        self.release()
        self._monitor.close()
        self._engine.dispose()


@contextmanager
def table_lock(url: str, table: str = "trade_bars") -> Iterator[TableLock]:
    lock = TableLock(url, table)
    try:
        yield lock
    finally:
        lock.close()
