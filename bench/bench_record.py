"""Record and replay: the recorder's cost on the ingester, and how fast a recording replays.

1. Recorder overhead: ``bench_ingest.one_run`` (simulator → ``hyperwatch ingest`` → Redis) at
   the offered rate, runs with and without RECORD_DIR interleaved in the same session (which
   goes first alternates);
   published trades/s, peak RSS and CPU per variant (medians), the frames the recorder
   dropped, and the recording's bytes per trade (for disk sizing).
2. Replay ``--max`` into PostgreSQL: the recording of the last recorded run, played by
   ``hyperwatch replay --max`` into a fresh database drained by ``--workers`` Celery workers
   (``-c 2`` each); trades/s from the start of the replay to the last batch confirmed. Then
   ``hyperwatch replay --into db`` (no workers, parsing over processes) of the same files
   into another fresh database, trades/s as it reports them (``bench_replay.py`` measures
   that path alone, interleaved, on a recording of any size).
3. The recorder's own work on those frames, inline (CPU per trade), and parsing alone: the
   same recording through the player with a send that discards
   (parse + dedup + gaps + batches + encoding: what the player's CPU costs), frames/s and
   trades/s; and ``parse_frame`` alone over the frames.

    .venv/bin/python bench/bench_record.py                          # 100k trades/s, 2 runs each
    .venv/bin/python bench/bench_record.py --runs 1 --skip-replay
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ingest import PYTHON, Run, one_run  # noqa: E402

from models import migrate  # noqa: E402
from runtime.clock import SYSTEM_CLOCK  # noqa: E402
from runtime.hyperliquid.protocol import parse_frame  # noqa: E402
from runtime.metrics import Metrics  # noqa: E402
from runtime.recording import compress, frame_line, read_records  # noqa: E402
from settings import load_settings  # noqa: E402
from tests.integration.celery.support import WorkerProcess, service_env  # noqa: E402
from tests.support.services import PostgresDatabase, RedisServer  # noqa: E402
from workers.ingester.broker import Target  # noqa: E402
from workers.ingester.recorder import Recorder  # noqa: E402
from workers.replay.cli import records  # noqa: E402
from workers.replay.player import Player  # noqa: E402

STORED = re.compile(r"stored: every batch confirmed in ([\d.]+) s")
REPLAYED = re.compile(r"([\d,]+) trades")


def overhead(args: argparse.Namespace, keep: Path) -> tuple[list[Run], list[Run], float]:
    plain: list[Run] = []
    recorded: list[Run] = []
    bytes_per_trade = float("nan")
    for i in range(args.runs):
        # Alternate which variant goes first: a loaded machine drifts within a pair too.
        for with_recorder in (False, True) if i % 2 == 0 else (True, False):
            if not with_recorder:
                plain.append(one_run(2000, args.rate, 100, args.warmup, args.window))
                print(f"  run {i + 1} without: {plain[-1].published_per_s:,.0f}/s "
                      f"{plain[-1].peak_rss_mb:.0f} MB", flush=True)  # fmt: skip
                continue
            shutil.rmtree(keep, ignore_errors=True)
            keep.mkdir(parents=True)
            env = {"RECORD_DIR": str(keep)}
            run = one_run(2000, args.rate, 100, args.warmup, args.window, env)
            recorded.append(run)
            size = sum(p.stat().st_size for p in keep.iterdir())
            trades = count_trades(keep)
            bytes_per_trade = size / trades if trades else float("nan")
            print(f"  run {i + 1} with:    {run.published_per_s:,.0f}/s {run.peak_rss_mb:.0f} MB; "
                  f"recording {size / 1e6:.1f} MB for {trades:,} trades", flush=True)  # fmt: skip
    return plain, recorded, bytes_per_trade


def count_trades(directory: Path) -> int:
    total = 0
    for path in directory.iterdir():
        for record in read_records(path):
            if record.kind == "F" and record.payload.startswith(b'{"channel":"trades"'):
                total += record.payload.count(b'"tid":')
    return total


def replay_into_postgres(files: list[Path], workers: int, workdir: Path) -> tuple[int, float]:
    redis = RedisServer().start()
    database = PostgresDatabase()
    started: list[WorkerProcess] = []
    try:
        migrate.upgrade(load_settings(database_url=database.url))
        env = service_env(
            None, database_url=database.url, redis_url=redis.url, log_level="WARNING",
            worker_metrics_port=0, data_dir=workdir / "var",
        )  # fmt: skip
        for n in range(workers):
            worker = WorkerProcess(workdir, env, name=f"w{n}", queues="ingest", concurrency=2)
            started.append(worker.wait_ready(60))
        out = subprocess.run(
            [PYTHON, "-m", "workers.cli", "replay", "--max", "--wait", "600", *map(str, files)],
            env=env, cwd=workdir, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if out.returncode != 0:
            raise SystemExit(f"replay failed: {out.stderr}{out.stdout}")
        stored = STORED.search(out.stdout)
        trades = REPLAYED.search(out.stdout.split("as replay:")[1])
        assert stored is not None and trades is not None, out.stdout
        return int(trades.group(1).replace(",", "")), float(stored.group(1))
    finally:
        for worker in started:
            worker.stop()
        database.close()
        redis.close()


DIRECT = re.compile(r"([\d,]+) trades \(([\d,]+) new, [\d,]+ already stored; ([\d,]+) trades/s\)")


def replay_direct(files: list[Path], workdir: Path) -> tuple[int, float]:
    """``replay --into db`` into a fresh database: (trades stored, the trades/s it printed)."""
    database = PostgresDatabase()
    try:
        migrate.upgrade(load_settings(database_url=database.url))
        env = service_env(None, database_url=database.url, log_level="WARNING",
                          data_dir=workdir / "var")  # fmt: skip
        out = subprocess.run(
            [PYTHON, "-m", "workers.cli", "replay", "--into", "db", *map(str, files)],
            env=env, cwd=workdir, capture_output=True, text=True, check=False,
        )  # fmt: skip
        found = DIRECT.search(out.stdout)
        if out.returncode != 0 or found is None:
            raise SystemExit(f"replay --into db failed: {out.stderr}{out.stdout}")
        return int(found.group(2).replace(",", "")), float(found.group(3).replace(",", ""))
    finally:
        database.close()


def parse_alone(files: list[Path]) -> tuple[int, int, float, float]:
    """Frames and trades through the player with a discarding send, and parse_frame alone."""

    def discard(target: Target, body: bytes, argsrepr: str) -> None:
        return None

    player = Player("bench", discard, Metrics(), 2000, 100, 100_000)
    loaded = list(records(files, None, None, []))
    started = time.perf_counter()
    result = player.play(loaded)
    played_s = time.perf_counter() - started
    frames = [r.payload for r in loaded if r.kind == "F"]
    started = time.perf_counter()
    for raw in frames:
        parse_frame(raw, 0)
    parse_s = time.perf_counter() - started
    return result.frames, result.trades, played_s, parse_s


def writer_cost(files: list[Path]) -> tuple[int, float]:
    """The recorder's work on the recorded frames, done inline (lane + one writer cycle per
    50 ms worth of frames, as the thread would): CPU seconds per trade, free of the noise of
    a loaded machine's thread scheduling."""
    frames = [r for r in records(files, None, None, []) if r.kind == "F"]
    trades = sum(r.payload.count(b'"tid":') for r in frames)
    with tempfile.TemporaryDirectory() as out:
        recorder = Recorder(Path(out), "bench", "bench", Metrics(), SYSTEM_CLOCK, 1 << 30)
        lane = recorder.lane(0)
        lane.opened("ws://bench")
        started = time.process_time()
        for n, record in enumerate(frames):
            lane.frame(record.payload, 0)
            if n % 4 == 3:
                recorder.write_pending()
        recorder.write_pending()
        spent = time.process_time() - started
        recorder.stop()
    return trades, spent


