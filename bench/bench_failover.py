"""Two ingesters of one feed: what the standby costs, and how fast it takes over.

Real processes — simulator, a private Redis, a fresh PostgreSQL database, one Celery worker
and ``hyperwatch ingest`` processes, each reaching Redis through its own proxy — on a steady
stream of ``--rate`` trades/s:

1. **Steady state.** One ingester alone for ``--seconds``, then a second one beside it
   for as long: CPU seconds per second of each process (from ``/proc``), and the events
   each published (the standby must publish none: the database work is not doubled).
2. **Takeover.** ``--kills`` times: SIGKILL the leader, time until the other holds the
   lease and until trades are stored again, restart the killed one as the standby.
   Median and max are reported, and the run ends with the database compared with the
   simulator's ground truth (lost, duplicated, gap rows).

    .venv/bin/python bench/bench_failover.py [--rate 2000] [--seconds 20] [--kills 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text

from models import migrate
from settings import load_settings
from tests.support.ingesters import IngesterPair
from tests.support.services import PostgresDatabase, RedisServer
from tests.support.stack import Stack, StackConfig, compare, wait_until

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def published(pair: IngesterPair, name: str) -> float:
    process, _ = pair.running[name]
    metrics = process.metrics()
    total = 0.0
    for match in re.finditer(
        r'^hyperwatch_ingest_events_published_total\{kind="trades"\} (\S+)$', metrics, re.M
    ):
        total += float(match.group(1))
    return total


def stored(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM trade_snapshots")).scalar_one())
    finally:
        engine.dispose()


def steady(pair: IngesterPair, names: list[str], seconds: float) -> dict[str, Any]:
    pids = {n: pair.running[n][0].process.pid for n in names}
    cpu0 = {n: cpu_seconds(p) for n, p in pids.items()}
    pub0 = {n: published(pair, n) for n in names}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    leader = pair.lease_owner()
    return {
        n: {
            "role": "leader" if n == leader else "standby",
            "cpu_percent": round(100 * (cpu_seconds(pids[n]) - cpu0[n]) / elapsed, 1),
            "trades_published_per_s": round((published(pair, n) - pub0[n]) / elapsed),
        }
        for n in names
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--kills", type=int, default=10)
    args = parser.parse_args()

    redis_server = RedisServer(appendonly=True).start()
    database = PostgresDatabase()
    migrate.upgrade(load_settings(database_url=database.url))
    workdir = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    config = StackConfig(rate=args.rate, replay_trades=20, coins="BTC,ETH,SOL,AVAX,DOGE")
    stack = Stack(workdir, database.url, redis_server, config)
    pair = IngesterPair(stack)
    report: dict[str, Any] = {"rate": args.rate, "seconds": args.seconds}
    try:
        stack.start_simulator()
        stack.start_worker()
        first = pair.start()
        pair.leader()
        time.sleep(3)
        report["one_ingester"] = steady(pair, [first], args.seconds)
        second = pair.start()
        time.sleep(3)
        report["two_ingesters"] = steady(pair, [first, second], args.seconds)

        lease_s: list[float] = []
        stored_s: list[float] = []
        leader = pair.leader()
        for _ in range(args.kills):
            before = stored(database.url)
            killed_at = time.monotonic()
            pair.kill(leader)
            leader, seconds = pair.wait_takeover(leader)
            lease_s.append(seconds)
            # trades stored again: the new leader's batches went through the worker
            wait_until(lambda b=before: stored(database.url) > b + 50, 30, "storing again")  # type: ignore[misc]
            stored_s.append(time.monotonic() - killed_at)
            pair.start()
            time.sleep(2)
        report["takeover_lease_s"] = {
            "median": round(statistics.median(lease_s), 3),
            "max": round(max(lease_s), 3),
            "all": [round(s, 3) for s in lease_s],
        }
        report["kill_to_stored_again_s"] = {
            "median": round(statistics.median(stored_s), 3),
            "max": round(max(stored_s), 3),
        }
        pair.stop_all()
        if stack.simulator is not None:
            stack.simulator.stop()
        stack.wait_drained(180)
        stack.stop_workers()
        comparison = compare(database.url, stack.truth_path)
        report["comparison"] = comparison.summary()
        engine = create_engine(database.url)
        with engine.connect() as conn:
            report["gap_rows_by_end"] = dict(
                conn.execute(text("SELECT ended_by, count(*) FROM gaps GROUP BY ended_by")).all()
            )
        engine.dispose()
    except BaseException:
        print(stack.logs())
        raise
    finally:
        for name in list(pair.running):
            pair.kill(name)
        stack.close()
        redis_server.close()
        database.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
