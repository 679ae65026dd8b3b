"""The whole pipeline as real processes: simulator → ingester → Redis → worker(s) → PostgreSQL.

Used by the fault suite (tests/e2e/test_faults.py) and the end-to-end benchmark
(bench/bench_e2e.py). Every service is private to the run: its own redis-server (AOF on, as
in production, so a Redis restart keeps queued batches) and its own database. Logs go to
files in the work directory; :meth:`Stack.logs` returns them for failure messages.

:func:`compare` checks the database against the simulator's ground truth: every trade the
exchange produced inside the observed window is stored exactly once with its exact fields,
unless it lies inside a gap the ingester recorded (the protocol cannot replay it); nothing
is stored that the exchange did not produce; bars agree with the stored trades.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import create_engine, select, text

from models.repositories.bars import fold
from models.trade import TradeSnapshot
from runtime.redis_clients import redis_client
from tests.integration.celery.support import (
    WorkerProcess,
    holds_steadily,
    queue_depth,
    service_env,
    unacked,
)
from tests.support.rabbitmq import RabbitNode
from tests.support.sentinel import SentinelGroup
from tests.support.services import RedisServer, free_port
from workers.simulator import SimulatorProcess, read_ground_truth

# Every stored trade, read through the model: hashes and addresses are bytes in PostgreSQL.
_T = TradeSnapshot
_TRADES = select(_T.coin, _T.time, _T.tid, _T.px, _T.sz, _T.side, _T.hash, _T.buyer, _T.seller)

QUEUES = ("ingest", "alerts", "notify", "maintenance")


def terminate(process: subprocess.Popen[Any], timeout: float = 30.0) -> int:
    """SIGTERM ``process`` if it runs, SIGKILL it after ``timeout`` s; its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, every: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class StackConfig:
    rate: float = 200.0
    coins: str = "BTC,ETH,SOL"
    users: int = 0
    replay_trades: int = 500
    seed: int = 7
    visibility_timeout_s: int = 10
    worker_concurrency: int = 2
    batch_size: int = 2000
    batch_ms: int = 100
    sim_args: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)


class IngesterProcess:
    """``hyperwatch ingest`` as a subprocess; ready when its /readyz answers 200."""

    def __init__(self, workdir: Path, env: Mapping[str, str], name: str = "ingester") -> None:
        self.port = int(env["INGESTER_HEALTH_PORT"])
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("ab")
        argv = [sys.executable, "-m", "workers.cli", "ingest"]
        self.process = subprocess.Popen(
            argv, cwd=workdir, env=dict(env), stdout=self._log, stderr=subprocess.STDOUT
        )

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"ingester exited {self.process.returncode}:\n{self.log()}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 30.0) -> IngesterProcess:
        wait_until(self.ready, timeout, "ingester /readyz")
        return self

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        returncode = terminate(self.process, timeout)
        self._log.close()
        return returncode


