"""The day's rows read from PostgreSQL with ``COPY … TO STDOUT`` as CSV and parsed by
``pyarrow.csv`` into the export's exact Arrow schema: about ten times what reading rows
through SQLAlchemy into Arrow does (docs/DATABASE.md, "Export speed"), because no Python
object is made per value.

What keeps it exact and equal to the SQLAlchemy path (a test compares the two files):

- hashes and addresses (``bytea``, models/hexbytes.py) are decoded in SQL to the very
  strings :func:`models.hexbytes.decode` gives;
- decimals are parsed straight into ``decimal128(38, 18)``; pyarrow refuses a value it would
  have to round (more than 18 decimals) or that does not fit, so the export fails, as the
  other path does, instead of storing a different number;
- NULL is CSV's unquoted empty field and an empty string its quoted ``""``: the parser is
  told only the former is null;
- timestamps are written in UTC ISO form whatever the session's time zone.

Memory stays bounded on a day of hundreds of millions of rows: psycopg2 writes the COPY into
a pipe from a thread while the streaming CSV reader parses it block by block; batches are
handed out ``rows`` at a time (one Parquet row group each).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection, FromClause, Select, literal_column, select

from domain.coldtier.arrow import arrow_type
from models.hexbytes import HexBytesType

_PIPE_BUFFER = 1 << 20  # what each write into the pipe carries
_BLOCK = 4 << 20  # bytes of CSV the reader parses at a time


def _is_hex(column: Any) -> bool:
    return isinstance(column.type, HexBytesType)


def _output(column: str, kind: pa.DataType, hex_bytes: bool) -> str:
    """SQL for one column as the CSV field pyarrow parses into ``kind`` exactly."""
    if hex_bytes:  # models/hexbytes.py's decode(), in SQL
        return (
            rf"CASE substring({column} from 1 for 1) "
            rf"WHEN '\x00'::bytea THEN '0x' || encode(substring({column} from 2), 'hex') "
            rf"WHEN '\x01'::bytea THEN convert_from(substring({column} from 2), 'UTF8') "
            rf"ELSE convert_from({column}, 'UTF8') END"
        )
    if pa.types.is_timestamp(kind):
        return (
            f"to_char({column} AT TIME ZONE 'UTC', "
            """'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
        )
    return column


def copy_sql(conn: Connection, query: Select[Any], model: FromClause, order: list[str]) -> str:
    """``COPY (SELECT … ORDER BY order) TO STDOUT`` of ``query`` (the day's rows of
    ``model``, its columns in order) with each column as :func:`_output` writes it."""
    inner = query.subquery("d")
    quote = conn.dialect.identifier_preparer.quote
    fields: list[Any] = [
        literal_column(_output(f"d.{quote(c.name)}", arrow_type(c), _is_hex(c))).label(c.name)
        for c in model.columns
    ]
    # Decoded on the way out, sorted by the raw key (bytea sorts as the SQLAlchemy path's
    # ORDER BY does).
    outer = select(*fields).select_from(inner).order_by(*(inner.c[name] for name in order))
    compiled = outer.compile(conn, compile_kwargs={"literal_binds": True})
    return f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv, HEADER false)"


def _typed(table: pa.Table, arrow_schema: pa.Schema) -> pa.Table:
    """``table`` (the CSV reader's: every field nullable) with the export's schema, which
    marks the key and NOT NULL columns non-nullable (the SQLAlchemy path's file does)."""
    return pa.Table.from_arrays(table.combine_chunks().columns, schema=arrow_schema)


def _pump(cursor: Any, sql: str, sink: BinaryIO, failure: list[BaseException]) -> None:
    try:
        with sink:
            cursor.copy_expert(sql, sink, size=_PIPE_BUFFER)
    except BaseException as exc:  # the reader raises it: a COPY that failed is no day
        failure.append(exc)


def read_batches(
    conn: Connection, sql: str, arrow_schema: pa.Schema, rows: int
) -> Iterator[pa.Table]:
    """The COPY's rows as Arrow tables of ``rows`` rows (the last one fewer), typed by
    ``arrow_schema``; raises what pyarrow or PostgreSQL raised. ``conn`` is a SQLAlchemy
    connection to PostgreSQL (psycopg2) inside the caller's transaction."""
    dbapi: Any = conn.connection.dbapi_connection
    cursor = dbapi.cursor()
    read_fd, write_fd = os.pipe()
    source = os.fdopen(read_fd, "rb", buffering=0)
    failure: list[BaseException] = []
    pump = threading.Thread(
        target=_pump,
        args=(cursor, sql, os.fdopen(write_fd, "wb", buffering=_PIPE_BUFFER), failure),
        name="cold-export-copy",
        daemon=True,
    )
    pump.start()
    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=arrow_schema.names, block_size=_BLOCK),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=arrow_schema,
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                null_values=[""],
                true_values=["t"],
                false_values=["f"],
            ),
        )
        pending: list[pa.RecordBatch] = []
        held = 0
        for batch in reader:
            pending.append(batch)
            held += batch.num_rows
            while held >= rows:
                table = pa.Table.from_batches(pending)
                yield _typed(table.slice(0, rows), arrow_schema)
                rest = table.slice(rows)
                pending, held = rest.to_batches(), rest.num_rows
        pump.join()  # the COPY ended (or failed) before the reader saw the end
        if failure:
            raise failure[0]
        if held:
            yield _typed(pa.Table.from_batches(pending), arrow_schema)
    finally:
        # A reader that stopped early closes the pipe: the COPY then fails on its next
        # write and the thread ends (the caller's transaction is rolled back).
        source.close()
        pump.join()
        cursor.close()
    if failure:
        raise failure[0]
