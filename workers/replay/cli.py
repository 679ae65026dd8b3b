"""``hyperwatch replay FILES...``: play recordings back into the database (``--into pipeline``
through the workers, ``--into db`` straight in), or to a real ingester over a local
WebSocket (``--into ws``), or describe them (``--stats``).

Exit codes: 0 played (and, unless ``--no-wait``, every batch confirmed by the workers); 1
the broker stayed unreachable, the workers did not confirm in time, or (``--into db``) the
database failed or a replay process died; 2 bad input (an option, a file that is not a
recording), nothing sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
import orjson
import redis
from sqlalchemy.exc import DBAPIError

from domain.archive import tracked_wallets
from domain.archive.importer import GC_THRESHOLDS
from models.db import Database, get_database
from runtime import brokers
from runtime.confirmations import confirmed
from runtime.metrics import Metrics
from runtime.recording import RecordingError, in_time_order, read_header
from runtime.redis_clients import cache_redis
from runtime.retry import RetryPolicy
from settings import Settings, redact_url
from workers.context import UsageError, current_settings, one_line
from workers.ingester.broker import BrokerClient, Target
from workers.replay.direct import DirectFailed, DirectReplay
from workers.replay.healing import heal_replayed
from workers.replay.player import Pacer, Player, ReplayResult
from workers.replay.reading import records
from workers.replay.server import ReplayServer, ServeResult
from workers.replay.stats import collect, text_lines

EXIT_FAILED = 1
SEND_ATTEMPTS = 8  # about 30 s of backoff before a broker outage fails the replay


class ReplayFailed(click.ClickException):
    exit_code = EXIT_FAILED

    def show(self, file: object = None) -> None:
        click.echo(f"hyperwatch: {one_line(self.format_message())}", err=True)


def parse_time(text: str | None, option: str) -> int | None:
    """An ISO 8601 time (a zone or Z; none means UTC) or epoch milliseconds → ns."""
    if text is None:
        return None
    stripped = text.strip()
    if stripped.isdigit():
        return int(stripped) * 1_000_000
    try:
        when = dt.datetime.fromisoformat(stripped)
    except ValueError:
        raise UsageError(
            f"{option} {text!r}: expected an ISO 8601 time (2026-12-05T10:00:00Z) or epoch ms"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1_000_000) * 1000


def default_name(files: list[Path]) -> str:
    """The recorded feed: replays of any of its files share a source, so their session and
    gap ids agree."""
    return str(read_header(in_time_order(files)[0]).get("feed") or "recording")


def check_files(files: list[Path]) -> None:
    """Every file is a recording this version reads (exit 2 before anything is sent)."""
    for path in files:
        try:
            read_header(path)
        except RecordingError as exc:
            raise UsageError(str(exc)) from None
        except OSError as exc:
            raise UsageError(f"{path}: {exc.strerror or exc}") from None


class Sender:
    """Publishes on the broker, retrying a broker outage for a while before giving up."""

    def __init__(self, client: BrokerClient, sleep: float = 0.25) -> None:
        self._client = client
        self._schedule = RetryPolicy(base_s=sleep, cap_s=8.0, jitter=0)

    def __call__(self, target: Target, body: bytes, argsrepr: str) -> None:
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                self._client.send(target, body, argsrepr)
                return
            except self._client.errors as exc:
                if attempt == SEND_ATTEMPTS:
                    raise ReplayFailed(f"broker unreachable, replay stopped: {exc}") from None
                time.sleep(self._schedule.next_delay(attempt))


def wait_confirmed(settings: Settings, result: ReplayResult, timeout_s: float) -> int:
    """Wait until the workers confirmed every batch sent; returns how many are not."""
    client = cache_redis(settings)
    pending = {source: set(seqs) for source, seqs in result.seqs.items()}
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            for source, seqs in pending.items():
                for start in range(0, len(seqs), 5000):
                    chunk = sorted(seqs)[start : start + 5000]
                    seqs.difference_update(confirmed(client, source, chunk))
        except redis.RedisError:
            pass  # Redis blinking: ask again
        left = sum(len(s) for s in pending.values())
        if left == 0 or time.monotonic() >= deadline:
            return left
        time.sleep(0.2)


@click.command("replay")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--speed",
    type=click.FloatRange(min=0.001, max=1e6),
    default=1.0,
    show_default=True,
    help="Times the recorded pace.",
)
@click.option("--max", "as_fast", is_flag=True, help="As fast as it goes (overrides --speed).")
@click.option("--from", "start", metavar="T", help="Only records received at or after T.")
@click.option("--to", "end", metavar="T", help="Only records received before T.")
@click.option(
    "--into",
    type=click.Choice(["pipeline", "db", "ws"]),
    default="pipeline",
    show_default=True,
    help="pipeline: parse and publish to the persist tasks, as the ingester does; db: parse "
    "in --jobs processes and store straight into DATABASE_URL (as fast as it goes, no "
    "workers needed); ws: serve the frames on a local WebSocket for a real ingester "
    "(HL_WS_URL).",
)
@click.option(
    "--jobs",
    default=min(os.cpu_count() or 1, 4),
    show_default="the CPUs, at most 4",
    type=click.IntRange(1, 64),
    help="--into db: processes parsing the frames, each a share of the coins (PostgreSQL; "
    "SQLite takes one).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="--into ws: the port (0 = a free one, printed).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="--into ws: the address.")
@click.option(
    "--linger",
    type=click.FloatRange(min=0, max=3600),
    default=2.0,
    show_default=True,
    help="--into ws: seconds to keep serving after the last record.",
)
@click.option("--stats", is_flag=True, help="Describe the recording; store nothing.")
@click.option("--json", "as_json", is_flag=True, help="--stats as JSON.")
@click.option("--name", default="", help="The replay's source name (default: the recorded feed).")
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(min=0, max=86_400),
    default=300.0,
    show_default=True,
    help="Seconds to wait for the workers to confirm every batch.",
)
@click.option("--no-wait", is_flag=True, help="Return once everything is on the broker.")
def replay(
    files: tuple[Path, ...], speed: float, as_fast: bool, start: str | None, end: str | None,
    into: str, jobs: int, port: int, host: str, linger: float, stats: bool, as_json: bool,
    name: str, wait_s: float, no_wait: bool,
) -> None:  # fmt: skip
    """Play recorded frames (RECORD_DIR) back through the ingester's pipeline into the
    database (same keys as live: an hour already stored adds nothing) through the workers,
    or straight in over --jobs processes (--into db, the fastest), or to a real ingester
    over a local WebSocket (--into ws), or describe them (--stats). Live gaps inside what
    the recording held are healed. Times T are
    ISO 8601 (2026-12-05T10:00:00Z; no zone means UTC) or epoch milliseconds."""
    paths = list(files)
    check_files(paths)
    start_ns, end_ns = parse_time(start, "--from"), parse_time(end, "--to")
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise UsageError("--to must be after --from")
    damaged: list[str] = []
    if stats:
        summary = collect(records(paths, start_ns, end_ns, damaged)).to_dict()
        summary["damaged_files"] = damaged
        if as_json:
            click.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
        else:
            click.echo("\n".join(text_lines(summary)))
            for line in damaged:
                click.echo(f"damaged: {line}")
        return
    pacer = Pacer(None if as_fast else speed)
    if into == "ws":
        serve(paths, start_ns, end_ns, damaged, pacer, host, port, linger)
        return
    settings = current_settings()
    if into == "db":
        into_db(settings, paths, start_ns, end_ns, name or default_name(paths), jobs)
        return
    player = Player(
        name or default_name(paths),
        Sender(BrokerClient(settings.effective_broker_url, kind=brokers.for_settings(settings))),
        Metrics(),
        settings.ingest_batch_size,
        settings.ingest_batch_ms,
        settings.ingest_dedup_size,
    )
    started = time.monotonic()
    result = player.play(records(paths, start_ns, end_ns, damaged), pacer)
    sent_s = time.monotonic() - started
    for line in damaged:
        click.echo(f"hyperwatch: damaged: {one_line(line)}", err=True)
    click.echo(
        f"replayed {result.frames:,} frames ({result.malformed:,} malformed) as {player.source}: "
        f"{result.batches:,} batches, {result.trades:,} trades, {result.sessions:,} session "
        f"records sent in {sent_s:.1f} s"
    )
    if no_wait:
        return
    left = wait_confirmed(settings, result, wait_s)
    total_s = time.monotonic() - started
    if left:
        raise ReplayFailed(f"{left} batch(es) not confirmed by the workers within {wait_s:.0f} s")
    rate = result.trades / total_s if total_s > 0 else 0.0
    click.echo(f"stored: every batch confirmed in {total_s:.1f} s ({rate:,.0f} trades/s)")
    healed = heal(settings, lambda db: heal_replayed(db, result.seen, result.gaps.values()))
    click.echo(f"{healed:,} gap(s) healed (inside what the recording held)")
    sys.stdout.flush()


def heal(settings: Settings, run: Callable[[Database], int]) -> int:
    """``run`` on the database, a database failure as the replay's (exit 1)."""
    try:
        return run(get_database(settings))
    except DBAPIError as exc:
        raise ReplayFailed(database_problem(settings, exc)) from None


