"""End to end: simulator → ingester → Redis → worker(s) → PostgreSQL, against ground truth.

For each offered rate the whole pipeline runs as real processes on a private Redis and a
fresh database for ``--seconds``; then the feed stops and the queues drain. Reported:
- during feed/s: rows committed per second while the feed runs, after a 2 s warm-up (what
  the pipeline keeps up with);
- sustained (incl. drain) trades/s: rows committed after the warm-up ÷ (time of the last
  commit - end of the warm-up), so whatever backlog the feed left counts against the
  pipeline;
- trade→commit lag p50/p99: every 50 ms the newest stored trade time is read; lag is the
  wall clock minus it (the age of the freshest committed trade, i.e. how far the database
  trails the exchange);
- lost / duplicated against the simulator's ground truth (tests/support/stack.compare).
In the same run the naive design (one Celery task per trade, ORM insert per row) drains
``--naive-trades`` single-trade tasks; the ratio is the best sustained rate over its rate.

    .venv/bin/python bench/bench_e2e.py [--rates 2000,20000,60000] [--seconds 10] [--repeat 3]
        [--broker redis|sentinel|rabbitmq|redis,sentinel,rabbitmq]

``--broker`` picks the broker kind each rate runs on (a comma list runs each in turn):
``redis`` a private redis-server (the default), ``sentinel`` a private Sentinel group — a
primary, a replica and three sentinels (tests/support/sentinel.py) — reached through its
``sentinel://`` URL for the broker and the cache, ``rabbitmq`` a private RabbitMQ node
(tests/support/rabbitmq.py, quorum queues, publisher confirms) with a private redis-server
as the cache.

Memory: the ground-truth check holds every trade of a run in Python objects, about 2.5 kB
each (8 GB for the 3.3 million of a minute at 55,000/s); keep rate times seconds to what the
machine can hold. The pipeline's own processes stay near 110 MB each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from celery import Celery
from sqlalchemy import create_engine, text

from models import migrate
from settings import load_settings
from tests.integration.celery.support import WorkerProcess, service_env
from tests.support.rabbitmq import RabbitNode
from tests.support.sentinel import SentinelGroup
from tests.support.services import PostgresDatabase, RedisServer
from tests.support.stack import Stack, StackConfig, compare, wait_until


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


WARM_UP_S = 2.0


def stored_rows(conn: Any) -> int:
    return int(conn.execute(text("SELECT count(*) FROM trade_snapshots")).scalar_one())


def stop_feed_and_wait_last_commit(engine: Any, stack: Stack, timeout: float = 600.0) -> float:
    """Stops the ingester and the simulator while watching the row count; returns the wall
    clock time (±50 ms) it last grew, read once the feed is stopped, the queues are empty
    and the count has not moved for a second."""
    stopping = threading.Thread(target=stack.stop_all)
    stopping.start()
    deadline = time.monotonic() + timeout
    rows, changed_at, changed_mono = -1, time.time(), time.monotonic()
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            now_rows = stored_rows(conn)
        if now_rows != rows:
            rows, changed_at, changed_mono = now_rows, time.time(), time.monotonic()
        elif (
            not stopping.is_alive()
            and stack.backlog() == 0
            and time.monotonic() - changed_mono > 1.0
        ):
            return changed_at
        time.sleep(0.05)
    raise TimeoutError("the feed did not stop or the queues did not drain")


BROKERS = ("redis", "sentinel", "rabbitmq")


def run_rate(
    rate: int,
    seconds: float,
    workers: int,
    concurrency: int,
    batch_size: int,
    prefetch: int,
    broker: str = "redis",
) -> dict[str, Any]:
    pg = PostgresDatabase()
    redis_server: RedisServer | SentinelGroup = (
        SentinelGroup().start() if broker == "sentinel" else RedisServer(appendonly=True).start()
    )
    rabbit = RabbitNode().start() if broker == "rabbitmq" else None
    workdir = Path(tempfile.mkdtemp(prefix=f"hw-e2e-{rate}-"))
    try:
        migrate.upgrade(load_settings(database_url=pg.url))
        stack = Stack(
            workdir,
            pg.url,
            redis_server,
            StackConfig(
                rate=rate,
                replay_trades=10,
                worker_concurrency=concurrency,
                batch_size=batch_size,
                extra_env={"WORKER_PREFETCH_MULTIPLIER": str(prefetch)},
            ),
            rabbit=rabbit,
        )
        engine = create_engine(pg.url)
        try:
            stack.start_simulator()
            for _ in range(workers):
                stack.start_worker()
            stack.start_ingester()
            lags: list[float] = []
            started = time.monotonic()
            # (monotonic, wall clock, rows) at the end of the warm-up and at the end of the feed
            window: list[tuple[float, float, int]] = []
            while time.monotonic() - started < seconds:
                with engine.connect() as conn:
                    newest = conn.execute(text("SELECT max(time) FROM trade_snapshots")).scalar()
                    if not window and time.monotonic() - started > WARM_UP_S:
                        window.append((time.monotonic(), time.time(), stored_rows(conn)))
                if newest is not None and time.monotonic() - started > WARM_UP_S:
                    lags.append(time.time() * 1000 - int(newest))
                time.sleep(0.05)
            with engine.connect() as conn:
                window.append((time.monotonic(), time.time(), stored_rows(conn)))
            last_commit = stop_feed_and_wait_last_commit(engine, stack)
            stack.wait_drained(600)
            result = compare(pg.url, stack.truth_path)
            stack.stop_workers()
        finally:
            stack.close()
            engine.dispose()
    finally:
        if rabbit is not None:
            rabbit.close()
        redis_server.close()
        pg.close()
    (t0, wall0, rows0), (t1, _, rows1) = window
    return {
        "broker": broker,
        "offered": rate,
        "stored": result.stored,
        "during_feed": (rows1 - rows0) / (t1 - t0),
        "sustained": (result.stored - rows0) / (last_commit - wall0),
        "lag_p50_ms": percentile(lags, 0.5),
        "lag_p99_ms": percentile(lags, 0.99),
        "lost": len(result.lost),
        "duplicated": result.duplicated,
        "bar_errors": len(result.bar_errors),
    }


def run_naive(trades: int, concurrency: int) -> float:
    pg, redis_server = PostgresDatabase(), RedisServer().start()
    workdir = Path(tempfile.mkdtemp(prefix="hw-naive-"))
    try:
        migrate.upgrade(load_settings(database_url=pg.url))
        env = service_env(
            None,
            database_url=pg.url,
            redis_url=redis_server.url,
            worker_metrics_port=0,
            data_dir=workdir / "var",
        )
        app = Celery(broker=redis_server.url)
        now_ms = int(time.time() * 1000)  # today's partition exists; old days would not
        for i in range(trades):
            trade = {
                "coin": "BTC",
                "time": now_ms + i,
                "tid": i,
                "px": "117342.5",
                "sz": "0.001",
                "side": "B",
                "hash": "0x" + "ab" * 32,
            }
            app.send_task("bench.naive.store_trade", args=[trade], queue="ingest")
        started = time.monotonic()
        worker = WorkerProcess(
            workdir,
            env,
            name="naive",
            queues="ingest",
            concurrency=concurrency,
            extra_args=("-I", "bench.naive_tasks"),
        )
        try:
            engine = create_engine(pg.url)

            def stored() -> int:
                with engine.connect() as conn:
                    return int(
                        conn.execute(text("SELECT count(*) FROM trade_snapshots")).scalar_one()
                    )

            wait_until(lambda: stored() >= trades, 600, "naive drain", every=0.2)
            elapsed = time.monotonic() - started
            engine.dispose()
        finally:
            worker.stop()
    finally:
        redis_server.close()
        pg.close()
    return trades / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="2000,20000,60000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--naive-trades", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=2000, help="INGEST_BATCH_SIZE")
    parser.add_argument("--prefetch", type=int, default=1, help="WORKER_PREFETCH_MULTIPLIER")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per rate; the table shows every run"
    )
    parser.add_argument(
        "--broker", default="redis", help=f"broker kind(s), comma-separated: {', '.join(BROKERS)}"
    )
    args = parser.parse_args()
    kinds = args.broker.split(",")
    if not set(kinds) <= set(BROKERS):
        parser.error(f"--broker: one or more of {', '.join(BROKERS)}")
    rows = [
        run_rate(
            int(r),
            args.seconds,
            args.workers,
            args.concurrency,
            args.batch_size,
            args.prefetch,
            kind,
        )
        for kind in kinds
        for r in args.rates.split(",")
        for _ in range(args.repeat)
    ]
    naive = run_naive(args.naive_trades, args.concurrency) if args.naive_trades else None
    print(
        f"machine: {os.cpu_count()} CPUs; {args.workers} worker(s) x {args.concurrency}; "
        f"{args.seconds:.0f} s per run; ingest batch {args.batch_size}; prefetch {args.prefetch}"
    )
    print(
        f"{'broker':>8} {'offered/s':>10} {'stored':>9} {'during feed/s':>14} {'incl. drain/s':>14} {'lag p50 ms':>11} {'lag p99 ms':>11} {'lost':>5} {'dup':>4} {'bars':>5}"
    )
    for r in rows:
        print(
            f"{r['broker']:>8} {r['offered']:>10,} {r['stored']:>9,} {r['during_feed']:>14,.0f} {r['sustained']:>14,.0f} {r['lag_p50_ms']:>11.0f} {r['lag_p99_ms']:>11.0f} {r['lost']:>5} {r['duplicated']:>4} {r['bar_errors']:>5}"
        )
    for kind, rate in sorted({(r["broker"], r["offered"]) for r in rows}):
        runs = [r["sustained"] for r in rows if (r["broker"], r["offered"]) == (kind, rate)]
        p99 = [r["lag_p99_ms"] for r in rows if (r["broker"], r["offered"]) == (kind, rate)]
        print(
            f"{kind} offered {rate:,}/s: sustained incl. drain median "
            f"{statistics.median(runs):,.0f} (min {min(runs):,.0f}, max {max(runs):,.0f}, "
            f"{len(runs)} run(s)); lag p99 median {statistics.median(p99):,.0f} ms"
        )
    if naive is not None:
        best = max(r["sustained"] for r in rows)
        print(f"naive (task per trade, ORM row insert): {naive:,.0f} trades/s")
        print(f"ratio best sustained / naive: {best / naive:.1f}x")


if __name__ == "__main__":
    main()
