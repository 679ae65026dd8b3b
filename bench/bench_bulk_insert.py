"""Bulk trade insert (COPY → staging → INSERT … ON CONFLICT) vs row-at-a-time ORM inserts.

Both paths run in the same process against the same PostgreSQL, on fresh databases, and the
script prints rows/s for each (median of runs) and the ratio.

    .venv/bin/python bench/bench_bulk_insert.py [--rows 100000] [--orm-rows 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from events import Trade
from models import migrate
from models.db import Database, get_database
from models.repositories import TradeRepository
from models.repositories.wallet_ids import ids_for
from models.trade import TradeSnapshot
from settings import load_settings
from tests.support.services import PostgresDatabase

T0 = 1_787_052_600_000


def make_trades(n: int, offset: int) -> list[Trade]:
    return [
        Trade("BTC" if i % 2 else "ETH", T0 + i // 10, offset + i, Decimal("117342.5") + i % 100,
              Decimal("0.00125"), "B" if i % 3 else "A", "0x" + "cd" * 32, "0x" + "5b" * 20, "0x" + "0a" * 20)
        for i in range(n)
    ]  # fmt: skip


def bulk_rate(db: Database, trades: list[Trade]) -> float:
    started = time.perf_counter()
    with db.session() as s:
        result = TradeRepository(s).add_batch(trades)
    elapsed = time.perf_counter() - started
    assert result.new == len(trades)
    return len(trades) / elapsed


def orm_rate(db: Database, trades: list[Trade]) -> float:
    started = time.perf_counter()
    for t in trades:
        with db.session() as s:
            # Buyer and seller are ids into the wallet dictionary (migration 0012).
            ids = ids_for(s, (t.buyer, t.seller))
            s.add(TradeSnapshot(coin=t.coin, time=t.time, tid=t.tid, px=t.px, sz=t.sz, side=t.side,
                                hash=t.hash, buyer_id=ids.get(t.buyer),  # type: ignore[arg-type]
                                seller_id=ids.get(t.seller)))  # type: ignore[arg-type]  # fmt: skip
    return len(trades) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--orm-rows", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    pg = PostgresDatabase()
    try:
        settings = load_settings(database_url=pg.url)
        migrate.upgrade(settings)
        db = get_database(settings)
        bulk, orm = [], []
        for run in range(args.runs):
            bulk.append(bulk_rate(db, make_trades(args.rows, offset=run * 10_000_000)))
            orm.append(
                orm_rate(db, make_trades(args.orm_rows, offset=run * 10_000_000 + 5_000_000))
            )
        db.dispose()
    finally:
        pg.close()
    b, o = statistics.median(bulk), statistics.median(orm)
    print(f"machine: {platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()}")
    print(
        f"bulk COPY+ON CONFLICT : {b:12,.0f} rows/s  (median of {args.runs}, {args.rows:,} rows per call)"
    )
    print(
        f"ORM row-at-a-time     : {o:12,.0f} rows/s  (median of {args.runs}, {args.orm_rows:,} rows, commit each)"
    )
    print(f"ratio                 : {b / o:12.1f}x")


if __name__ == "__main__":
    main()
