"""Storage cost of trades: bytes per trade in PostgreSQL before and after the compact-row
migration, in the same run, and (when the cold tier exists) in Parquet.

1. Generates ``--trades`` trades with the simulator's market generator (real-shaped: 66-char
   sweep hashes shared by a sweep, 42-char addresses from its participant pool, the coins'
   tick sizes), ``--rate`` trades per second of exchange time, so they fill day partitions
   as a live feed at that rate would.
2. **before**: a fresh database migrated to ``--before`` (0009, the schema before compact
   rows) is loaded by COPY of the rows as the code of that schema wrote them (``0x…`` text),
   in batches of ``--batch``; and, interleaved, a database at head by COPY of the text the
   head's write path renders (prepared ahead): the database's side, before and after, twice.
3. **after**: a fresh database migrated to head is loaded through the real write path,
   ``TradeRepository.add_batch`` (COPY), in the same batches; its sizes are reported.
4. Both are ``VACUUM ANALYZE``d and measured with ``pg_total_relation_size`` summed over
   the day partitions (heap + indexes + TOAST), split into heap and each index.
5. **cold**: every day of the "after" database is exported to Parquet by the cold tier's
   real export (read, write, verify: domain/coldtier/export.py): bytes per trade of the
   files and the export's rows/s.

    .venv/bin/python bench/bench_storage.py [--trades 1000000] [--rate 3000] [--batch 20000]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, create_engine, text

from domain.coldtier.export import export_day
from events import Trade
from models import migrate
from models.db import get_database
from models.partitions import day_of, ensure_partitions
from models.repositories import TradeRepository
from models.repositories.trades import swap_ids
from models.repositories.wallet_ids import ids_for
from settings import load_settings
from tests.support.services import PostgresDatabase
from workers.simulator.market import Market
from workers.simulator.universe import Universe

COINS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "HYPE", "AVAX", "ARB", "kPEPE")
START_MS = 1_754_006_400_000  # 2025-08-01T00:00:00Z
COLUMNS = "coin, time, tid, px, sz, side, hash, buyer, seller"
# Head (0012): buyer and seller as ids into the wallet dictionary.
HEAD_COLUMNS = "coin, time, tid, px, sz, side, hash, buyer_id, seller_id"
GB = 1e9


def generate(trades: int, rate: int, seed: int, per_block: int = 20) -> list[Trade]:
    """``trades`` simulated trades, ``rate`` a second of exchange time."""
    market = Market(Universe.build(COINS), seed=seed, trades_per_block=per_block)
    block_ms = 1000 * per_block / rate
    out: list[Trade] = []
    index = 0
    while len(out) < trades:
        block = market.make_block(START_MS + int(index * block_ms))
        index += 1
        for t in block.trades:
            buyer, seller = t["users"]
            out.append(
                Trade(t["coin"], t["time"], t["tid"], Decimal(t["px"]), Decimal(t["sz"]),
                      t["side"], t["hash"], buyer, seller)
            )  # fmt: skip
    return out[:trades]


def batches(trades: Sequence[Trade], size: int) -> Iterator[Sequence[Trade]]:
    for start in range(0, len(trades), size):
        yield trades[start : start + size]


def old_copy_text(rows: Sequence[Trade]) -> bytes:
    """The rows as the 0009-schema write path sent them: every value's ``str``."""
    return "".join("\t".join(str(v) for v in row) + "\n" for row in rows).encode()


def timed_copy(engine: Engine, chunks: Sequence[bytes], columns: str) -> float:
    """COPY each chunk into trade_snapshots (``columns``), a transaction a chunk; returns
    the seconds the COPYs took. Disposes of ``engine``."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        for chunk in chunks:
            cursor.copy_expert(f"COPY trade_snapshots ({columns}) FROM STDIN", io.BytesIO(chunk))
            raw.commit()
        return time.perf_counter() - started
    finally:
        raw.close()
        engine.dispose()


def load_before(url: str, trades: Sequence[Trade], batch: int) -> float:
    """COPY into the 0009 schema, a transaction a batch; returns trades/s (COPY only)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        ensure_partitions(conn, "trade_snapshots", {day_of(t.time) for t in trades})
    chunks = [old_copy_text(chunk) for chunk in batches(trades, batch)]
    return len(trades) / timed_copy(engine, chunks, COLUMNS)


def load_after_copy(url: str, trades: Sequence[Trade], batch: int) -> float:
    """COPY into the head schema of the text its write path renders (prepared ahead, as the
    archive import does, the wallet ids swapped in), a transaction a batch; returns
    trades/s (COPY only): the database's side, comparable with :func:`load_before`."""
    engine = create_engine(url)
    with engine.begin() as conn:
        ensure_partitions(conn, "trade_snapshots", {day_of(t.time) for t in trades})
    # The wallets' ids as the write path finds them (the dictionary filled, not timed).
    db = get_database(load_settings(database_url=url))
    with db.session() as s:
        ids = ids_for(s, (a for t in trades for a in t[7:]))
    db.dispose()
    prepared = [TradeRepository.prepare(chunk) for chunk in batches(trades, batch)]
    chunks = [swap_ids(p.copy_data, [ids[a] for a in p.addresses]) for p in prepared]
    return len(trades) / timed_copy(engine, chunks, HEAD_COLUMNS)


