"""``hyperwatch history query "SQL"``: DuckDB over the cold tier's Parquet files and,
optionally, the rows still in the database.

Each day-partitioned table is a view of the same name over its files
(``<COLD_DIR>/<table>/*.parquet``). With ``hot_since_ms``, the view is the union of the
files and the database's rows of that table from ``hot_since_ms`` on, read through the
models (so hashes and addresses are their strings, amounts exact) into Arrow; a day that
has a file is taken from the file only, so a day exported but not yet dropped is never
counted twice. DuckDB's postgres extension is not used: it is downloaded at run time,
which a server without internet access cannot do.

Amounts are ``DECIMAL(38,18)`` in the files and in the hot rows alike, so sums and
comparisons are exact; results come back as Python ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import select

from domain.coldtier.arrow import schema, table_of, to_arrow
from models import PARTITIONED_TABLES
from models.db import Database
from models.partitions import DAY_MS, day_start_ms


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _cold_days(cold_dir: Path, table: str) -> list[int]:
    """Day starts (ms) of ``table``'s files."""
    import datetime as dt

    out = []
    for path in sorted((cold_dir / table).glob("*.parquet")):
        try:
            out.append(day_start_ms(dt.date.fromisoformat(path.stem)))
        except ValueError:
            continue
    return out


def connect(
    cold_dir: Path,
    database: Database | None = None,
    hot_since_ms: int | None = None,
    tables: Sequence[str] = PARTITIONED_TABLES,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view per table (see module)."""
    con = duckdb.connect()
    for table in tables:
        model = table_of(table)
        arrow_schema = schema(model)
        parts: list[str] = []
        files = (cold_dir / table).glob("*.parquet")
        if any(files):
            pattern = str(cold_dir / table / "*.parquet")
            parts.append(f"SELECT * FROM read_parquet({_literal(pattern)})")  # noqa: S608
        if database is not None and hot_since_ms is not None:
            cold = _cold_days(cold_dir, table)
            with database.engine.connect() as conn:
                rows = conn.execute(
                    select(*model.columns).where(model.c.time >= hot_since_ms)
                ).all()
            hot = to_arrow(
                arrow_schema,
                [r for r in rows if (int(r.time) - int(r.time) % DAY_MS) not in set(cold)],
            )
            con.register(f"_hot_{table}", hot)
            parts.append(f"SELECT * FROM _hot_{table}")  # noqa: S608
        if not parts:
            # No history yet: an empty view with the table's columns, so queries still run.
            con.register(f"_empty_{table}", to_arrow(arrow_schema, []))
            parts.append(f"SELECT * FROM _empty_{table}")  # noqa: S608
        con.execute(f"CREATE VIEW {table} AS " + " UNION ALL BY NAME ".join(parts))
    return con


def query(
    cold_dir: Path, sql: str, database: Database | None = None, hot_since_ms: int | None = None
) -> QueryResult:
    con = connect(cold_dir, database, hot_since_ms)
    try:
        result = con.execute(sql)
        columns = [d[0] for d in result.description or []]
        return QueryResult(columns, [tuple(r) for r in result.fetchall()])
    finally:
        con.close()
