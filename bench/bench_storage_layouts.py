"""Bytes per trade of candidate trade_snapshots layouts, measured before building one.

Issue 19 asks for at most half the bytes per trade of the 0009 schema; 0010 reached 0.62
(``bench/bench_storage.py``). This bench measures what the next layouts would give, in one
run and on the same rows, so the choice is made on figures and not on estimates:

1. ``--trades`` simulated trades (``bench_storage.generate``) are loaded by COPY into a
   database at 0009 (the "before" of the goal) and into one at 0011 (the layout 0012
   replaced, after measuring it here: it built the "wallet ids, columns by alignment" one).
2. From the 0011 rows, each candidate is built as a plain table (same rows, inserted in key
   order as a live feed inserts them, so its B-tree grows at its right edge), with the
   dictionaries it needs (``wallets``: address bytea → int4 id; ``coins``: name → int2 id),
   and measured with ``pg_total_relation_size`` after ``VACUUM ANALYZE``. The 0011 layout
   is rebuilt the same way as the control: it must come out as the 0011 database does.

Dictionary sizes are printed apart: they are per distinct wallet, not per trade.

    .venv/bin/python bench/bench_storage_layouts.py [--trades 1000000]
"""

# The SQL below is built from this file's constants only (no input reaches it).
# ruff: noqa: S608

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_storage import COLUMNS, batches, generate, load_before, sizes
from sqlalchemy import create_engine, text

from events import Trade
from models import migrate
from models.hexbytes import copy_field
from models.partitions import day_of, ensure_partitions
from settings import load_settings
from tests.support.services import PostgresDatabase

_WALLETS = "JOIN wallets wb ON wb.address = t.buyer JOIN wallets ws ON ws.address = t.seller"
_IDS_ALIGNED = "time bigint, tid bigint, buyer int, seller int"
# label → (column definitions and key, the SELECT over the head rows that fills them).
LAYOUTS: dict[str, tuple[str, str]] = {
    "0011 (control)": (
        "coin varchar(40), time bigint, tid bigint, px numeric, sz numeric, side varchar(1), "
        "hash bytea, buyer bytea, seller bytea, PRIMARY KEY (time, coin, tid)",
        "SELECT coin, time, tid, px, sz, side, hash, buyer, seller FROM trade_snapshots t",
    ),
    "wallet ids": (
        "coin varchar(40), time bigint, tid bigint, px numeric, sz numeric, side varchar(1), "
        "hash bytea, buyer int, seller int, PRIMARY KEY (time, coin, tid)",
        f"SELECT coin, time, tid, px, sz, side, hash, wb.id, ws.id FROM trade_snapshots t {_WALLETS}",
    ),
    "wallet ids, columns by alignment": (
        f"{_IDS_ALIGNED}, coin varchar(40), side varchar(1), px numeric, sz numeric, hash bytea, "
        "PRIMARY KEY (time, coin, tid)",
        f"SELECT time, tid, wb.id, ws.id, coin, side, px, sz, hash FROM trade_snapshots t {_WALLETS}",
    ),
    "wallet and coin ids, by alignment": (
        f"{_IDS_ALIGNED}, coin smallint, side varchar(1), px numeric, sz numeric, hash bytea, "
        "PRIMARY KEY (time, coin, tid)",
        f"SELECT time, tid, wb.id, ws.id, co.id, side, px, sz, hash FROM trade_snapshots t "
        f"{_WALLETS} JOIN coins co ON co.name = t.coin",
    ),
    # Not exact: tid is a 50-bit hash, unique only with (time, coin) per Hyperliquid's docs.
    "wallet ids, by alignment, key (time, tid)": (
        f"{_IDS_ALIGNED}, coin varchar(40), side varchar(1), px numeric, sz numeric, hash bytea, "
        "PRIMARY KEY (time, tid)",
        f"SELECT time, tid, wb.id, ws.id, coin, side, px, sz, hash FROM trade_snapshots t {_WALLETS}",
    ),
}


