"""Benchmark: how many trades/s ``hyperwatch simulate`` delivers to one WebSocket client.

The simulator runs as its own process (one core: it is single-threaded asyncio); this
process is the client. Each run subscribes to ``trades`` on every coin, counts trades for
``--seconds`` (counting ``"tid":`` occurrences, so the client's own JSON parsing does not
cap the figure), and reads the server's ``trades_generated`` from ``/_sim/stats``.
Sent = generated in the window; received = counted by the client. Prints per-run figures
and the median.

    .venv/bin/python bench/bench_simulator.py --rate 150000 --runs 3 --seconds 5 [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
import psutil

from workers.simulator.runner import SimulatorProcess

COINS = ("BTC", "ETH", "SOL")


async def _stats(session: aiohttp.ClientSession, base: str) -> dict:
    async with session.get(f"{base}/_sim/stats") as resp:
        return await resp.json()


async def _measure(
    sim: SimulatorProcess, seconds: float, warmup: float
) -> tuple[float, float, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(sim.ws_url, max_msg_size=0) as ws,
    ):
        for coin in COINS:
            await ws.send_str(
                orjson.dumps(
                    {"method": "subscribe", "subscription": {"type": "trades", "coin": coin}}
                ).decode()
            )
        received = 0
        counting = False
        deadline = time.monotonic() + warmup
        before: dict = {}
        after: dict = {}
        started = 0.0
        while True:
            msg = await ws.receive(timeout=10)
            now = time.monotonic()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                # The server drops a client that lets 64 MiB queue up (slow consumer).
                if not counting:
                    raise RuntimeError(f"connection ended during warm-up: {msg.type!r}")
                after = await _stats(session, sim.base_url)
                elapsed = now - started
                note = f"client fell behind and was dropped after {elapsed:.1f} s"
                return (
                    (after["trades_generated"] - before["trades_generated"]) / elapsed,
                    received / elapsed,
                    note,
                )
            if not counting and now >= deadline:
                counting = True
                before = await _stats(session, sim.base_url)
                started = time.monotonic()
                deadline = started + seconds
                continue
            if counting:
                received += msg.data.count('"tid":')
                if now >= deadline:
                    after = await _stats(session, sim.base_url)
                    elapsed = time.monotonic() - started
                    break
        sent = after["trades_generated"] - before["trades_generated"]
        return sent / elapsed, received / elapsed, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=150_000)
    parser.add_argument("--trades-per-block", type=int, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument(
        "--record", action="store_true", help="Also write the ground truth (to a temp dir)."
    )
    args = parser.parse_args()
    extra = ["--trades-per-block", str(args.trades_per_block)] if args.trades_per_block else []
    scratch = tempfile.TemporaryDirectory(prefix="bench-sim-")
    if args.record:
        extra += ["--record", str(Path(scratch.name) / "truth.jsonl")]
    try:
        sent_rates, received_rates = [], []
        for run in range(1, args.runs + 1):
            sim = SimulatorProcess.start(
                [
                    "--rate",
                    str(args.rate),
                    "--coins",
                    ",".join(COINS),
                    "--log-level",
                    "WARNING",
                    "--replay-trades",
                    "0",
                    *extra,
                ]
            )
            try:
                server = psutil.Process(sim.pid)
                server.cpu_percent(None)
                sent, received, note = asyncio.run(_measure(sim, args.seconds, args.warmup))
                cpu = server.cpu_percent(None)
            finally:
                sim.stop()
            sent_rates.append(sent)
            received_rates.append(received)
            print(
                f"run {run}: sent {sent:,.0f} trades/s, received {received:,.0f} trades/s, server CPU {cpu:.0f}%"
                + (f" ({note})" if note else "")
            )
    finally:
        scratch.cleanup()
    print(
        f"median over {args.runs} runs at --rate {args.rate:,.0f}"
        f"{' --trades-per-block ' + str(args.trades_per_block) if args.trades_per_block else ''}"
        f"{' --record' if args.record else ''}: "
        f"sent {statistics.median(sent_rates):,.0f} trades/s, received {statistics.median(received_rates):,.0f} trades/s"
    )


if __name__ == "__main__":
    main()
