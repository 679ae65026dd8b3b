"""Export one day of a day-partitioned table to Parquet, verify it, and (for retention) drop
the partition only then.

One file per table per day: ``<COLD_DIR>/<table>/<YYYY-MM-DD>.parquet``, zstd, rows sorted by
the key with text columns first (coin, time, tid for trades). The day's rows are read in one
snapshot (REPEATABLE READ on PostgreSQL) in batches — on PostgreSQL with COPY parsed by
pyarrow (domain/coldtier/copy.py, the fast path), on SQLite through SQLAlchemy — each written as a row group of a
temporary file in the same directory. Verification reads the file back: its row count and
its key checksum — the count and the sum of DuckDB's ``hash()`` of each row's key, so it is
computed the same way over what was read from the database (as Arrow) and over the file —
must equal the database's. Only then is the file renamed into place (atomic: a reader sees
the old file or the new one, never a partial one) and the day recorded ``exported``
(models/cold_export.py).

Idempotent and resumable: a day recorded ``exported`` or ``dropped`` whose file is there
with the recorded size is not exported again; a temporary file left by an interrupted run
is overwritten. Rows that come back for a dropped day (a late replay, an archive import of
old hours: workers create the partition again) are exported again *merged* with the day's
file — the union, each key once — so an earlier export is never overwritten by a part. Any failure — an unwritable directory, a full disk, a value Parquet's exact
decimal cannot hold, a checksum mismatch — records the day ``failed`` with the reason and
raises :class:`ExportFailed`; nothing is dropped, and health reports failed days.

Dropping (retention): in its own transaction, waiting at most 5 s for locks (as retention
always did), the partition is locked against writes and counted again; a row that arrived
after the export (a late replay) makes the count differ, and the day is exported again on
the next run instead of being dropped with that row.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
from sqlalchemy import Connection, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from domain.coldtier.arrow import key_columns, schema, table_of, to_arrow
from domain.coldtier.copy import copy_sql, read_batches
from models import PARTITIONED_TABLES
from models.base import utcnow
from models.cold_export import ColdExport
from models.db import Database
from models.partitions import DAY_MS, day_start_ms, list_partitions, partition_name

log = logging.getLogger(__name__)

BATCH_ROWS = 100_000  # rows read and written (one row group) at a time
_LOCK_TIMEOUT = text("SET LOCAL lock_timeout = '5s'")


class ExportFailed(Exception):
    """The day was not exported (the reason is recorded): its partition must stay."""


@dataclass(frozen=True, slots=True)
class ExportResult:
    table: str
    day: dt.date
    path: Path
    rows: int
    bytes: int
    checksum: str
    skipped: bool = False  # already exported and verified by an earlier run
    seconds: float = 0.0
    # Rows the partition held (the file may hold more: rows of an earlier export of the day,
    # merged); None when skipped (then the file's rows are what the partition must hold).
    partition_rows: int | None = None


def file_for(cold_dir: Path, table: str, day: dt.date) -> Path:
    return cold_dir / table / f"{day:%Y-%m-%d}.parquet"


def _check_table(table: str) -> None:
    if table not in PARTITIONED_TABLES:
        raise ValueError(
            f"{table!r} is not a day-partitioned table (one of {', '.join(PARTITIONED_TABLES)})"
        )


def checksum_of(relation: Any, table: str, con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(rows, sum of hash(key)) of an Arrow table or a Parquet path, computed by DuckDB."""
    key = ", ".join(f'"{c}"' for c in key_columns(table_of(table)))
    if isinstance(relation, Path):
        source = "read_parquet(?)"
        params: list[Any] = [str(relation)]
    else:
        con.register("_hw_batch", relation)
        source, params = "_hw_batch", []
    rows = con.execute(
        f"SELECT count(*), coalesce(sum(hash({key})), 0) FROM {source}",  # noqa: S608 - names
        params,
    ).fetchall()
    count, total = rows[0]
    if not isinstance(relation, Path):
        con.unregister("_hw_batch")
    return int(count), int(total)


def recorded(database: Database, table: str, day: dt.date) -> ColdExport | None:
    with database.session() as session:
        row = session.get(ColdExport, (table, day))
        if row is not None:
            session.expunge(row)
        return row


def _record(database: Database, table: str, day: dt.date, **values: Any) -> None:
    values = {"updated_at": utcnow(), "error": None, **values}
    row = {"table_name": table, "day": day, "rows": 0, "checksum": "", "path": "", "bytes": 0}
    row.update(values)
    dialect = database.dialect
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(ColdExport).values(**row)
    stmt = stmt.on_conflict_do_update(index_elements=["table_name", "day"], set_=values)
    with database.engine.begin() as conn:
        conn.execute(stmt)


