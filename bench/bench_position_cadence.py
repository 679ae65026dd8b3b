"""Benchmark: the cadence the one position poller achieves for 10,000 tracked wallets.

A simulator with ``--wallets`` simulated users (their positions come from its trades), a
private redis-server and a fresh PostgreSQL database; every wallet tracked in the database
(none on WebSocket). ``--hot`` of them have a liquidation-distance alert 6 % away with a
5 % threshold (hot: every POSITION_POLL_HOT_S), ``--active`` have a fill in ``user_fills``
(active: every POSITION_POLL_INTERVAL_S), the rest are idle (POSITION_POLL_IDLE_S; a
simulated user whose positions change while polled becomes active on its own, as in
production). The poll task's body (``run_once``, what the Celery task runs) is called
every ``position_poll_tick_s`` as beat sends it, for ``--minutes`` exchange minutes.

Time is compressed ``--speed`` times for everyone (simulator accounting, REST budget
windows, cadences): 30 minutes of schedule take 3 minutes at the default 10. HTTP, Redis and
PostgreSQL are real, so each run's own cost (ranking every wallet) is real time too.

Reported: per class, the intervals between successive polls of a wallet (median, p95,
max), the polls a minute each class got, the idle wallets reached and the idle cycle the
remaining budget implies; the /info weight per minute as the simulator counted it; each
run's wall time.

    .venv/bin/python bench/bench_position_cadence.py [--wallets 10000] [--hot 10]
        [--active 50] [--minutes 30] [--speed 10] [--budget 1000]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from decimal import Decimal as Dec
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import redis

from domain.alerts.shared_state import SharedMarket
from events import AssetContext, Fill, Position
from models import migrate
from models.alert import Alert
from models.db import get_database
from models.repositories import (
    AlertRepository,
    FillRepository,
    TrackedWalletRepository,
    UserRepository,
)
from settings import Settings, load_settings
from tasks.maintenance.poll_schedule import polls_per_minute
from tasks.maintenance.positions_poll import PollResult, run_once
from tests.support.fast_clock import FastClock
from tests.support.services import PostgresDatabase, RedisServer
from workers.simulator import SimulatorConfig, SimulatorServer
from workers.simulator.market import sim_user_address


def seed(settings: Settings, wallets: list[str], hot: int, active: int, now_ms: int) -> None:
    database = get_database(settings)
    with database.session() as s:
        user = UserRepository(s).create("bench@example.com", "enterprise")
        TrackedWalletRepository(s).track_many(user.id, wallets)
        for wallet in wallets[:hot]:
            AlertRepository(s).add(
                Alert(user_id=user.id, coin="BTC", kind="liquidation_distance_below",
                      threshold=Dec(5), wallet=wallet)
            )  # fmt: skip
        FillRepository(s).add_batch(
            [
                Fill(w, "ETH", now_ms - i, i + 1, i + 1, Dec(1), Dec(1), "B", "Open Long", Dec(0),
                     Dec(0), Dec(0), "USDC", True, "0x" + "0" * 64)
                for i, w in enumerate(wallets[hot : hot + active])
            ]
        )  # fmt: skip
    cache = redis.Redis.from_url(settings.redis_url)
    market = SharedMarket(cache)
    market.apply("positions", [
        Position(w, "BTC", 1, Dec(1), Dec(100), Dec(100), Dec(0), Dec(0), Dec(94), "cross", 5,
                 Dec(20))
        for w in wallets[:hot]
    ])  # fmt: skip
    market.apply("asset_contexts", [AssetContext("BTC", 1, Dec(0), Dec(1), Dec(100), Dec(100),
                                                 None, None, Dec(0), Dec(100))])  # fmt: skip
    cache.close()


def quantiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return statistics.median(ordered), p95, ordered[-1]


def report(
    args: argparse.Namespace,
    settings: Settings,
    runs: list[tuple[int, PollResult, float]],
    stats: dict[str, Any],
) -> None:
    polls: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for at, result, _wall in runs:
        for wallet in result.polled:
            polls[wallet].append((at, result.classes[wallet].value))
    intervals: dict[str, list[float]] = defaultdict(list)
    polled_by_class: dict[str, int] = defaultdict(int)
    for times in polls.values():
        for _at, cls in times:
            polled_by_class[cls] += 1
        for (a, _), (b, cls) in itertools.pairwise(times):
            intervals[cls].append((b - a) / 1000)
    final = runs[-1][1].classes if runs else {}
    counts = {c: sum(1 for v in final.values() if v.value == c) for c in ("hot", "active", "idle")}
    minutes = args.minutes
    print(
        f"\nmachine: {platform.machine()} cpus={os.cpu_count()}  {args.wallets} wallets polled "
        f"(none on WebSocket), REST_WEIGHT_PER_MINUTE {args.budget} = "
        f"{polls_per_minute(args.budget):.0f} positions polls a minute; {minutes} exchange "
        f"minutes at {args.speed:g}x; cadences hot {settings.position_poll_hot_s:g} s, active "
        f"{settings.position_poll_interval_s:g} s, idle {settings.position_poll_idle_s:g} s"
    )
    print(f"classes at the end: {counts}")
    print(
        f"{'class':>7} {'polls/min':>10} {'intervals':>10} {'median s':>9} {'p95 s':>8} {'max s':>8}"
    )
    for cls in ("hot", "active", "idle"):
        values = intervals.get(cls, [])
        rate = polled_by_class.get(cls, 0) / minutes
        if values:
            median, p95, top = quantiles(values)
            print(
                f"{cls:>7} {rate:>10.1f} {len(values):>10} {median:>9.1f} {p95:>8.1f} {top:>8.1f}"
            )
        else:
            print(f"{cls:>7} {rate:>10.1f} {0:>10} {'-':>9} {'-':>8} {'-':>8}")
    idle_reached = sum(
        1 for w, t in polls.items() if final.get(w) is not None and final[w].value == "idle"
    )
    idle_rate = polled_by_class.get("idle", 0) / minutes
    if counts["idle"] and idle_rate:
        print(
            f"idle: {idle_reached} of {counts['idle']} reached; at {idle_rate:.0f} idle polls a "
            f"minute one idle cycle takes {counts['idle'] / idle_rate:.0f} minutes"
        )
    per_minute = stats["info_weight_by_minute"]
    whole = [per_minute[m] for m in sorted(per_minute, key=int)[1:-1]]
    print(
        f"/info weight a minute (simulator, whole minutes): median {statistics.median(whole):.0f}, "
        f"max {max(whole)}; most in any 60 s: {stats['info_weight_max_60s']} (exchange limit 1200)"
        if whole
        else f"/info weight by minute: {per_minute}"
    )
    walls = [wall for _a, _r, wall in runs]
    skipped = sum(1 for _a, r, _w in runs if r.skipped)
    failed = sum(len(r.failed) for _a, r, _w in runs)
    print(
        f"runs: {len(runs)} ({skipped} skipped, {failed} failed polls); wall time per run "
        f"median {statistics.median(walls) * 1000:.0f} ms, max {max(walls) * 1000:.0f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wallets", type=int, default=10_000)
    parser.add_argument("--hot", type=int, default=10)
    parser.add_argument("--active", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=30.0, help="exchange minutes")
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--budget", type=int, default=1000, help="REST_WEIGHT_PER_MINUTE")
    parser.add_argument("--rate", type=float, default=2.0, help="simulated trades/s")
    args = parser.parse_args()

    clock = FastClock(args.speed)
    server = RedisServer().start()
    pg = PostgresDatabase()
    sim = SimulatorServer(
        SimulatorConfig(port=0, rate=args.rate, seed=7, users=args.wallets), clock
    ).start_in_thread()
    workdir = Path(tempfile.mkdtemp(prefix="hw-bench-cadence-"))
    runs: list[tuple[int, PollResult, float]] = []
    try:
        settings = load_settings(
            database_url=pg.url,
            redis_url=server.url,
            hl_info_url=sim.info_url,
            data_dir=workdir / "var",
            rest_weight_per_minute=args.budget,
            # the seeded fills must keep their wallets active for the whole run
            position_poll_active_window_s=max(900.0, args.minutes * 60 + 60),
        )
        migrate.upgrade(settings)
        wallets = [sim_user_address(i) for i in range(args.wallets)]
        seed(settings, wallets, args.hot, args.active, clock.time_ms())
        tick_real = settings.position_poll_tick_s / args.speed
        end = clock.time() + args.minutes * 60
        print(f"polling {len(wallets)} wallets every {settings.position_poll_tick_s:g} s "
              f"({tick_real:.2f} s real) for {args.minutes:g} minutes", flush=True)  # fmt: skip
        while clock.time() < end:
            started_real = time.monotonic()
            at = clock.time_ms()
            try:
                result = run_once(settings, lambda _batch: None, clock)
            except Exception as exc:  # a failed wallet raises after the run: keep going
                print(f"run failed: {exc}", file=sys.stderr)
                continue
            wall = time.monotonic() - started_real
            runs.append((at, result, wall))
            time.sleep(max(0.0, tick_real - wall))
        stats = httpx.get(f"{sim.base_url}/_sim/stats").json()
        report(args, settings, runs, stats)
        get_database(settings).dispose()
    finally:
        sim.stop()
        pg.close()
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
