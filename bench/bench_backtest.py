"""Backtest speed: one day of stored trades (and contexts) x 1,000 rules.

A fresh PostgreSQL database gets one synthetic day: ``--coins`` coins, ``--trades`` trades
in total (a random walk per coin, sizes log-normal so a few are whale-sized), one asset
context per coin and minute (what ``ASSET_CONTEXT_BUCKET_S`` keeps). ``--rules`` rules
spread over the coins: 40 % whale_trade (recurring, 60 s cooldown, thresholds from 100k
to 10M USD), 30 % mid-price thresholds, 20 % funding, 10 % mark-price (half recurring).
Then ``run_backtest`` — exactly what ``hyperwatch alerts backtest`` runs, for all rules at
once — replays the day ``--repeat`` times; the figure is the median wall time, with
events/s and firings. Loading the day is not timed.

    .venv/bin/python bench/bench_backtest.py
    .venv/bin/python bench/bench_backtest.py --trades 2000000 --rules 1000
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domain.alerts.definition import AlertRule, parse_rule  # noqa: E402
from events import AssetContext, Trade  # noqa: E402
from models import migrate  # noqa: E402
from models.db import get_database  # noqa: E402
from models.repositories import AssetContextRepository, TradeRepository  # noqa: E402
from settings import load_settings  # noqa: E402
from tests.support.services import PostgresDatabase  # noqa: E402
from workers.commands.backtest import run_backtest  # noqa: E402

DAY_MS = 86_400_000
MINUTE = 60_000
DAY0 = 1_760_054_400_000  # 2025-10-10T00:00:00Z


def _day(
    coins: list[str], trades: int, rng: random.Random
) -> tuple[list[Trade], list[AssetContext]]:
    per_coin = trades // len(coins)
    out: list[Trade] = []
    contexts: list[AssetContext] = []
    for c, coin in enumerate(coins):
        px = 100.0 * (c + 1)
        step = DAY_MS / per_coin
        for i in range(per_coin):
            px *= 1 + rng.gauss(0, 0.0004)
            size = rng.lognormvariate(0, 2.0)
            t = DAY0 + int(i * step)
            out.append(Trade(coin, t, i, Decimal(f"{px:.2f}"), Decimal(f"{size:.3f}"),
                             "B" if i % 2 else "A", f"0x{c:02x}{i:062x}"))  # fmt: skip
        for m in range(DAY_MS // MINUTE):
            mark = Decimal(f"{100.0 * (c + 1) * (1 + 0.05 * rng.uniform(-1, 1)):.2f}")
            contexts.append(AssetContext(
                coin=coin, time=DAY0 + m * MINUTE, funding=Decimal(f"{rng.gauss(0, 0.0001):.7f}"),
                open_interest=Decimal(1000), mark_px=mark, oracle_px=mark, mid_px=mark,
                premium=Decimal(0), day_ntl_vlm=Decimal(0), prev_day_px=mark,
            ))  # fmt: skip
    out.sort(key=lambda t: (t.time, t.coin, t.tid))
    return out, contexts


def _rules(coins: list[str], n: int, rng: random.Random) -> list[AlertRule]:
    rules = []
    for i in range(n):
        coin = coins[i % len(coins)]
        base = 100 * (coins.index(coin) + 1)
        share = i % 10
        fields: dict[str, object] = {"id": i + 1, "user_id": 1, "coin": coin}
        if share < 4:
            fields |= {"kind": "whale_trade", "threshold": str(rng.choice([100_000, 1_000_000, 10_000_000])),
                       "mode": "recurring", "cooldown_s": 60}  # fmt: skip
        elif share < 7:
            level = base * (1 + rng.uniform(-0.06, 0.06))
            fields |= {
                "kind": "price_above" if i % 2 else "price_below",
                "threshold": f"{level:.2f}",
            }
        elif share < 9:
            fields |= {"kind": "funding_above", "threshold": "0.0002", "mode": "recurring",
                       "rearm_margin": "0.5"}  # fmt: skip
        else:
            fields |= {"kind": "price_above", "threshold": f"{base * 1.04:.2f}", "price_source": "mark",
                       "mode": "recurring", "rearm_margin": "0.01"}  # fmt: skip
        rules.append(parse_rule(fields))
    return rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=1_000_000, help="trades in the day")
    parser.add_argument("--coins", type=int, default=10)
    parser.add_argument("--rules", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(14)
    coins = [f"C{i:02d}" for i in range(args.coins)]
    pg = PostgresDatabase()
    os.environ.update({"DATABASE_URL": pg.url, "DATA_DIR": tempfile.mkdtemp(prefix="hw-bench-bt-"),
                       "LOG_LEVEL": "WARNING"})  # fmt: skip
    try:
        settings = load_settings()
        migrate.upgrade(settings)
        db = get_database(settings)
        started = time.perf_counter()
        trades, contexts = _day(coins, args.trades, rng)
        with db.session() as s:
            AssetContextRepository(s).add_batch(contexts, MINUTE)
        for k in range(0, len(trades), 50_000):
            with db.session() as s:
                TradeRepository(s).add_batch(trades[k : k + 50_000])
        print(f"loaded {len(trades)} trades and {len(contexts)} contexts in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        rules = _rules(coins, args.rules, rng)
        times, report = [], None
        for _ in range(args.repeat):
            t = time.perf_counter()
            report = run_backtest(db.session, settings, rules, DAY0, DAY0 + DAY_MS)
            times.append(time.perf_counter() - t)
        assert report is not None
        median = statistics.median(times)
        print(
            f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        )
        print(f"backtest of one day: {report.events} events x {len(rules)} rules: "
              f"median {median:.2f} s over {args.repeat} runs ({min(times):.2f}-{max(times):.2f}), "
              f"{report.events / median:,.0f} events/s; {len(report.fired)} firings, "
              f"{report.held} held, {report.rearmed} re-arms")  # fmt: skip
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        pg.close()


if __name__ == "__main__":
    main()