def _already_done(database: Database, table: str, day: dt.date, path: Path) -> ColdExport | None:
    """The record of an earlier export that needs no new one: ``exported`` (verified, the
    partition not yet dropped), or ``dropped`` with no row of the day back in the database;
    either with its file there at the recorded size."""
    row = recorded(database, table, day)
    if row is None or row.status not in ("exported", "dropped"):
        return None
    if row.rows or row.path:
        try:
            if Path(row.path) != path or path.stat().st_size != row.bytes:
                return None
        except OSError:
            return None
    if row.status == "exported" or not _day_rows(database, table, day):
        return row
    return None  # rows came back for a dropped day: export again, merged with the file


def _day_rows(database: Database, table: str, day: dt.date) -> int:
    model = table_of(table)
    low = day_start_ms(day)
    with database.engine.connect() as conn:
        stmt = select(func.count()).select_from(model)
        stmt = stmt.where((model.c.time >= low) & (model.c.time < low + DAY_MS))
        return int(conn.execute(stmt).scalar_one())


def export_day(
    database: Database, cold_dir: Path, table: str, day: dt.date, *, via_copy: bool | None = None
) -> ExportResult:
    """Export and verify ``table``'s rows of ``day`` (see module); raises ExportFailed.
    ``via_copy``: read with COPY (domain/coldtier/copy.py; PostgreSQL only) or through
    SQLAlchemy; None is COPY on PostgreSQL (the fast path), SQLAlchemy on SQLite."""
    _check_table(table)
    path = file_for(cold_dir, table, day)
    done = _already_done(database, table, day, path)
    if done is not None:
        return ExportResult(table, day, path, done.rows, done.bytes, done.checksum, skipped=True)
    started = dt.datetime.now(dt.UTC)
    try:
        rows, checksum, partition_rows = _write_verified(database, path, table, day, via_copy)
        size = path.stat().st_size if rows else 0
    except Exception as exc:  # every failure is recorded and keeps the partition
        reason = (
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        )
        _record(database, table, day, status="failed", path=str(path), error=reason[:500])
        log.error("cold export %s %s failed: %s", table, day, reason)
        raise ExportFailed(f"{table} {day}: {reason}") from exc
    # An empty day (a partition made ahead, never written) leaves no file.
    _record(
        database, table, day, status="exported", rows=rows, checksum=checksum,
        path=str(path) if rows else "", bytes=size,
    )  # fmt: skip
    seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
    log.info("cold export %s %s: %d rows, %d bytes in %.1f s", table, day, rows, size, seconds)
    return ExportResult(
        table, day, path, rows, size, checksum, seconds=seconds, partition_rows=partition_rows
    )


def _write_verified(
    database: Database, path: Path, table: str, day: dt.date, via_copy: bool | None
) -> tuple[int, str, int]:
    """Write the day's file; returns (rows in the file, its checksum, rows of the partition)."""
    model = table_of(table)
    arrow_schema = schema(model)
    low = day_start_ms(day)
    in_day = (model.c.time >= low) & (model.c.time < low + DAY_MS)
    order = [model.c[name] for name in key_columns(model)]
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    con = duckdb.connect()
    written = total = 0
    try:
        with database.engine.connect() as conn:
            if database.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                expected = int(
                    conn.execute(select(func.count()).select_from(model).where(in_day)).scalar_one()
                )
                if not expected:
                    return 0, "0:0", 0
                path.parent.mkdir(parents=True, exist_ok=True)
                day_rows = select(*model.columns).where(in_day)
                if via_copy is None:
                    via_copy = database.dialect == "postgresql"
                if via_copy:
                    sql = copy_sql(conn, day_rows, model, key_columns(model))
                    batches = read_batches(conn, sql, arrow_schema, BATCH_ROWS)
                else:
                    result = conn.execution_options(
                        stream_results=True, yield_per=BATCH_ROWS
                    ).execute(day_rows.order_by(*order))
                    batches = (to_arrow(arrow_schema, b) for b in result.partitions(BATCH_ROWS))
                with pq.ParquetWriter(
                    temporary, arrow_schema, compression="zstd", compression_level=9,
                    use_dictionary=True, write_statistics=True,
                ) as writer:  # fmt: skip
                    for arrow in batches:
                        writer.write_table(arrow, row_group_size=BATCH_ROWS)
                        rows, hashed = checksum_of(arrow, table, con)
                        written += rows
                        total += hashed
        if written != expected:
            raise ExportFailed(f"read {written} rows, the day holds {expected}")
        file_rows, file_total = checksum_of(temporary, table, con)
        if (file_rows, file_total) != (written, total):
            raise ExportFailed(
                f"the file does not verify: {file_rows} rows, checksum {file_total}; "
                f"the database's: {written} rows, checksum {total}"
            )
        file_rows, file_total = written, total
        if path.exists():
            # A file from an earlier export of this day: its partition was dropped, and rows
            # came back since (a late replay, an archive import of old hours). Keep both.
            file_rows, file_total = _merge(con, table, temporary, path)
        _fsync(temporary)
        os.replace(temporary, path)
        _fsync(path.parent)
    finally:
        con.close()
        temporary.unlink(missing_ok=True)
    return file_rows, f"{file_rows}:{file_total}", written