def load_0011(url: str, trades: Sequence[Trade], batch: int) -> None:
    """COPY into the 0011 schema (hash, buyer, seller as bytea in the hexbytes encoding;
    the simulator's trades always name both wallets)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        ensure_partitions(conn, "trade_snapshots", {day_of(t.time) for t in trades})
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for chunk in batches(trades, batch):
            data = "".join(
                "\t".join([*(str(v) for v in t[:6]), *(copy_field(v or "") for v in t[6:])]) + "\n"
                for t in chunk
            )
            cursor.copy_expert(
                f"COPY trade_snapshots ({COLUMNS}) FROM STDIN", io.BytesIO(data.encode())
            )
            raw.commit()
    finally:
        raw.close()
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=3_000, help="trades/s of exchange time")
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    started = time.perf_counter()
    trades = generate(args.trades, args.rate, args.seed)
    n = len(trades)
    wallets = {t.buyer for t in trades} | {t.seller for t in trades}
    print(
        f"machine: {platform.machine()} cpus={os.cpu_count()} (under load: other jobs run)\n"
        f"generated {n:,} trades ({len(wallets):,} distinct wallets, "
        f"{len({t.hash for t in trades}):,} distinct hashes) in "
        f"{time.perf_counter() - started:.1f} s"
    )
    before_db, head_db = PostgresDatabase(), PostgresDatabase()
    try:
        migrate.upgrade(load_settings(database_url=before_db.url), "0009")
        # 0011: the layout these candidates were measured from (0012 built the chosen one).
        migrate.upgrade(load_settings(database_url=head_db.url), "0011")
        load_before(before_db.url, trades, args.batch)
        load_0011(head_db.url, trades, args.batch)
        engine = create_engine(before_db.url)
        before = sizes(engine)["total"] / n
        engine.dispose()
        engine = create_engine(head_db.url)
        head = sizes(engine)["total"] / n
        print(f"{'0009 (before)':>42}: {before:6.1f} bytes/trade")
        print(f"{'0011 database':>42}: {head:6.1f} bytes/trade ({head / before:.3f})")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("CREATE TABLE wallets (id serial PRIMARY KEY, address bytea UNIQUE)"))
            conn.execute(
                text(
                    "INSERT INTO wallets (address) SELECT buyer FROM trade_snapshots "
                    "UNION SELECT seller FROM trade_snapshots"
                )
            )
            conn.execute(text("CREATE TABLE coins (id smallserial PRIMARY KEY, name text UNIQUE)"))
            conn.execute(text("INSERT INTO coins (name) SELECT DISTINCT coin FROM trade_snapshots"))
            for i, (label, (columns, select)) in enumerate(LAYOUTS.items()):
                conn.execute(text(f"CREATE TABLE layout_{i} ({columns})"))
                conn.execute(text(f"INSERT INTO layout_{i} {select} ORDER BY time, coin, tid"))
                conn.execute(text(f"VACUUM ANALYZE layout_{i}"))
                rows, total, heap, index = conn.execute(
                    text(
                        f"SELECT count(*), pg_total_relation_size('layout_{i}'), "
                        f"pg_table_size('layout_{i}'), pg_indexes_size('layout_{i}') "
                        f"FROM layout_{i}"
                    )
                ).one()
                assert rows == n, (label, rows)
                print(
                    f"{label:>42}: {total / n:6.1f} bytes/trade (heap {heap / n:.1f}, "
                    f"key {index / n:.1f}); {total / n / before:.3f} of before"
                )
            for table in ("wallets", "coins"):
                count, size = conn.execute(
                    text(f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}")
                ).one()
                print(f"{'dictionary ' + table:>42}: {count:,} rows, {size:,} bytes in all")
        engine.dispose()
    finally:
        before_db.close()
        head_db.close()


if __name__ == "__main__":
    main()
