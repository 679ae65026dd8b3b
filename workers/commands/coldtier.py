"""``hyperwatch export`` and ``hyperwatch history``: the cold tier by hand.

``export --table T --day D [--drop]`` exports one day of a day-partitioned table to Parquet
in ``COLD_DIR`` and verifies it, exactly as retention does before a drop
(domain/coldtier/export.py); ``--drop`` then drops the day's partition as retention would.
``history query "SQL"`` runs SQL in DuckDB over the files, one view per table, and with
``--hot SINCE`` the database's rows from then on too (domain/coldtier/query.py).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import duckdb

from domain.coldtier.export import ExportFailed, export_and_drop, export_day
from domain.coldtier.query import query
from models import PARTITIONED_TABLES
from models.db import get_database
from settings import Settings
from workers.commands.gaps import parse_since
from workers.context import UsageError, current_settings

EXIT_FAILED = 1


class CommandFailed(click.ClickException):
    exit_code = EXIT_FAILED


def _cold_dir(settings: Settings, given: Path | None) -> Path:
    cold_dir = given or settings.cold_dir
    if cold_dir is None:
        raise UsageError("no cold tier directory: set COLD_DIR or pass --cold-dir")
    return cold_dir


@click.command("export")
@click.option(
    "--table", required=True, type=click.Choice(PARTITIONED_TABLES), help="The table to export."
)
@click.option("--day", required=True, help="The UTC day, YYYY-MM-DD.")
@click.option("--cold-dir", type=click.Path(path_type=Path), help="Instead of COLD_DIR.")
@click.option("--drop", is_flag=True, help="Drop the day's partition once verified.")
def export(table: str, day: str, cold_dir: Path | None, drop: bool) -> None:
    """Export one day of a table to Parquet and verify it (what retention does first)."""
    try:
        when = dt.date.fromisoformat(day)
    except ValueError:
        raise UsageError(f"--day takes YYYY-MM-DD, got {day!r}") from None
    settings = current_settings()
    target = _cold_dir(settings, cold_dir)
    database = get_database(settings)
    started = time.perf_counter()
    try:
        if drop and database.dialect == "postgresql":
            result = export_and_drop(database, target, table, when)
        else:
            result = export_day(database, target, table, when)
    except ExportFailed as exc:
        raise CommandFailed(f"export failed, nothing dropped: {exc}") from None
    seconds = time.perf_counter() - started
    if result.skipped:
        click.echo(f"{result.path}: already exported and verified ({result.rows:,} rows)")
        return
    rate = result.rows / seconds if seconds > 0 else 0.0
    per_row = result.bytes / result.rows if result.rows else 0.0
    click.echo(
        f"{result.path}: {result.rows:,} rows, {result.bytes:,} bytes ({per_row:.1f} a row), "
        f"verified, in {seconds:.1f} s ({rate:,.0f} rows/s)"
        + ("; partition dropped" if drop else "")
    )


@click.group()
def history() -> None:
    """History across the cold tier's Parquet files (and the database)."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        # DECIMAL(38,18) carries 18 decimals; print the value, not the scale.
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


@history.command("query")
@click.argument("sql")
@click.option("--cold-dir", type=click.Path(path_type=Path), help="Instead of COLD_DIR.")
@click.option(
    "--hot",
    "hot_since",
    default=None,
    help="Also the database's rows since then (90m, 24h, 7d or an ISO time).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array of objects.")
def history_query(sql: str, cold_dir: Path | None, hot_since: str | None, as_json: bool) -> None:
    """Run SQL over trade_snapshots, asset_context_snapshots and position_snapshots."""
    settings = current_settings()
    target = _cold_dir(settings, cold_dir)
    database = None
    since_ms = None
    if hot_since is not None:
        since_ms = parse_since(hot_since, int(time.time() * 1000))
        database = get_database(settings)
    try:
        result = query(target, sql, database, since_ms)
    except duckdb.Error as exc:
        raise UsageError(f"query failed: {str(exc).strip().splitlines()[0]}") from None
    if as_json:
        click.echo(
            json.dumps(
                [
                    {c: (None if v is None else _text(v) if isinstance(v, Decimal) else v)
                     for c, v in zip(result.columns, row, strict=True)}
                    for row in result.rows
                ],
                default=str,
            )
        )  # fmt: skip
        return
    click.echo("\t".join(result.columns))
    for row in result.rows:
        click.echo("\t".join(_text(v) for v in row))
