"""Worker drain rate at several prefetch multipliers: trade batches from Redis into PostgreSQL.

For each prefetch value and run: the queue is preloaded with N batches of M trades (published
with the ingester's own publisher, so the messages are byte-for-byte what production sends),
a real ``celery -A tasks worker -Q ingest -c C`` starts, and the time from its "ready" line
to the queue being drained (nothing waiting, nothing unacknowledged — with late acks that
means every batch committed) gives trades/s. Tables are emptied between runs; every run
checks that exactly N*M trades were stored. Private redis-server, fresh PostgreSQL database.

    .venv/bin/python bench/bench_worker.py [--batches 200] [--size 2000] [--runs 3]
        [--prefetch 1,2,4,16,64] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
from sqlalchemy import text

from models import migrate
from models.db import get_database
from settings import load_settings
from tests.integration.celery.support import (
    WorkerProcess,
    drained,
    make_trades,
    service_env,
    trades_payload,
    wait_until,
)
from tests.support.services import PostgresDatabase, RedisServer
from workers.ingester.broker import PERSIST_TRADES, BrokerClient


def preload(url: str, bodies: list[bytes]) -> None:
    client = BrokerClient(url)
    try:
        for seq, body in enumerate(bodies):
            client.send(PERSIST_TRADES, body, f"[<trades batch seq={seq}>]")
    finally:
        client.close()


def one_run(
    workdir: Path, env: dict[str, str], broker: redis.Redis, concurrency: int, expected: int
) -> float:
    worker = WorkerProcess(workdir, env, name="bench", concurrency=concurrency)
    try:
        worker.wait_ready(60)
        started = time.perf_counter()
        wait_until(lambda: drained(broker, "ingest"), 600, interval=0.01, what="drained")
        elapsed = time.perf_counter() - started
    finally:
        # Everything is acknowledged; no need to wait out a graceful stop.
        worker.stop()
    return expected / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prefetch", default="1,2,4,16,64")
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    prefetch_values = [int(p) for p in args.prefetch.split(",")]

    trades = make_trades(args.batches * args.size)
    bodies = [
        json.dumps(trades_payload(trades[i * args.size : (i + 1) * args.size], seq=i)).encode()
        for i in range(args.batches)
    ]
    expected = len(trades)
    server = RedisServer().start()
    pg = PostgresDatabase()
    workdir = Path(tempfile.mkdtemp(prefix="hw-bench-worker-"))
    results: dict[int, list[float]] = {p: [] for p in prefetch_values}
    try:
        settings = load_settings(database_url=pg.url, data_dir=workdir / "var")
        migrate.upgrade(settings)
        db = get_database(settings)
        broker = redis.Redis.from_url(server.url)
        for run in range(args.runs):
            for prefetch in prefetch_values:
                with db.engine.begin() as conn:
                    conn.execute(text("TRUNCATE trade_snapshots, trade_bars"))
                broker.flushall()  # our private server
                preload(server.url, bodies)
                env = service_env(
                    database_url=pg.url,
                    redis_url=server.url,
                    broker_url=server.url,
                    data_dir=workdir / "var",
                    worker_prefetch_multiplier=prefetch,
                    worker_metrics_port=0,
                    log_level="WARNING",
                )
                rate = one_run(workdir, env, broker, args.concurrency, expected)
                with db.engine.connect() as conn:
                    stored = conn.execute(text("SELECT count(*) FROM trade_snapshots")).scalar()
                assert stored == expected, f"stored {stored} of {expected}"
                results[prefetch].append(rate)
                print(f"run {run + 1} prefetch {prefetch:>3}: {rate:>9,.0f} trades/s", flush=True)
        db.dispose()
    finally:
        pg.close()
        server.close()

    print(
        f"\nmachine: {platform.machine()} cpus={os.cpu_count()}  worker -c {args.concurrency}  "
        f"{args.batches} batches x {args.size} trades, {args.runs} runs (median)"
    )
    print(f"{'prefetch':>8} {'trades/s':>10} {'batches/s':>10} {'min':>9} {'max':>9}")
    for prefetch, rates in results.items():
        median = statistics.median(rates)
        print(
            f"{prefetch:>8} {median:>10,.0f} {median / args.size:>10,.1f} "
            f"{min(rates):>9,.0f} {max(rates):>9,.0f}"
        )


if __name__ == "__main__":
    main()