class Stack:
    """Start, disturb and stop the pipeline's processes."""

    def __init__(
        self,
        workdir: Path,
        database_url: str,
        redis_server: RedisServer | SentinelGroup,
        config: StackConfig,
        rabbit: RabbitNode | None = None,
    ) -> None:
        """``rabbit``: the broker is that RabbitMQ node, ``redis_server`` only the cache."""
        self.workdir = workdir
        self.database_url = database_url
        self.redis_server = redis_server
        self.rabbit = rabbit
        self.config = config
        self.truth_path = workdir / "ground-truth.jsonl"
        self.simulator: SimulatorProcess | None = None
        self.ingester: IngesterProcess | None = None
        self.workers: dict[str, WorkerProcess] = {}
        self._worker_serial = 0
        self.crashed: list[tuple[str, int]] = []
        # Through the sentinels when the stack runs behind Sentinel: after a failover the next
        # command reaches the promoted node.
        self.master_name = getattr(redis_server, "master_name", None)
        self.redis = redis_client(redis_server.url, self.master_name)

    # --- environment -------------------------------------------------------------------
    def env(self, **settings: object) -> dict[str, str]:
        base: dict[str, object] = {
            "database_url": self.database_url,
            "redis_url": self.redis_server.url,
            "broker_visibility_timeout_s": self.config.visibility_timeout_s,
            "ingest_batch_size": self.config.batch_size,
            "ingest_batch_ms": self.config.batch_ms,
            "worker_metrics_port": 0,
            "log_level": "INFO",
            "data_dir": self.workdir / "var",
        }
        if self.master_name is not None:
            base["redis_sentinel_master"] = self.master_name
        if self.rabbit is not None:
            base["broker_url"] = self.rabbit.url
        if self.simulator is not None:
            base |= {"hl_ws_url": self.simulator.ws_url, "hl_info_url": self.simulator.info_url}
        base |= {"coins": self.config.coins}
        base |= settings
        env = service_env(None, **base)
        env.update(self.config.extra_env)
        return env

    # --- processes -----------------------------------------------------------------------
    def start_simulator(self) -> SimulatorProcess:
        args = [
            "--rate", str(self.config.rate), "--coins", self.config.coins, "--seed", str(self.config.seed),
            "--replay-trades", str(self.config.replay_trades), "--record", str(self.truth_path),
            "--users", str(self.config.users), *self.config.sim_args,
        ]  # fmt: skip
        self.simulator = SimulatorProcess.start(args)
        return self.simulator

    def start_ingester(self, name: str = "ingester", **settings: object) -> IngesterProcess:
        env = self.env(ingester_health_port=free_port(), **settings)
        self.ingester = IngesterProcess(self.workdir, env, name=name).wait_ready()
        return self.ingester

    def start_worker(self, concurrency: int | None = None) -> WorkerProcess:
        self._worker_serial += 1
        name = f"w{self._worker_serial}"
        worker = WorkerProcess(
            self.workdir, self.env(), name=name, queues=",".join(QUEUES),
            concurrency=concurrency or self.config.worker_concurrency,
        )  # fmt: skip
        self.workers[name] = worker.wait_ready(60)
        return worker

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker's main process and its pool (a crash, not a shutdown)."""
        worker = self.workers.pop(name)
        children = worker.children()
        worker.signal(signal.SIGKILL)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.process.wait(10)
        worker.stop()

    def revive_workers(self) -> int:
        """Replace workers that exited on their own, as systemd/Kubernetes/`hyperwatch up`
        would; returns how many were restarted (reported as crashes by the fault suite)."""
        dead = [name for name, w in self.workers.items() if w.process.poll() is not None]
        for name in dead:
            self.crashed.append((name, int(self.workers[name].process.returncode)))
            self.workers.pop(name).stop()
            self.start_worker()
        return len(dead)

    def backlog(self) -> int:
        if self.rabbit is not None:
            return self.rabbit.backlog(QUEUES)
        return sum(queue_depth(self.redis, q) for q in QUEUES) + unacked(self.redis)

    def wait_drained(self, timeout: float = 120.0) -> None:
        """Every queue empty and nothing delivered-but-unacknowledged: all committed."""
        wait_until(
            lambda: self.revive_workers() >= 0
            and holds_steadily(lambda: self._safe_backlog() == 0),
            timeout, "queues drained", every=0.25,
        )  # fmt: skip

    def _safe_backlog(self) -> int:
        try:
            return self.backlog()
        except (redis.RedisError, OSError, subprocess.SubprocessError):
            return -1  # the broker is away (kombu's connection errors are OSErrors)

    def stop_all(self) -> dict[str, int]:
        """Warm shutdown in dependency order; returns each process's exit code."""
        codes: dict[str, int] = {}
        if self.ingester is not None:
            codes["ingester"] = self.ingester.stop()
        if self.simulator is not None:
            codes["simulator"] = self.simulator.stop()
        return codes

    def stop_workers(self) -> dict[str, int]:
        codes = {}
        for name, worker in list(self.workers.items()):
            worker.signal(signal.SIGTERM)
            codes[name] = worker.wait(90)
            worker.stop()
        self.workers.clear()
        return codes

    def close(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        if self.ingester is not None and self.ingester.process.poll() is None:
            self.ingester.process.kill()
        if self.simulator is not None:
            self.simulator.stop(5)
        self.redis.close()

    def logs(self) -> str:
        parts = []
        for path in sorted(self.workdir.glob("*.log")):
            tail = path.read_text(errors="replace")[-4000:]
            parts.append(f"--- {path.name} (tail) ---\n{tail}")
        return "\n".join(parts)


# --- comparison with the ground truth ---------------------------------------------------------


@dataclass
class Comparison:
    produced: int = 0
    expected: int = 0
    stored: int = 0
    lost: list[tuple[str, int, int]] = field(default_factory=list)
    in_gaps: int = 0
    phantom: list[tuple[str, int, int]] = field(default_factory=list)
    mismatched: list[tuple[str, int, int]] = field(default_factory=list)
    duplicated: int = 0
    bar_errors: list[str] = field(default_factory=list)
    gaps: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.lost or self.phantom or self.mismatched or self.duplicated or self.bar_errors
        )

    def summary(self) -> dict[str, Any]:
        return {
            "produced": self.produced, "expected": self.expected, "stored": self.stored,
            "lost": len(self.lost), "duplicated": self.duplicated, "phantom": len(self.phantom),
            "mismatched": len(self.mismatched), "unrecoverable_in_recorded_gaps": self.in_gaps,
            "gap_records": self.gaps, "bar_errors": len(self.bar_errors),
        }  # fmt: skip


