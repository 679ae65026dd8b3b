"""A feed that drops the connection every few seconds: how much is never received, and is
every trade that was not received inside a recorded gap?

The simulator (Hyperliquid-like: a replay of the last ``--replay-trades`` trades on every
subscribe) drops every connection every ``--drop-every`` seconds for ``--seconds``, through
the real ingester, a worker and PostgreSQL. Over each coin's observed window (its first to
its last stored trade), reported:
- never received: produced trades the socket did not deliver (stored rows minus the rows
  REST healing inserted, against the ground truth), as a share of those produced;
- stored after healing: what ``recentTrades`` filled in as well;
- outside any gap: trades not stored whose time lies in no recorded gap (must be 0);
- the gaps and how healing settled them.

    .venv/bin/python bench/bench_drops.py [--seconds 60] [--drop-every 5] [--rate 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text

from models import migrate
from settings import load_settings
from tests.support.services import PostgresDatabase, RedisServer
from tests.support.stack import Stack, StackConfig
from workers.simulator import read_ground_truth


def measure(url: str, truth_path: Path) -> dict[str, Any]:
    truth = read_ground_truth(truth_path)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            stored = {
                (c, int(t), int(i))
                for c, t, i in conn.execute(text("SELECT coin, time, tid FROM trade_snapshots"))
            }
            gaps = conn.execute(
                text(
                    "SELECT stream, key, from_ms, to_ms, ended_by, status, healed_by, filled FROM gaps"
                )
            ).all()
    finally:
        engine.dispose()
    window: dict[str, tuple[int, int]] = {}
    for coin, t, _ in stored:
        lo, hi = window.get(coin, (t, t))
        window[coin] = (min(lo, t), max(hi, t))
    trade_gaps: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
    for stream, key, lo, hi, *_ in gaps:
        if stream == "trades":
            trade_gaps[key].append((int(lo), None if hi is None else int(hi)))
    produced = missing = outside = 0
    examples: list[str] = []
    for trade in truth.trades:
        coin, t, _tid = trade.key
        # The window opens after the first stored millisecond: the first subscription's
        # replay can begin inside a block whose earlier trades share its millisecond, and
        # those were produced before the ingester ever subscribed (tests/support/stack.py).
        if coin not in window or not window[coin][0] < t <= window[coin][1]:
            continue
        produced += 1
        if trade.key in stored:
            continue
        missing += 1
        if not any(lo <= t and (hi is None or t <= hi) for lo, hi in trade_gaps[coin]):
            outside += 1
            near = sorted(trade_gaps[coin], key=lambda g: abs(g[0] - t))[:2]
            if len(examples) < 5:
                examples.append(f"{coin} t={t} tid={_tid} nearest gaps {near}")
    healed_rows = sum(int(g[7] or 0) for g in gaps if g[6] == "rest")
    in_window_stored = produced - missing
    received = in_window_stored - healed_rows
    statuses: dict[str, int] = defaultdict(int)
    for g in gaps:
        statuses[str(g[5])] += 1
    return {
        "produced_in_window": produced,
        "never_received": produced - received,
        "never_received_share": round((produced - received) / produced, 4) if produced else None,
        "stored_after_healing": in_window_stored,
        "missing_after_healing_share": round(missing / produced, 4) if produced else None,
        "healed_rows_from_rest": healed_rows,
        "missing_outside_any_gap": outside,
        "outside_examples": examples,
        "gaps": len(gaps),
        "gap_statuses": dict(statuses),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--drop-every", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--replay-trades", type=int, default=10)
    args = parser.parse_args()
    redis_server = RedisServer().start()
    database = PostgresDatabase()
    workdir = Path(tempfile.mkdtemp(prefix="hw-bench-drops-"))
    try:
        migrate.upgrade(load_settings(database_url=database.url))
        config = StackConfig(
            rate=args.rate,
            replay_trades=args.replay_trades,
            sim_args=("--drop-every", str(args.drop_every)),
        )
        stack = Stack(workdir, database.url, redis_server, config)
        try:
            stack.start_simulator()
            stack.start_worker()
            stack.start_ingester()
            time.sleep(args.seconds)
            stack.stop_all()
            stack.wait_drained(180)
            time.sleep(2)  # the heal jobs the last closes sent
            stack.wait_drained(60)
            stack.stop_workers()
        finally:
            stack.close()
        result = measure(database.url, stack.truth_path)
        result |= {
            "seconds": args.seconds,
            "drop_every_s": args.drop_every,
            "rate": args.rate,
            "replay_trades": args.replay_trades,
        }
        print(json.dumps(result, indent=2))
        return 0 if result["missing_outside_any_gap"] == 0 else 1
    finally:
        database.close()
        redis_server.close()


if __name__ == "__main__":
    sys.exit(main())