def load_after(url: str, trades: Sequence[Trade], batch: int) -> float:
    """The real write path at head; returns trades/s (prepare + add_batch)."""
    db = get_database(load_settings(database_url=url))
    started = time.perf_counter()
    for chunk in batches(trades, batch):
        with db.session() as s:
            result = TradeRepository(s).add_batch(TradeRepository.prepare(chunk))
        assert result.new == len(chunk), result
    seconds = time.perf_counter() - started
    db.dispose()
    return len(trades) / seconds


def export_cold(url: str, trades: Sequence[Trade]) -> tuple[int, float]:
    """Every day of the trades exported to Parquet: (bytes of the files, rows/s)."""
    db = get_database(load_settings(database_url=url))
    total = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hw-cold-") as cold:
        for day in sorted({day_of(t.time) for t in trades}):
            total += export_day(db, Path(cold), "trade_snapshots", day).bytes
    seconds = time.perf_counter() - started
    db.dispose()
    return total, len(trades) / seconds


def sizes(engine: Engine) -> dict[str, int]:
    """Bytes of trade_snapshots' partitions: total, heap (+TOAST, FSM, VM) and per index."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE trade_snapshots"))
        parts = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT c.oid::regclass::text FROM pg_inherits i "
                    "JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'trade_snapshots'::regclass"
                )
            )
        ]
        out = {"total": 0, "heap": 0}
        for part in parts:
            out["total"] += conn.execute(
                text("SELECT pg_total_relation_size(CAST(:p AS regclass))"), {"p": part}
            ).scalar_one()
            out["heap"] += conn.execute(
                text("SELECT pg_table_size(CAST(:p AS regclass))"), {"p": part}
            ).scalar_one()
            for name, size in conn.execute(
                text(
                    "SELECT i.indexrelid::regclass::text, pg_relation_size(i.indexrelid) "
                    "FROM pg_index i WHERE i.indrelid = CAST(:p AS regclass)"
                ),
                {"p": part},
            ):
                # ix_trade_snapshots_p20250801_time → the index's kind, per partition summed.
                kind = name.split("_", 3)[-1] if name.startswith("trade_snapshots_p") else name
                kind = "pkey" if kind.endswith("pkey") else kind
                out[f"index {kind}"] = out.get(f"index {kind}", 0) + int(size)
        return out


def report(label: str, size: dict[str, int], trades: int, rate: int) -> float:
    per = size["total"] / trades
    parts = ", ".join(f"{k} {v / trades:.1f}" for k, v in sorted(size.items()) if k != "total")
    print(
        f"{label:>7}: {per:6.1f} bytes/trade ({parts}); "
        f"{per * rate * 86_400 / GB:5.1f} GB/day at {rate:,} trades/s"
    )
    return per


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=3_000, help="trades/s of exchange time")
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--before", default="0009", help="the revision measured as 'before'")
    args = parser.parse_args()
    started = time.perf_counter()
    trades = generate(args.trades, args.rate, args.seed)
    span_s = (trades[-1].time - trades[0].time) / 1000
    print(
        f"machine: {platform.machine()} cpus={os.cpu_count()} (under load: other jobs run)\n"
        f"generated {len(trades):,} trades over {span_s:,.0f} s of exchange time "
        f"in {time.perf_counter() - started:.1f} s"
    )
    before_db, after_db, copy_db = PostgresDatabase(), PostgresDatabase(), PostgresDatabase()
    try:
        migrate.upgrade(load_settings(database_url=before_db.url), args.before)
        migrate.upgrade(load_settings(database_url=after_db.url))
        migrate.upgrade(load_settings(database_url=copy_db.url))
        # Plain COPY before and after, twice interleaved (the machine is shared): the
        # database's side of the write path; then the whole write path at head.
        before_rates, copy_rates = [], []
        for round_ in range(2):
            if round_:
                for db in (before_db, copy_db):
                    engine = create_engine(db.url)
                    with engine.begin() as conn:
                        conn.execute(text("TRUNCATE trade_snapshots"))
                    engine.dispose()
            before_rates.append(load_before(before_db.url, trades, args.batch))
            copy_rates.append(load_after_copy(copy_db.url, trades, args.batch))
        after_rate = load_after(after_db.url, trades, args.batch)
        results = {}
        for label, db in (("before", before_db), ("after", after_db)):
            engine = create_engine(db.url)
            results[label] = sizes(engine)
            engine.dispose()
        cold_bytes, export_rate = export_cold(after_db.url, trades)
    finally:
        before_db.close()
        after_db.close()
        copy_db.close()
    print(
        "plain COPY (two interleaved rounds), trades/s: before "
        + " / ".join(f"{r:,.0f}" for r in before_rates)
        + "; after "
        + " / ".join(f"{r:,.0f}" for r in copy_rates)
        + f"\nafter, the whole write path (prepare + add_batch): {after_rate:,.0f} trades/s"
    )
    b = report("before", results["before"], len(trades), args.rate)
    a = report("after", results["after"], len(trades), args.rate)
    print(f"after/before: {a / b:.2f}")
    c = cold_bytes / len(trades)
    print(
        f"   cold: {c:6.1f} bytes/trade (Parquet, zstd); "
        f"{c * args.rate * 86_400 / GB:5.1f} GB/day at {args.rate:,} trades/s; "
        f"export (read, write, verify) {export_rate:,.0f} trades/s"
    )


if __name__ == "__main__":
    main()
