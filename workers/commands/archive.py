"""``hyperwatch archive``: Hyperliquid's historical archive files.

``import PATH...`` stores what local archive files hold (domain/archive/importer.py);
``from-ground-truth`` writes a simulator run's ground truth as archive files.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path
from typing import TextIO

import click
from sqlalchemy.exc import DBAPIError

from domain.archive import ArchiveImporter, ImportSummary, Progress, discover, tracked_wallets
from domain.archive.importer import GC_THRESHOLDS
from models.db import get_database
from runtime.hyperliquid.archive import ArchiveError
from settings import redact_url
from workers.context import UsageError, current_settings, one_line

EXIT_FAILED = 1
_PLAIN_EVERY_S = 10.0
_TTY_EVERY_S = 0.2
_BAR = 24


class ImportFailed(click.ClickException):
    exit_code = EXIT_FAILED

    def show(self, file: object = None) -> None:
        click.echo(f"hyperwatch: {one_line(self.format_message())}", err=True)


class ProgressLine:
    """A progress bar redrawn in place on a terminal, a plain line every 10 s elsewhere."""

    def __init__(self, stream: TextIO, tty: bool | None = None) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        # A terminal sees the bar at once; a log's first line comes after 10 s.
        self._last = 0.0 if self.tty else time.monotonic()
        self._drawn = False

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if not p.final and now - self._last < (_TTY_EVERY_S if self.tty else _PLAIN_EVERY_S):
            return
        self._last = now
        share = p.bytes_done / p.bytes_total if p.bytes_total else 1.0
        mb = f"{p.bytes_done / 1e6:,.1f}/{p.bytes_total / 1e6:,.1f} MB"
        text = f"{share:4.0%} {mb}  {p.trades:,} trades  {p.rate:,.0f} trades/s"
        if not p.final:
            text += f"  file {p.file_index}/{p.file_count} {p.key}"
        if self.tty:
            filled = round(share * _BAR)
            line = f"[{'#' * filled}{'.' * (_BAR - filled)}] {text}"
            self.stream.write("\r\x1b[K" + line[:200] + ("\n" if p.final else ""))
            self._drawn = not p.final
        elif not p.final:
            self.stream.write(f"archive import: {text}\n")
        self.stream.flush()


def summary_lines(summary: ImportSummary) -> list[str]:
    done, skipped, failed = (summary.count(s) for s in ("done", "skipped", "failed"))
    superseded = summary.count("superseded")
    resumed = sum(1 for f in summary.files if f.resumed_from and f.status != "skipped")
    derived = summary.total("trades")
    activity = summary.total("activity")
    lines = [
        f"files: {len(summary.files)} ({done} imported, {skipped} already done, {failed} failed"
        + (f", {resumed} resumed" if resumed else "")
        + (f", {superseded} node_trades hours skipped: node_fills has them" if superseded else "")
        + ")",
        f"lines: {summary.total('lines_read'):,} read",
        f"trades: {summary.total('trades_new'):,} new, {summary.total('trades_duplicate'):,} "
        f"already stored ({derived:,} derived; {summary.total('unpaired_fills'):,} unpaired "
        f"fills, {summary.total('skipped_dust'):,} dust/zero-size fills skipped)",
        f"fills of tracked wallets: {summary.total('fills_new'):,} new, "
        f"{summary.total('fills_duplicate'):,} already stored"
        + (f"; {activity:,} rows of their activity from the new trades" if activity else ""),
        f"bad lines: {summary.total('bad_lines'):,}",
    ]
    lines += [f"  {sample}" for sample in summary.bad_samples[:5]]
    lines += [f"failed: {f.error}" for f in summary.failed]
    lines.append(f"gaps healed: {summary.gaps_healed:,} (`hyperwatch gaps` shows what remains)")
    rate = derived / summary.seconds if summary.seconds > 0 else 0.0
    lines.append(f"time: {summary.seconds:,.1f} s ({rate:,.0f} trades/s)")
    return [one_line(line) for line in lines]


@click.group()
def archive() -> None:
    """Hyperliquid's historical archive files (node_trades, node_fills, node_fills_by_block)."""


@archive.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--batch-size",
    default=50_000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Trades stored per transaction.",
)
@click.option("--force", is_flag=True, help="Read files imported before again, from the start.")
@click.option(
    "--jobs",
    default=min(os.cpu_count() or 1, 4),
    show_default="the CPUs, at most 4",
    type=click.IntRange(1, 64),
    help="Files imported at once, each by a process of its own with its own connection "
    "(PostgreSQL; SQLite takes one): parsing is what limits one process.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show progress on stderr (default: a bar on a terminal, a line every 10 s elsewhere).",
)
def import_archive(
    paths: tuple[Path, ...], batch_size: int, force: bool, jobs: int, progress: bool | None
) -> None:
    """Import archive files and directory trees of them (*.lz4): trades, tracked wallets'
    fills and 1-minute bars. Idempotent, resumable per file."""
    settings = current_settings()
    try:
        files = discover(paths)
    except ArchiveError as exc:
        raise UsageError(str(exc)) from None
    if not files:
        raise UsageError("no archive files (*.lz4) in " + ", ".join(map(str, paths)))
    database = get_database(settings)
    reporter = None if progress is False else ProgressLine(sys.stderr)
    gc.set_threshold(*GC_THRESHOLDS)  # see GC_THRESHOLDS
    try:
        with database.session() as session:
            wallets = tracked_wallets(settings, session)
        importer = ArchiveImporter(
            database, wallets, batch_size=batch_size, force=force, progress=reporter, jobs=jobs
        )
        summary = importer.run(files)
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ImportFailed(
            f"database {redact_url(settings.database_url)}: {reason} "
            "(is it reachable and migrated? `hyperwatch db upgrade`)"
        ) from None
    for line in summary_lines(summary):
        click.echo(line)
    if summary.failed:
        raise ImportFailed(f"{len(summary.failed)} file(s) failed; rerun to resume them")


@archive.command("from-ground-truth")
@click.argument("ground_truth", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write node_fills_by_block/hourly/{YYYYMMDD}/{H}.lz4 under.",
)
@click.option(
    "--level",
    default=9,
    show_default=True,
    type=click.IntRange(0, 16),
    help="LZ4 compression level (9 is what the real files use).",
)
def from_ground_truth(ground_truth: Path, out_dir: Path, level: int) -> None:
    """Write a simulator ground truth (`simulate --record`) as hourly archive files."""
    from workers.simulator.archive import write_from_ground_truth

    stats = write_from_ground_truth(ground_truth, out_dir, compression_level=level)
    click.echo(
        f"wrote {stats.files} file(s) under {out_dir}: {stats.blocks:,} blocks, "
        f"{stats.trades:,} trades, {stats.fills:,} fills"
    )