def _quoted_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _merge(con: duckdb.DuckDBPyConnection, table: str, fresh: Path, old: Path) -> tuple[int, int]:
    """Rewrite ``fresh`` as the union of itself and ``old`` with each key once (a key is one
    trade, whichever file holds it), sorted as an export is, and verify it: (rows, checksum).
    ``old`` is only read; the caller renames ``fresh`` over it."""
    model = table_of(table)
    columns = ", ".join(f'"{c.name}"' for c in model.columns)
    key = ", ".join(f'"{c}"' for c in key_columns(model))
    distinct = (
        f"SELECT {columns} FROM (SELECT {columns}, 0 AS _src FROM read_parquet({_quoted_path(fresh)}) "  # noqa: S608
        f"UNION ALL SELECT {columns}, 1 AS _src FROM read_parquet({_quoted_path(old)})) "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY _src) = 1"
    )
    expected = con.execute(
        f"SELECT count(*), coalesce(sum(hash({key})), 0) FROM ({distinct})"  # noqa: S608
    ).fetchall()[0]
    merged = fresh.with_name(fresh.name + ".merged")
    try:
        con.execute(
            f"COPY (SELECT * FROM ({distinct}) ORDER BY {key}) TO {_quoted_path(merged)} "  # noqa: S608
            f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {BATCH_ROWS})"
        )
        rows, total = checksum_of(merged, table, con)
        if (rows, total) != (int(expected[0]), int(expected[1])):
            raise ExportFailed(
                f"the merged file does not verify: {rows} rows, expected {expected[0]}"
            )
        os.replace(merged, fresh)
    finally:
        merged.unlink(missing_ok=True)
    return rows, total


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def drop_exported(conn: Connection, table: str, day: dt.date, rows: int) -> bool:
    """Drop ``table``'s partition of ``day`` if it still holds exactly the exported ``rows``
    (see module); False (kept) when it does not. PostgreSQL only; the caller commits."""
    quote = conn.dialect.identifier_preparer.quote
    name = partition_name(table, day)
    if name not in list_partitions(conn, table):
        return True  # dropped before
    conn.execute(_LOCK_TIMEOUT)
    conn.execute(text(f"LOCK TABLE {quote(name)} IN SHARE MODE"))
    now = int(conn.execute(text(f"SELECT count(*) FROM {quote(name)}")).scalar_one())  # noqa: S608
    if now != rows:
        return False
    conn.execute(text(f"DROP TABLE {quote(name)}"))
    return True


def export_and_drop(database: Database, cold_dir: Path, table: str, day: dt.date) -> ExportResult:
    """Retention's step for one old day: export (or find it exported), then drop its
    partition. Raises ExportFailed (partition kept) when the export fails."""
    result = export_day(database, cold_dir, table, day)
    with database.engine.begin() as conn:
        expected = result.rows if result.partition_rows is None else result.partition_rows
        dropped = drop_exported(conn, table, day, expected)
    if not dropped:
        # Rows arrived after the export: export the day again next run, then drop it.
        _record(database, table, day, status="failed", path=str(result.path),
                rows=result.rows, checksum=result.checksum, bytes=result.bytes,
                error="rows changed after the export; exported again on the next run")  # fmt: skip
        raise ExportFailed(f"{table} {day}: rows changed after the export")
    _record(
        database, table, day, status="dropped", rows=result.rows, checksum=result.checksum,
        path=str(result.path) if result.rows else "", bytes=result.bytes,
    )  # fmt: skip
    return result
