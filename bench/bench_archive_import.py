"""Archive import (`hyperwatch archive import`) against a plain COPY of the same rows.

1. Generates ``--trades`` trades with the simulator's market generator and writes them as
   real-shaped ``node_fills_by_block`` hour files (two fills per trade, LZ4 level 9 as the
   real objects; ``--level`` to write faster), cached under ``--cache`` by parameters.
2. Imports them with the real command, in a child process, into a fresh migrated
   PostgreSQL database: trades/s (derived trades ÷ wall time of the whole command, start-up
   included) and the child's peak RSS.
3. In the same run, COPYs the very rows the import stored (read back from the database)
   into the same table of a second fresh database, in transactions of the same size, with
   its day partitions made beforehand: rows/s of COPY alone, the ceiling an import can
   reach. Reports the ratio.
4. Reruns the import (files skipped as done) and a forced rerun (every row read again and
   found stored): both must add 0 rows. Checks counts and bars against the trades.

    .venv/bin/python bench/bench_archive_import.py [--trades 2000000] [--batch 50000] [--jobs N]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, create_engine, text

from models import migrate
from models.partitions import DAY_MS, day_of, ensure_partitions
from settings import load_settings
from tests.support.services import PostgresDatabase
from workers.simulator.archive import HourlyArchiveWriter
from workers.simulator.market import Market
from workers.simulator.universe import Universe

COINS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "HYPE", "AVAX", "ARB", "kPEPE")
START_MS = 1_754_006_400_000  # 2025-08-01T00:00:00Z
# The stored columns as they are since 0012 (buyer/seller as wallet ids): the plain COPY
# writes exactly the rows the import stored, wallet ids included.
COLUMNS = "coin, time, tid, px, sz, side, hash, buyer_id, seller_id"


def generate(
    root: Path, trades: int, per_block: int, block_ms: float, level: int, seed: int
) -> int:
    """Write ``trades`` trades as hour files under ``root``; returns the trades written."""
    market = Market(Universe.build(COINS), seed=seed, trades_per_block=per_block)
    writer = HourlyArchiveWriter(root, compression_level=level)
    index = 0
    while writer.stats.trades < trades:
        block = market.make_block(START_MS + int(index * block_ms))
        index += 1
        ordered = [t for coin_trades in block.by_coin.values() for t in coin_trades]
        writer.block(block.time, ordered[: trades - writer.stats.trades])
    writer.close()
    return writer.stats.trades


def cached_archive(args: argparse.Namespace) -> Path:
    name = f"t{args.trades}-b{args.per_block}-ms{args.block_ms:g}-l{args.level}-s{args.seed}"
    root = Path(args.cache) / name
    if not (root / "complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        started = time.perf_counter()
        written = generate(root, args.trades, args.per_block, args.block_ms, args.level, args.seed)
        (root / "complete").write_text(str(written))
        print(f"generated {written:,} trades in {time.perf_counter() - started:,.1f} s → {root}")
    return root


def run_import(url: str, archive: Path, batch: int, *extra: str) -> tuple[float, int, float, str]:
    """The CLI in a child process: (seconds, peak RSS in MB of that child, its CPU seconds,
    stdout)."""
    env = {**os.environ, "DATABASE_URL": url}
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "workers.cli", "archive", "import", str(archive),
         "--batch-size", str(batch), "--no-progress", *extra],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"import failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
    # ru_maxrss of children is the largest child so far: run the import first (the bench's
    # other children are smaller) and report it only when it grew.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    return seconds, max(usage.ru_maxrss, before) // 1024, cpu, proc.stdout


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM trade_snapshots")).scalar_one())


def plain_copy(url: str, rows: bytes, batch: int, days: set) -> float:
    """COPY ``rows`` (COPY text) into trade_snapshots, ``batch`` rows a transaction."""
    engine = create_engine(url)
    with engine.begin() as conn:
        ensure_partitions(conn, "trade_snapshots", days)
    lines = rows.splitlines(keepends=True)
    chunks = [b"".join(lines[i : i + batch]) for i in range(0, len(lines), batch)]
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        for chunk in chunks:
            cursor.copy_expert(f"COPY trade_snapshots ({COLUMNS}) FROM STDIN", io.BytesIO(chunk))
            raw.commit()
        seconds = time.perf_counter() - started
    finally:
        raw.close()
    assert stored(engine) == len(lines)
    engine.dispose()
    return len(lines) / seconds


def check_bars(engine: Engine, trades: int) -> None:
    with engine.connect() as conn:
        count, volume = conn.execute(
            text("SELECT sum(trade_count), sum(volume) FROM trade_bars")
        ).one()
        expected_volume = conn.execute(text("SELECT sum(sz) FROM trade_snapshots")).scalar_one()
    assert int(count) == trades, (count, trades)
    assert volume == expected_volume, (volume, expected_volume)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(os.cpu_count() or 1, 4),
        help="archive import --jobs (default as the command's: the CPUs, at most 4)",
    )
    parser.add_argument("--per-block", type=int, default=4, help="trades per block")
    parser.add_argument("--block-ms", type=float, default=70.0)
    parser.add_argument("--level", type=int, default=9, help="LZ4 level of the generated files")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "hw-bench-archive"))
    args = parser.parse_args()

    archive = cached_archive(args)
    files = sorted(archive.rglob("*.lz4"))
    size = sum(f.stat().st_size for f in files)
    imported_db, copy_db = PostgresDatabase(), PostgresDatabase()
    try:
        for url in (imported_db.url, copy_db.url):
            migrate.upgrade(load_settings(database_url=url))
        engine = create_engine(imported_db.url)

        jobs = ("--jobs", str(args.jobs))
        seconds, rss_mb, cpu, out = run_import(imported_db.url, archive, args.batch, *jobs)
        trades = stored(engine)
        print(out.rstrip())
        check_bars(engine, trades)

        buffer = io.BytesIO()
        raw = engine.raw_connection()
        query = f"COPY (SELECT {COLUMNS} FROM trade_snapshots) TO STDOUT"  # noqa: S608
        raw.cursor().copy_expert(query, buffer)
        raw.close()
        with engine.connect() as conn:
            low, high = conn.execute(text("SELECT min(time), max(time) FROM trade_snapshots")).one()
        days = {day_of(d * DAY_MS) for d in range(low // DAY_MS, high // DAY_MS + 1)}
        copy_rate = plain_copy(copy_db.url, buffer.getvalue(), args.batch, days)

        rerun_s, _, _, _ = run_import(imported_db.url, archive, args.batch)
        after_rerun = stored(engine)
        forced_s, _, _, _ = run_import(imported_db.url, archive, args.batch, "--force")
        after_forced = stored(engine)
        check_bars(engine, trades)
        engine.dispose()
    finally:
        imported_db.close()
        copy_db.close()

    rate = trades / seconds
    print()
    print(f"machine: {platform.machine()} cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f}")
    print(f"archive: {len(files)} hour files, {size / 1e6:,.1f} MB LZ4, {trades:,} trades")
    print(
        f"import        : {rate:12,.0f} trades/s  ({seconds:,.2f} s, batch {args.batch:,}, "
        f"jobs {args.jobs})"
    )
    print(f"import CPU    : {cpu / trades * 1e6:12.2f} µs/trade (the import process, all threads)")
    print(f"plain COPY    : {copy_rate:12,.0f} rows/s    (same rows, same batch, same table)")
    print(f"ratio         : {rate / copy_rate:12.0%}")
    print(f"peak RSS      : {rss_mb:12,} MB  (the import process; with --jobs, the largest)")
    print(
        f"rerun         : {after_rerun - trades:12,} rows added ({rerun_s:,.2f} s, files skipped)"
    )
    print(
        f"forced rerun  : {after_forced - trades:12,} rows added ({forced_s:,.2f} s, every row read)"
    )


if __name__ == "__main__":
    main()
