"""Ingester throughput and memory: simulator → ``hyperwatch ingest`` → Redis broker.

For each batch size, ``--runs`` times: a private redis-server, a simulator process at the
offered rate, and a real ``hyperwatch ingest`` process. After a warm-up, trades published
per second are read from the ingester's own ``/metrics`` (events that reached the broker,
not merely parsed) over a measuring window, against trades generated per second by the
simulator in the same window; peak RSS is the kernel's high-water mark (VmHWM) of the
ingester process; slow-consumer closes show whether it kept up. Prints the median run per
batch size as a table.

    .venv/bin/python bench/bench_ingest.py                      # 110k trades/s offered
    .venv/bin/python bench/bench_ingest.py --rate 130000 --batch-sizes 2000 --runs 1
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.services import RedisServer, free_port  # noqa: E402
from workers.simulator.runner import SimulatorProcess  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
PUBLISHED = re.compile(r'^hyperwatch_ingest_events_published_total\{kind="trades"\} (\S+)$', re.M)


@dataclass
class Run:
    batch: int
    offered: float
    generated_per_s: float
    published_per_s: float
    peak_rss_mb: float
    cpu_pct: float
    slow_closes: int
    exit_code: int


def published(port: int) -> float:
    match = PUBLISHED.search(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
    return float(match.group(1)) if match else 0.0


def generated(sim: SimulatorProcess) -> dict[str, int]:
    return dict(httpx.get(f"{sim.base_url}/_sim/stats", timeout=5).json())


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_run(
    batch: int,
    rate: float,
    batch_ms: int,
    warmup: float,
    window: float,
    extra_env: dict[str, str] | None = None,
) -> Run:
    """One measured run; ``extra_env`` adds settings (bench_record.py: RECORD_DIR)."""
    redis = RedisServer().start()
    sim = SimulatorProcess.start(
        ["--rate", str(rate), "--coins", "BTC,ETH,SOL", "--log-level", "warning"], python=PYTHON
    )
    health = free_port()
    env = dict(
        os.environ,
        HL_WS_URL=sim.ws_url,
        HL_INFO_URL=sim.info_url,
        REDIS_URL=redis.url,
        COINS="BTC,ETH,SOL",
        INGEST_BATCH_SIZE=str(batch),
        INGEST_BATCH_MS=str(batch_ms),
        INGESTER_HEALTH_PORT=str(health),
        LOG_LEVEL="WARNING",
        **(extra_env or {}),
    )
    with tempfile.TemporaryDirectory() as cwd:
        ingester = subprocess.Popen([PYTHON, "-m", "workers.cli", "ingest"], env=env, cwd=cwd)
        try:
            time.sleep(warmup)
            proc = psutil.Process(ingester.pid)
            cpu0, gen0, pub0, t0 = (
                proc.cpu_times(),
                generated(sim),
                published(health),
                time.monotonic(),
            )
            time.sleep(window)
            cpu1, gen1, pub1, t1 = (
                proc.cpu_times(),
                generated(sim),
                published(health),
                time.monotonic(),
            )
            rss = peak_rss_mb(ingester.pid)
        finally:
            ingester.send_signal(signal.SIGTERM)
            code = ingester.wait(30)
            sim.stop()
            redis.close()
    elapsed = t1 - t0
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / elapsed * 100
    return Run(
        batch=batch,
        offered=rate,
        generated_per_s=(gen1["trades_generated"] - gen0["trades_generated"]) / elapsed,
        published_per_s=(pub1 - pub0) / elapsed,
        peak_rss_mb=rss,
        cpu_pct=cpu,
        slow_closes=gen1["slow_consumer_closes"],
        exit_code=code,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=110_000, help="offered trades/s")
    parser.add_argument("--batch-sizes", default="100,500,2000,5000")
    parser.add_argument("--batch-ms", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--window", type=float, default=8.0)
    args = parser.parse_args()
    rows = []
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        runs = [
            one_run(batch, args.rate, args.batch_ms, args.warmup, args.window)
            for _ in range(args.runs)
        ]
        for r in runs:
            print(
                f"  run: batch={r.batch} published={r.published_per_s:,.0f}/s rss={r.peak_rss_mb:.0f} MB",
                flush=True,
            )
        rows.append((batch, runs))
    print(
        f"\noffered {args.rate:,.0f} trades/s, batch window {args.batch_ms} ms, median of {args.runs} run(s)"
    )
    print(
        f"{'batch':>6} {'generated/s':>12} {'published/s':>12} {'peak RSS MB':>12} {'CPU %':>6} {'slow closes':>11} {'exit':>5}"
    )
    for batch, runs in rows:
        pub = statistics.median(r.published_per_s for r in runs)
        gen = statistics.median(r.generated_per_s for r in runs)
        rss = statistics.median(r.peak_rss_mb for r in runs)
        cpu = statistics.median(r.cpu_pct for r in runs)
        slow = max(r.slow_closes for r in runs)
        codes = ",".join(sorted({str(r.exit_code) for r in runs}))
        print(
            f"{batch:>6} {gen:>12,.0f} {pub:>12,.0f} {rss:>12.0f} {cpu:>6.0f} {slow:>11} {codes:>5}"
        )


if __name__ == "__main__":
    main()
