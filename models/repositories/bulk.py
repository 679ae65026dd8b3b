"""Dialect-aware idempotent bulk insert: a whole batch in one statement, new rows counted.

PostgreSQL: rows are streamed with COPY into a session-local staging table (same columns as
the target), then ``INSERT … SELECT … ON CONFLICT DO NOTHING`` moves them across. COPY is
two orders of magnitude faster than row-at-a-time inserts (architecture §3.1), and the
conflict clause makes a replayed batch a no-op. SQLite: ``INSERT … ON CONFLICT DO NOTHING``
with executemany. Either way, one duplicate never fails the batch.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Boolean, Column, Integer, Numeric, Table, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


def insert_ignore(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    returning: Sequence[str] = (),
) -> tuple[int, list[tuple[Any, ...]]]:
    """Insert ``rows`` skipping those whose key already exists.

    Returns (number of new rows, the ``returning`` columns of each new row). The key is the
    table's primary key / unique constraints; every row must carry every column.
    """
    if not rows:
        return 0, []
    if session.get_bind().dialect.name == "postgresql":
        return _postgres_copy_insert(session, table, rows, returning)
    return _sqlite_insert(session, table, rows, returning)


def _sqlite_insert(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], returning: Sequence[str]
) -> tuple[int, list[tuple[Any, ...]]]:
    stmt = sqlite_insert(table).on_conflict_do_nothing()
    if returning:
        result = session.execute(stmt.returning(*(table.c[name] for name in returning)), list(rows))
        new_rows = [tuple(r) for r in result]
        return len(new_rows), new_rows
    result = session.execute(stmt, list(rows))
    return int(getattr(result, "rowcount", 0) or 0), []


# COPY text format: \N is NULL; backslash, tab, newline and CR must be escaped in text.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_number(value: Any) -> str:
    return "\\N" if value is None else str(value)


def _copy_bool(value: Any) -> str:
    return "\\N" if value is None else ("t" if value else "f")


def _copy_text(value: Any) -> str:
    return "\\N" if value is None else str(value).translate(_COPY_ESCAPES)


def _copy_encoder(column: Column[Any]) -> Callable[[Any], str]:
    # Numbers never contain characters that need escaping: skip the translate (the hot path).
    if isinstance(column.type, Integer | Numeric):
        return _copy_number
    if isinstance(column.type, Boolean):
        return _copy_bool
    return _copy_text


def _postgres_copy_insert(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], returning: Sequence[str]
) -> tuple[int, list[tuple[Any, ...]]]:
    columns = [c.name for c in table.columns]
    stage = f"_stage_{table.name}"
    conn = session.connection()
    quote = conn.dialect.identifier_preparer.quote
    column_list = ", ".join(quote(c) for c in columns)
    # The staging table is temporary (this connection only) and emptied at commit, so a
    # pooled connection reuses it without leaking rows into the next transaction.
    conn.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {quote(stage)} "
            f"(LIKE {quote(table.name)} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
    )
    conn.execute(text(f"TRUNCATE {quote(stage)}"))
    encoders = [(c.name, _copy_encoder(c)) for c in table.columns]
    buffer = io.StringIO()
    buffer.writelines(
        "\t".join([encode(row[name]) for name, encode in encoders]) + "\n" for row in rows
    )
    buffer.seek(0)
    dbapi_conn = conn.connection.driver_connection
    assert dbapi_conn is not None
    with dbapi_conn.cursor() as cursor:
        cursor.copy_expert(f"COPY {quote(stage)} ({column_list}) FROM STDIN", buffer)
    returning_sql = ""
    if returning:
        returning_sql = " RETURNING " + ", ".join(quote(c) for c in returning)
    result = conn.execute(
        text(
            f"INSERT INTO {quote(table.name)} ({column_list}) "  # noqa: S608 - identifiers only
            f"SELECT {column_list} FROM {quote(stage)} ON CONFLICT DO NOTHING{returning_sql}"
        )
    )
    if returning:
        new_rows = [tuple(r) for r in result]
        return len(new_rows), new_rows
    return int(result.rowcount or 0), []
