"""Benchmark: evaluating one market tick against 1k / 100k / 1M active alerts.

Both paths run in the same process on the same alerts and the same ticks, and must agree:

- **index**: fresh quotes from the MarketState -> ThresholdIndex.candidates_for_tick ->
  ``evaluate`` on each candidate -> the ids that FIRE;
- **naive**: ``evaluate`` on every alert -> the ids that FIRE.

Alerts are spread over ``--coins`` coins like real ones: price thresholds 0.05-30 % away from
the price on the side where they have not fired yet, funding thresholds a little away from
the current rate; mid/mark/funding kinds mixed. Each tick moves every coin's mid and mark by
a normal step of ``--tick-move`` (default 0.03 %) and its funding a little, so a tick fires a
small, realistic number of alerts. Index memory is measured with tracemalloc while building.

Run: ``.venv/bin/python bench/bench_alert_index.py`` (add ``--sizes 1000,100000`` to shorten).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import TypeVar

from domain.alerts.definition import AlertKind, AlertRule, PriceSource
from domain.alerts.index import ThresholdIndex
from domain.alerts.judgement import Outcome, evaluate
from domain.alerts.market_state import MarketState
from events import AssetContext, Mid

T = TypeVar("T")
NOW = 1_787_000_000_000
KIND_MIX: list[tuple[AlertKind, PriceSource, float]] = [
    (AlertKind.PRICE_ABOVE, PriceSource.MID, 0.30),
    (AlertKind.PRICE_BELOW, PriceSource.MID, 0.30),
    (AlertKind.PRICE_ABOVE, PriceSource.MARK, 0.10),
    (AlertKind.PRICE_BELOW, PriceSource.MARK, 0.10),
    (AlertKind.FUNDING_ABOVE, PriceSource.MID, 0.10),
    (AlertKind.FUNDING_BELOW, PriceSource.MID, 0.10),
]


def sig(value: float, digits: int = 5) -> Decimal:
    """A price as Hyperliquid writes it: ``digits`` significant figures."""
    return Decimal(f"{value:.{digits}g}")


class Market:
    def __init__(self, coins: int, rng: random.Random) -> None:
        self.coins = [f"C{i:03d}" for i in range(coins)]
        self.price = {c: 10 ** rng.uniform(-3, 5) for c in self.coins}
        self.funding = {c: rng.uniform(-0.0001, 0.0001) for c in self.coins}

    def rules(self, count: int, rng: random.Random) -> list[AlertRule]:
        kinds = [(k, s) for k, s, _ in KIND_MIX]
        weights = [w for _, _, w in KIND_MIX]
        picks = rng.choices(kinds, weights, k=count)
        out = []
        for alert_id, (kind, source) in enumerate(picks, start=1):
            coin = rng.choice(self.coins)
            away = rng.uniform(0.0005, 0.30)
            if kind is AlertKind.PRICE_ABOVE:
                threshold = sig(self.price[coin] * (1 + away))
            elif kind is AlertKind.PRICE_BELOW:
                threshold = sig(self.price[coin] * (1 - away))
            else:
                step = rng.uniform(0.000001, 0.0002)
                above = kind is AlertKind.FUNDING_ABOVE
                threshold = Decimal(f"{self.funding[coin] + (step if above else -step):.7f}")
            out.append(
                AlertRule(
                    id=alert_id,
                    user_id=alert_id % 5000 + 1,
                    kind=kind,
                    coin=coin,
                    threshold=threshold,
                    price_source=source,
                )
            )
        return out

    def tick(self, rng: random.Random, move: float) -> MarketState:
        state = MarketState(max_age_ms=10_000, history_ms=0)
        for coin in self.coins:
            px = self.price[coin]
            mid = sig(px * (1 + rng.gauss(0, move)), 6)
            mark = sig(px * (1 + rng.gauss(0, move)), 6)
            funding = Decimal(f"{self.funding[coin] + rng.gauss(0, 0.000002):.8f}")
            state.apply(Mid(coin=coin, time=NOW, px=mid))
            state.apply(
                AssetContext(
                    coin=coin,
                    time=NOW,
                    funding=funding,
                    open_interest=Decimal("1000"),
                    mark_px=mark,
                    oracle_px=mark,
                    mid_px=mid,
                    premium=None,
                    day_ntl_vlm=Decimal("0"),
                    prev_day_px=mark,
                )
            )
        return state


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


def index_tick(index: ThresholdIndex, by_id: dict[int, AlertRule], state: MarketState) -> list[int]:
    candidates = index.candidates_for_tick(state.quotes(NOW))
    fired = []
    for alert_id in candidates:
        if evaluate(by_id[alert_id], state, NOW).outcome is Outcome.FIRE:
            fired.append(alert_id)
    return sorted(fired)


def naive_tick(rules: list[AlertRule], state: MarketState) -> list[int]:
    return sorted(r.id for r in rules if evaluate(r, state, NOW).outcome is Outcome.FIRE)


def measure_memory(rules: list[AlertRule]) -> tuple[float, float]:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = ThresholdIndex.build(rules)
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del index
    return (retained - before) / 1e6, (peak - before) / 1e6


def run(size: int, args: argparse.Namespace) -> dict[str, float]:
    rng = random.Random(args.seed)
    market = Market(args.coins, rng)
    rules = market.rules(size, rng)
    by_id = {r.id: r for r in rules}
    gc.collect()
    build_ms, index = timed(partial(ThresholdIndex.build, rules))
    mem_mb, peak_mb = measure_memory(rules)
    naive_repeats = args.naive_repeats if size >= 1_000_000 else max(args.naive_repeats, 7)
    index_ms, naive_ms, fired = [], [], []
    for repeat in range(args.repeats):
        state = market.tick(rng, args.tick_move)
        gc.collect()
        elapsed, got = timed(partial(index_tick, index, by_id, state))
        index_ms.append(elapsed)
        fired.append(len(got))
        if repeat < naive_repeats:
            gc.collect()
            elapsed, expected = timed(partial(naive_tick, rules, state))
            naive_ms.append(elapsed)
            assert got == expected, f"index and naive scan disagree at {size} alerts"
    return {
        "size": size,
        "index_ms": statistics.median(index_ms),
        "naive_ms": statistics.median(naive_ms),
        "naive_n": len(naive_ms),
        "index_n": len(index_ms),
        "fired": statistics.median(fired),
        "mem_mb": mem_mb,
        "peak_mb": peak_mb,
        "est_mb": index.memory_bytes() / 1e6,
        "build_ms": build_ms,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--coins", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=21, help="ticks timed on the index path")
    parser.add_argument("--naive-repeats", type=int, default=3, help="naive ticks at 1M")
    parser.add_argument("--tick-move", type=float, default=0.0003)
    parser.add_argument("--seed", type=int, default=20_260_101)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"# {platform.python_implementation()} {platform.python_version()} on "
        f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs; "
        f"{args.coins} coins, tick move sd {args.tick_move:.4%}"
    )
    header = (
        f"{'alerts':>9} | {'fired/tick':>10} | {'index ms':>9} | {'naive ms':>9} | "
        f"{'speed-up':>8} | {'index MB':>8} | {'est MB':>7} | {'build s':>7} | runs i/n"
    )
    print(header)
    print("-" * len(header))
    results = []
    for size in sizes:
        r = run(size, args)
        results.append(r)
        print(
            f"{r['size']:>9,} | {r['fired']:>10.0f} | {r['index_ms']:>9.3f} | "
            f"{r['naive_ms']:>9.1f} | {r['naive_ms'] / r['index_ms']:>7.0f}x | "
            f"{r['mem_mb']:>8.1f} | {r['est_mb']:>7.1f} | {r['build_ms'] / 1000:>7.2f} | "
            f"{r['index_n']:.0f}/{r['naive_n']:.0f}",
            flush=True,
        )
    print(
        "# medians; index = quotes + bisect + evaluate() of candidates; naive = evaluate() of all;"
        " index MB = tracemalloc retained by build (id ints shared with the rules),"
        " est MB = memory_bytes() counting id ints as owned"
    )
    big = [r for r in results if r["size"] >= 1_000_000]
    if big:
        r = big[0]
        ok = r["index_ms"] <= 5 and r["naive_ms"] / r["index_ms"] >= 100
        print(f"# target at 1M (<= 5 ms, >= 100x): {'met' if ok else 'NOT met'}")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