def stream_sizes(files: list[Path]) -> dict[str, tuple[int, int, int, float]]:
    """Per channel: frames, raw bytes, LZ4 bytes (its lines compressed alone, in 1 MB
    frames as the writer makes them), seconds spanned."""
    lines: dict[str, list[bytes]] = {}
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for record in records(files, None, None, []):
        if record.kind != "F":
            continue
        channel = parse_frame(record.payload, 0).channel or "other"
        lines.setdefault(channel, []).append(frame_line(record.recv_ns, "0.1", record.payload))
        first.setdefault(channel, record.recv_ns)
        last[channel] = record.recv_ns
    out = {}
    for channel, chunk in lines.items():
        raw = b"".join(chunk)
        packed = sum(len(compress(raw[i : i + (1 << 20)])) for i in range(0, len(raw), 1 << 20))
        out[channel] = (len(chunk), len(raw), packed, (last[channel] - first[channel]) / 1e9)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100_000, help="offered trades/s")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--window", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=2, help="replay: worker processes")
    parser.add_argument("--skip-replay", action="store_true")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        keep = Path(tmp) / "recording"
        plain, recorded, per_trade = overhead(args, keep)
        files = sorted(keep.iterdir())
        print(f"\nrecorder overhead at {args.rate:,.0f} trades/s offered, median of {args.runs}:")
        print(f"{'':>10} {'published/s':>12} {'peak RSS MB':>12} {'CPU %':>6} {'slow closes':>11}")
        for name, runs in (("without", plain), ("with", recorded)):
            print(
                f"{name:>10} {statistics.median(r.published_per_s for r in runs):>12,.0f} "
                f"{statistics.median(r.peak_rss_mb for r in runs):>12.0f} "
                f"{statistics.median(r.cpu_pct for r in runs):>6.0f} "
                f"{max(r.slow_closes for r in runs):>11}"
            )
        ratio = statistics.median(r.published_per_s for r in recorded) / statistics.median(
            r.published_per_s for r in plain
        )
        print(f"with/without: {ratio:.3f}; recording {per_trade:.1f} bytes per trade")
        for channel, (n, raw, packed, span) in sorted(stream_sizes(files).items()):
            print(
                f"  {channel:>16}: {n:,} frames, {raw / 1e6:.2f} MB raw, {packed / 1e6:.2f} MB "
                f"LZ4 over {span:.1f} s"
            )
        cost_trades, cost_s = writer_cost(files)
        print(
            f"recorder work inline: {cost_s * 1e3:.0f} ms CPU for {cost_trades:,} trades = "
            f"{cost_s / cost_trades * 1e5 * 100:.1f} % of one core at 100k trades/s"
        )
        frames, trades, played_s, parse_s = parse_alone(files)
        print(
            f"\nparsing alone ({frames:,} frames, {trades:,} trades): player "
            f"{frames / played_s:,.0f} frames/s = {trades / played_s:,.0f} trades/s; "
            f"parse_frame only {frames / parse_s:,.0f} frames/s"
        )
        if not args.skip_replay:
            stored, seconds = replay_into_postgres(files, args.workers, Path(tmp))
            print(
                f"replay --max into PostgreSQL ({args.workers} workers -c 2): {stored:,} trades "
                f"in {seconds:.1f} s = {stored / seconds:,.0f} trades/s"
            )
            new, rate = replay_direct(files, Path(tmp))
            print(f"replay --into db into PostgreSQL: {new:,} trades new at {rate:,.0f} trades/s")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
