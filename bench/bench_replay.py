"""Replay ``--max`` into PostgreSQL: trades/s stored, and frames/s parsed alone.

1. Writes a recording (``runtime/recording.py`` format) of ``--trades`` trades made by the
   simulator's market generator: one ``trades`` frame per coin per block, as the simulator
   sends them (``--per-block`` trades a block over ``--coins`` coins; the defaults give
   frames of ~2,000 trades over 3 coins, what ``bench_record.py``'s 100k trades/s run
   recorded), plus an ``activeAssetCtx`` frame per coin a second.
2. Parsing alone, in this process: ``parse_frame`` over every frame (frames/s, trades/s),
   then the player with its batches discarded (parse, dedup, gaps, batches).
3. ``hyperwatch replay --into db --max`` in a child process into a fresh database, ``--runs``
   times interleaved ``--jobs`` 1 and N (which goes first alternates); each run's trades/s
   from the command's own line and wall time, and the load average around it. Each run is
   followed by a second replay of the same files into the same database: it must add 0.
   ``--pipeline`` adds, in each round, the path before ``--into db``: ``replay --max``
   through two Celery workers (``-c 2``), ``bench_record.replay_into_postgres``.

    .venv/bin/python bench/bench_replay.py                     # 2,000,000 trades, 3 coins
    .venv/bin/python bench/bench_replay.py --coins 9 --per-block 180   # small frames
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import create_engine, text  # noqa: E402

from models import migrate  # noqa: E402
from runtime.hyperliquid.protocol import _trades, parse_frame  # noqa: E402
from runtime.metrics import Metrics  # noqa: E402
from runtime.recording import compress, frame_line, header_line, marker_line  # noqa: E402
from settings import load_settings  # noqa: E402
from tests.support.services import PostgresDatabase  # noqa: E402
from workers.ingester.broker import Target  # noqa: E402
from workers.replay.player import Player  # noqa: E402
from workers.replay.reading import records  # noqa: E402
from workers.simulator.market import Market  # noqa: E402
from workers.simulator.universe import Universe  # noqa: E402

COINS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "HYPE", "AVAX", "ARB", "kPEPE")
START_MS = 1_787_052_600_000  # 2026-08-18T11:30:00Z
PYTHON = str(ROOT / ".venv" / "bin" / "python")
LINE = re.compile(r"([\d,]+) trades \(([\d,]+) new, ([\d,]+) already stored; ([\d,]+) trades/s\)")


def write_recording(path: Path, trades: int, coins: int, per_block: int, block_ms: int) -> int:
    """The recording (module doc); returns the trades in it."""
    market = Market(Universe.build(COINS[:coins]), seed=7, trades_per_block=per_block)
    written = 0
    pending: list[bytes] = [marker_line(START_MS * 1_000_000, "0.1", "O", b'{"socket":0}')]
    chunks = [compress(header_line("bench", "bench-host", START_MS * 1_000_000))]
    size = 0
    index = 0
    last_ctx = -1
    while written < trades:
        time_ms = START_MS + index * block_ms
        block = market.make_block(time_ms)
        index += 1
        recv_ns = (time_ms + 50) * 1_000_000
        for coin_trades in block.by_coin.values():
            frame = orjson.dumps({"channel": "trades", "data": coin_trades})
            pending.append(frame_line(recv_ns, "0.1", frame))
            size += len(pending[-1])
            written += len(coin_trades)
        if time_ms // 1000 != last_ctx:
            last_ctx = time_ms // 1000
            for coin in COINS[:coins]:
                ctx = {"funding": "0.0000125", "openInterest": "1000.5", "prevDayPx": "1.0",
                       "dayNtlVlm": "1.0", "premium": "0.0001", "oraclePx": "1.0",
                       "markPx": "1.0", "midPx": "1.0", "impactPxs": ["1.0", "1.0"]}  # fmt: skip
                frame = orjson.dumps(
                    {"channel": "activeAssetCtx", "data": {"coin": coin, "ctx": ctx}}
                )
                pending.append(frame_line(recv_ns, "0.1", frame))
        if size > 4 << 20:
            chunks.append(compress(b"".join(pending)))
            pending, size = [], 0
    chunks.append(compress(b"".join(pending)))
    path.write_bytes(b"".join(chunks))
    return written


def parse_alone(path: Path) -> None:
    loaded = list(records([path], None, None, []))
    frames = [r.payload for r in loaded if r.kind == "F"]
    started, cpu = time.perf_counter(), time.process_time()
    trades = 0
    for raw in frames:
        pf = parse_frame(raw, 0)
        if pf.channel == "trades":
            trades += len(pf.events)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"parse_frame alone: {len(frames):,} frames in {seconds:.2f} s = "
        f"{len(frames) / seconds:,.0f} frames/s, {trades / seconds:,.0f} trades/s "
        f"(of CPU time: {len(frames) / cpu:,.0f} frames/s, {trades / cpu:,.0f} trades/s)",
        flush=True,
    )
    # The general path alone (what every frame took before the msgspec fast path).
    cpu = time.process_time()
    for raw in frames:
        if raw.startswith(b'{"channel":"trades"'):
            _trades(orjson.loads(raw), 0, raw)
    cpu = time.process_time() - cpu
    print(f"  the general path on the trades frames: {trades / cpu:,.0f} trades/s of CPU time")

    def discard(target: Target, body: bytes, argsrepr: str) -> None:
        return None

    player = Player("bench", discard, Metrics(), 2000, 100, 100_000)
    started, cpu = time.perf_counter(), time.process_time()
    result = player.play(loaded)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"player alone (parse, dedup, gaps, batches encoded, send discarded): "
        f"{result.frames / seconds:,.0f} frames/s, {result.trades / seconds:,.0f} trades/s "
        f"(of CPU time: {result.trades / cpu:,.0f} trades/s)",
        flush=True,
    )


def replay_db(url: str, path: Path, jobs: int) -> tuple[int, int, int, float, float, float]:
    """(trades, new, already stored, the command's trades/s, wall seconds, CPU seconds of
    the command and its processes — PostgreSQL's own not included)."""
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    out = subprocess.run(
        [PYTHON, "-m", "workers.cli", "replay", "--into", "db", "--max", "--jobs", str(jobs),
         str(path)],
        env=env, cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    found = LINE.search(out.stdout)
    if out.returncode != 0 or found is None:
        raise SystemExit(f"replay failed ({out.returncode}): {out.stdout}{out.stderr}")
    trades, new, dup, rate = (int(g.replace(",", "")) for g in found.groups())
    return trades, new, dup, float(rate), wall, cpu


def stored(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM trade_snapshots")).scalar_one())
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=2_000_000)
    parser.add_argument("--coins", type=int, default=3)
    parser.add_argument("--per-block", type=int, default=6_300, help="trades a block")
    parser.add_argument("--block-ms", type=int, default=63, help="exchange ms between blocks")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--skip-parse", action="store_true")
    parser.add_argument("--pipeline", action="store_true", help="also replay through workers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "20260818T11Z-bench.hwrec.lz4"
        started = time.perf_counter()
        trades = write_recording(path, args.trades, args.coins, args.per_block, args.block_ms)
        frames = sum(1 for r in records([path], None, None, []) if r.kind == "F")
        print(
            f"recording: {trades:,} trades in {frames:,} frames over {args.coins} coins, "
            f"{path.stat().st_size / 1e6:.1f} MB ({time.perf_counter() - started:.0f} s to write)",
            flush=True,
        )
        if not args.skip_parse:
            parse_alone(path)
        order: list[int] = [1, args.jobs] if args.jobs != 1 else [1]
        if args.pipeline:
            order.append(0)  # 0: through the workers
        for run in range(args.runs):
            for jobs in order if run % 2 == 0 else order[::-1]:
                if jobs == 0:
                    from bench_record import replay_into_postgres

                    load = os.getloadavg()[0]
                    n, seconds = replay_into_postgres([path], 2, Path(tmp))
                    print(
                        f"run {run + 1} --into pipeline (2 workers -c 2): {n:,} trades at "
                        f"{n / seconds:,.0f} trades/s; load {load:.2f} → "
                        f"{os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
                    continue
                database = PostgresDatabase()
                try:
                    migrate.upgrade(load_settings(database_url=database.url))
                    load = os.getloadavg()[0]
                    n, new, _dup, rate, wall, cpu = replay_db(database.url, path, jobs)
                    load_after = os.getloadavg()[0]
                    again = replay_db(database.url, path, jobs)
                    rows = stored(database.url)
                finally:
                    database.close()
                print(
                    f"run {run + 1} --jobs {jobs}: {n:,} trades ({new:,} new) at {rate:,.0f} "
                    f"trades/s ({n / wall:,.0f}/s of wall time with start-up; "
                    f"{cpu / n * 1e6:.2f} µs of CPU a trade, all its processes); load "
                    f"{load:.2f} → {load_after:.2f}; replayed again: {again[1]:,} new, "
                    f"{again[2]:,} already stored; {rows:,} rows",
                    flush=True,
                )
                if again[1] != 0 or rows != new:
                    raise SystemExit("the second replay added rows")


if __name__ == "__main__":
    main()