def compare(database_url: str, truth_path: Path) -> Comparison:
    truth = read_ground_truth(truth_path)
    produced = {t.key: t.to_event() for t in truth.trades}
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(_TRADES).all()
            bar_rows = conn.execute(
                text(
                    "SELECT coin, minute, open, high, low, close, volume, buy_volume, sell_volume, trade_count FROM trade_bars"
                )
            ).all()
            gap_lists = [r[0] for r in conn.execute(text("SELECT gaps FROM sessions"))]
    finally:
        engine.dispose()
    result = Comparison(produced=len(produced), stored=len(rows))
    stored: dict[tuple[str, int, int], tuple[Any, ...]] = {}
    for coin, t, tid, px, sz, side, hsh, buyer, seller in rows:
        key = (coin, int(t), int(tid))
        if key in stored:
            result.duplicated += 1
        stored[key] = (Decimal(px), Decimal(sz), side, hsh, buyer, seller)
    gaps: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
    for gap_list in gap_lists:
        for gap in gap_list or []:
            if gap.get("stream") == "trades" and gap.get("coin"):
                gaps[gap["coin"]].append((int(gap["from_ms"]), gap.get("to_ms")))
                result.gaps += 1
    # The observed window per coin: the ingester cannot be expected to hold what the exchange
    # produced before its first subscription's replay or after it stopped. A replay holds
    # only the last N trades, so it can start in the middle of a block whose earlier trades
    # share its millisecond: the window opens *after* the first stored millisecond, and a
    # gap includes the millisecond that closed it, for the same reason.
    window: dict[str, tuple[int, int]] = {}
    for coin, t, _tid in stored:
        lo, hi = window.get(coin, (t, t))
        window[coin] = (min(lo, t), max(hi, t))
    for key, trade in produced.items():
        coin, t, _tid = key
        if coin not in window or not window[coin][0] < t <= window[coin][1]:
            continue
        result.expected += 1
        got = stored.get(key)
        if got is None:
            if any(lo < t and (hi is None or t <= int(hi)) for lo, hi in gaps[coin]):
                result.in_gaps += 1
            else:
                result.lost.append(key)
            continue
        if got != (trade.px, trade.sz, trade.side, trade.hash, trade.buyer, trade.seller):
            result.mismatched.append(key)
    result.phantom = [k for k in stored if k not in produced]
    # Bars must equal a fresh fold of the stored trades: a double-folded redelivery shows here.
    expected_bars = {
        (b.coin, b.minute): (
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume,
            b.buy_volume,
            b.sell_volume,
            b.trade_count,
        )
        for b in fold((c, t, i, v[0], v[1], v[2]) for (c, t, i), v in stored.items())
    }
    got_bars = {
        (r[0], int(r[1])): (*tuple(Decimal(x) for x in r[2:9]), int(r[9])) for r in bar_rows
    }
    for bar_key in expected_bars.keys() | got_bars.keys():
        if expected_bars.get(bar_key) != got_bars.get(bar_key):
            result.bar_errors.append(
                f"{bar_key}: stored {got_bars.get(bar_key)} expected {expected_bars.get(bar_key)}"
            )
    return result


@dataclass
class FullComparison:
    """The database against *everything* the exchange produced, not an observed window."""

    produced: int
    stored: int
    missing: list[tuple[str, int, int]] = field(default_factory=list)
    extra: list[tuple[str, int, int]] = field(default_factory=list)
    mismatched: list[tuple[str, int, int]] = field(default_factory=list)
    bar_errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "produced": self.produced,
            "stored": self.stored,
            "missing": len(self.missing),
            "extra": len(self.extra),
            "mismatched": len(self.mismatched),
            "bar_errors": len(self.bar_errors),
        }


def compare_complete(database_url: str, truth_path: Path) -> FullComparison:
    """Every trade of the ground truth stored once with its exact fields, nothing else, and
    bars equal to a fresh fold of the stored trades (a duplicate cannot hide: the key is the
    primary key, and a double fold shows in the bars)."""
    truth = read_ground_truth(truth_path)
    produced = {t.key: t.to_event() for t in truth.trades}
    partial = compare(database_url, truth_path)  # its bar check is over the stored rows
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(_TRADES).all()
    finally:
        engine.dispose()
    stored = {
        (coin, int(t), int(tid)): (Decimal(px), Decimal(sz), side, hsh, buyer, seller)
        for coin, t, tid, px, sz, side, hsh, buyer, seller in rows
    }
    result = FullComparison(produced=len(produced), stored=len(rows))
    result.missing = sorted(k for k in produced if k not in stored)
    result.extra = sorted(k for k in stored if k not in produced)
    result.mismatched = sorted(
        k
        for k, trade in produced.items()
        if k in stored
        and stored[k] != (trade.px, trade.sz, trade.side, trade.hash, trade.buyer, trade.seller)
    )
    result.bar_errors = partial.bar_errors
    return result