def database_problem(settings: Settings, exc: DBAPIError) -> str:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    return (
        f"database {redact_url(settings.database_url)}: {reason} "
        "(is it reachable and migrated? `hyperwatch db upgrade`)"
    )


def into_db(
    settings: Settings, paths: list[Path], start_ns: int | None, end_ns: int | None, name: str,
    jobs: int,
) -> None:  # fmt: skip
    """--into db: parse in processes, store here (workers/replay/direct.py)."""
    database = get_database(settings)
    gc.set_threshold(*GC_THRESHOLDS)  # batches of tens of thousands of rows: see shards.py
    try:
        with database.session() as session:
            wallets = tracked_wallets(settings, session)
        replayer = DirectReplay(
            database,
            name,
            wallets=wallets,
            dedup_size=settings.ingest_dedup_size,
            context_bucket_ms=settings.asset_context_bucket_s * 1000,
            jobs=jobs,
        )
        result = replayer.run(paths, start_ns, end_ns)
    except DBAPIError as exc:
        raise ReplayFailed(database_problem(settings, exc)) from None
    except DirectFailed as exc:
        raise ReplayFailed(f"{exc}; what was stored stays, a rerun completes it") from None
    for line in result.damaged:
        click.echo(f"hyperwatch: damaged: {one_line(line)}", err=True)
    rate = result.trades / result.seconds if result.seconds > 0 else 0.0
    click.echo(
        f"replayed {result.frames:,} frames ({result.malformed:,} malformed) as replay:{name} "
        f"into the database in {result.seconds:.1f} s: {result.trades:,} trades "
        f"({result.trades_new:,} new, {result.trades_duplicate:,} already stored; "
        f"{rate:,.0f} trades/s), {result.rows_new:,} other rows new, {result.sessions:,} "
        f"sessions, {result.gaps:,} gaps of its own; {result.healed:,} gap(s) healed"
    )
    sys.stdout.flush()


def serve(
    paths: list[Path], start_ns: int | None, end_ns: int | None, damaged: list[str],
    pacer: Pacer, host: str, port: int, linger: float,
) -> None:  # fmt: skip
    """--into ws: serve until the records are played (or SIGINT/SIGTERM)."""
    coins = sorted(collect(records(paths, start_ns, end_ns, [])).coins)
    server = ReplayServer(
        records(paths, start_ns, end_ns, damaged), coins, pacer, host, port, linger
    )

    async def run() -> ServeResult:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await server.start()
        except OSError as exc:
            raise ReplayFailed(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        click.echo(
            f"serving the recording on {server.ws_url} ({len(coins)} coins); run an ingester "
            f"with HL_WS_URL={server.ws_url} HL_INFO_URL={server.info_url} and its own "
            "INGESTER_NAME (not the live feed's)"
        )
        return await server.play(stop)

    result = asyncio.run(run())
    for line in damaged:
        click.echo(f"hyperwatch: damaged: {one_line(line)}", err=True)
    click.echo(
        f"served {result.frames:,} frames ({result.skipped:,} recorded answers skipped, "
        f"{result.drops:,} recorded drops played)"
    )
