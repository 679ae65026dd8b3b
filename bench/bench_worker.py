"""Worker drain rate at several prefetch multipliers: trade batches from Redis into PostgreSQL.

For each prefetch value and run: the queue is preloaded with N batches of M trades (published
with the ingester's own publisher, so the messages are byte-for-byte what production sends),
a real ``celery -A tasks worker -Q ingest -c C`` starts, and the time from its "ready" line
to the queue being drained (nothing waiting, nothing unacknowledged — with late acks that
means every batch committed) gives trades/s. Tables are emptied between runs; every run
checks that exactly N*M trades were stored. Private redis-server, fresh PostgreSQL database.

``--tracked K`` measures the cost of wallet activity: every trade then carries a buyer and
a seller, a ``--tracked-share`` of all sides being one of K wallets tracked in the database
(the rest from 100,000 others), and each prefetch value runs twice per round, with no wallet
tracked and with the K — the same messages, one after the other — and the report gives the
ratio of the medians. The tracked run checks that every tracked side became exactly one
``user_fills`` row.

    .venv/bin/python bench/bench_worker.py [--batches 200] [--size 2000] [--runs 3]
        [--prefetch 1,2,4,16,64] [--concurrency 2] [--tracked 10000 [--tracked-share 0.1]]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
from sqlalchemy import text

from events import Trade
from models import migrate
from models.db import Database, get_database
from models.repositories import UserRepository
from models.repositories.fills import derive_activity
from models.tracked_wallet import TrackedWallet
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


def with_wallets(trades: list[Trade], wallets: list[str], share: float) -> list[Trade]:
    """``trades`` with a buyer and a seller each; a ``share`` of all sides from ``wallets``."""
    rng = random.Random(1)
    others = [f"0x{rng.getrandbits(160):040x}" for _ in range(100_000)]

    def side() -> str:
        return rng.choice(wallets) if wallets and rng.random() < share else rng.choice(others)

    out = []
    for t in trades:
        buyer, seller = side(), side()
        while seller == buyer:
            seller = side()
        out.append(t._replace(buyer=buyer, seller=seller))
    return out


def track(db: Database, wallets: list[str]) -> None:
    """Exactly ``wallets`` tracked in the database (none: the table emptied)."""
    with db.engine.begin() as conn:
        conn.execute(text("TRUNCATE tracked_wallets, users CASCADE"))
    if wallets:
        with db.session() as s:
            owner = UserRepository(s).create("bench@example.com", tier="enterprise")
            s.add_all(TrackedWallet(user_id=owner.id, address=w) for w in wallets)
            s.commit()


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
    parser.add_argument("--tracked", type=int, default=0, help="wallets tracked (0: no comparison)")
    parser.add_argument("--tracked-share", type=float, default=0.1, help="sides they take")
    args = parser.parse_args()
    prefetch_values = [int(p) for p in args.prefetch.split(",")]
    rng = random.Random(2)
    wallets = [f"0x{rng.getrandbits(160):040x}" for _ in range(args.tracked)]
    # Each configuration: (prefetch, wallets tracked); with --tracked, none and all of them.
    tracked_values = [0, args.tracked] if args.tracked else [0]

    trades = make_trades(args.batches * args.size)
    if args.tracked:
        trades = with_wallets(trades, wallets, args.tracked_share)
    activity = len(derive_activity(trades, frozenset(wallets)))
    bodies = [
        json.dumps(trades_payload(trades[i * args.size : (i + 1) * args.size], seq=i)).encode()
        for i in range(args.batches)
    ]
    expected = len(trades)
    server = RedisServer().start()
    pg = PostgresDatabase()
    workdir = Path(tempfile.mkdtemp(prefix="hw-bench-worker-"))
    results: dict[tuple[int, int], list[float]] = {
        (p, k): [] for p in prefetch_values for k in tracked_values
    }
    try:
        settings = load_settings(database_url=pg.url, data_dir=workdir / "var")
        migrate.upgrade(settings)
        db = get_database(settings)
        broker = redis.Redis.from_url(server.url)
        for run in range(args.runs):
            for prefetch in prefetch_values:
                for tracked in tracked_values:
                    with db.engine.begin() as conn:
                        conn.execute(text("TRUNCATE trade_snapshots, trade_bars, user_fills"))
                    track(db, wallets[:tracked])
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
                        rows = conn.execute(text("SELECT count(*) FROM user_fills")).scalar()
                    assert stored == expected, f"stored {stored} of {expected}"
                    want = activity if tracked else 0
                    assert rows == want, f"{rows} user_fills rows, expected {want}"
                    results[(prefetch, tracked)].append(rate)
                    print(
                        f"run {run + 1} prefetch {prefetch:>3} tracked {tracked:>6}: "
                        f"{rate:>9,.0f} trades/s",
                        flush=True,
                    )
        db.dispose()
    finally:
        pg.close()
        server.close()

    print(
        f"\nmachine: {platform.machine()} cpus={os.cpu_count()}  worker -c {args.concurrency}  "
        f"{args.batches} batches x {args.size} trades, {args.runs} runs (median)"
    )
    if args.tracked:
        print(
            f"tracked: {args.tracked:,} wallets taking {args.tracked_share:.0%} of trade sides: "
            f"{activity:,} user_fills rows per run ({activity / expected:.2f} a trade)"
        )
    print(
        f"{'prefetch':>8} {'tracked':>8} {'trades/s':>10} {'batches/s':>10} {'min':>9} {'max':>9}"
        + (f" {'vs none':>8}" if args.tracked else "")
    )
    for (prefetch, tracked), rates in results.items():
        median = statistics.median(rates)
        ratio = ""
        if args.tracked:
            ratio = f" {median / statistics.median(results[(prefetch, 0)]):>8.3f}"
        print(
            f"{prefetch:>8} {tracked:>8} {median:>10,.0f} {median / args.size:>10,.1f} "
            f"{min(rates):>9,.0f} {max(rates):>9,.0f}{ratio}"
        )


if __name__ == "__main__":
    main()
