"""``hyperwatch simulate``: parse options into a :class:`SimulatorConfig` and run it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from workers.context import UsageError
from workers.simulator.cascade import Cascade
from workers.simulator.config import SimulatorConfig, parse_list_later
from workers.simulator.faults import FaultPlan
from workers.simulator.ledger import FILLS_KEPT
from workers.simulator.runner import SimulatorServer
from workers.simulator.universe import DEFAULT_COINS, DEFAULT_DELISTED


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@click.command("simulate")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port; 0 picks a free one.")
@click.option(
    "--coins",
    default=",".join(DEFAULT_COINS),
    show_default=True,
    help="Listed coins, comma-separated, verbatim (case-sensitive); NAME=PRICE sets a base price.",
)
@click.option(
    "--delisted",
    default=",".join(DEFAULT_DELISTED),
    show_default=True,
    help="Delisted coins kept in meta.",
)
@click.option(
    "--users",
    "user_count",
    default=0,
    show_default=True,
    type=int,
    help="Simulated wallets to generate.",
)
@click.option(
    "--user", "user_addresses", multiple=True, help="A simulated wallet address (repeatable)."
)
@click.option(
    "--wallets",
    "wallet_count",
    default=0,
    show_default=True,
    type=int,
    help="Active addresses trading in the public stream without fills or positions "
    "(buyers and sellers to track, e.g. to test wallet activity at scale).",
)
@click.option(
    "--user-share",
    default=0.05,
    show_default=True,
    type=float,
    help="Fraction of trade sides taken by simulated wallets.",
)
@click.option(
    "--rate",
    default=50.0,
    show_default=True,
    type=float,
    help="Trades per second across all coins.",
)
@click.option(
    "--trades-per-block",
    default=None,
    type=int,
    help="Trades per block (default: rate * block-ms).",
)
@click.option(
    "--block-ms",
    default=70.0,
    show_default=True,
    type=float,
    help="Block spacing when --trades-per-block is not given.",
)
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Random seed; same seed, same trades."
)
@click.option(
    "--start-time",
    "start_time_ms",
    default=None,
    type=int,
    help="First block time in ms (default: wall clock).",
)
@click.option(
    "--duration",
    default=0.0,
    show_default=True,
    type=float,
    help="Seconds to run; 0 = until signalled.",
)
@click.option(
    "--replay-trades",
    default=10,
    show_default=True,
    type=int,
    help="Trades replayed in the first trades frame and by recentTrades.",
)
@click.option(
    "--idle-timeout",
    default=60.0,
    show_default=True,
    type=float,
    help="Drop a client silent this many seconds.",
)
@click.option(
    "--ctx-interval",
    default=1.0,
    show_default=True,
    type=float,
    help="activeAssetCtx / clearinghouseState push cadence (s).",
)
@click.option(
    "--mids-interval", default=2.0, show_default=True, type=float, help="allMids push cadence (s)."
)
@click.option(
    "--drop-every",
    default=0.0,
    show_default=True,
    type=float,
    help="Abort every socket each N s (0 = never).",
)
@click.option(
    "--stall-every",
    default=0.0,
    show_default=True,
    type=float,
    help="Stall every socket each N s (0 = never).",
)
@click.option(
    "--stall-seconds", default=3.0, show_default=True, type=float, help="Length of each stall."
)
@click.option(
    "--malformed-rate",
    default=0.0,
    show_default=True,
    type=float,
    help="Fraction of data frames preceded by a garbage frame.",
)
@click.option(
    "--duplicate-every",
    default=0.0,
    show_default=True,
    type=float,
    help="Re-send each socket's last trades frame every N s.",
)
@click.option(
    "--record",
    "record_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the ground truth (JSON lines) here.",
)
@click.option(
    "--archive-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the ground truth as hourly archive files (node_fills_by_block/hourly/…) here.",
)
@click.option(
    "--archive-level",
    default=9,
    show_default=True,
    type=int,
    help="LZ4 level of the archive files: 9 as the real ones (the writer keeps up with about 60,000 trades/s), 1 with about 145,000.",
)
@click.option(
    "--replay",
    "replay_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Serve the trades of a recorded capture instead of generating.",
)
@click.option(
    "--max-messages-per-minute",
    default=2000,
    show_default=True,
    type=int,
    help="Per-IP client message cap (0 = none).",
)
@click.option(
    "--fills-kept",
    default=FILLS_KEPT,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most recent fills kept per simulated wallet (what userFills and userFillsByTime "
    "serve; the exchange keeps 10000). Bounds memory.",
)
@click.option(
    "--list-later",
    "list_later",
    multiple=True,
    metavar="COIN@SECONDS",
    help="List COIN (NAME or NAME=PRICE) in meta and start trading it this many seconds "
    "after the start (repeatable).",
)
@click.option(
    "--cascade-at",
    default=None,
    type=float,
    help="Cascade mode: this many seconds after the start the rate ramps to --cascade-peak "
    "and every price moves by --cascade-move (workers/simulator/cascade.py).",
)
@click.option("--cascade-peak", default=25_000.0, show_default=True, type=float,
              help="Cascade: trades per second at the peak.")  # fmt: skip
@click.option("--cascade-ramp", default=20.0, show_default=True, type=float,
              help="Cascade: seconds of the ramp up (and down).")  # fmt: skip
@click.option("--cascade-hold", default=60.0, show_default=True, type=float,
              help="Cascade: seconds at the peak rate.")  # fmt: skip
@click.option("--cascade-move", default=-10.0, show_default=True, type=float,
              help="Cascade: percent every price moves over the ramp and the peak.")  # fmt: skip
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
def simulate(
    host: str,
    port: int,
    coins: str,
    delisted: str,
    user_count: int,
    user_addresses: tuple[str, ...],
    user_share: float,
    wallet_count: int,
    rate: float,
    trades_per_block: int | None,
    block_ms: float,
    seed: int,
    start_time_ms: int | None,
    duration: float,
    replay_trades: int,
    idle_timeout: float,
    ctx_interval: float,
    mids_interval: float,
    drop_every: float,
    stall_every: float,
    stall_seconds: float,
    malformed_rate: float,
    duplicate_every: float,
    record_path: Path | None,
    archive_dir: Path | None,
    archive_level: int,
    replay_path: Path | None,
    max_messages_per_minute: int,
    fills_kept: int,
    list_later: tuple[str, ...],
    cascade_at: float | None,
    cascade_peak: float,
    cascade_ramp: float,
    cascade_hold: float,
    cascade_move: float,
    log_level: str,
) -> None:
    """Serve a Hyperliquid-compatible exchange (WebSocket /ws and POST /info) on one port."""
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        listings = tuple(parse_list_later(text) for text in list_later)
    except ValueError as exc:
        raise UsageError(f"simulate: {exc}") from None
    config = SimulatorConfig(
        host=host,
        port=port,
        coins=_csv(coins),
        delisted=_csv(delisted),
        users=user_count,
        user_addresses=user_addresses,
        user_share=user_share,
        wallets=wallet_count,
        rate=rate,
        trades_per_block=trades_per_block,
        block_ms=block_ms,
        seed=seed,
        start_time_ms=start_time_ms,
        duration_s=duration,
        replay_trades=replay_trades,
        idle_timeout_s=idle_timeout,
        ctx_interval_s=ctx_interval,
        mids_interval_s=mids_interval,
        faults=FaultPlan(drop_every, stall_every, stall_seconds, malformed_rate, duplicate_every),
        record_path=record_path,
        replay_path=replay_path,
        archive_dir=archive_dir,
        archive_level=archive_level,
        max_messages_per_minute=max_messages_per_minute,
        fills_kept=fills_kept,
        list_later=listings,
        cascade=None
        if cascade_at is None
        else Cascade(cascade_at, cascade_ramp, cascade_hold, cascade_peak, cascade_move),
    )
    try:
        server = SimulatorServer(config)
    except ValueError as exc:
        raise UsageError(f"simulate: {exc}") from None

    def announce(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    try:
        code = server.run(announce)
    except OSError as exc:
        raise UsageError(
            f"simulate: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    sys.exit(code)
