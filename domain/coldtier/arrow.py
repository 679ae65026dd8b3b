"""Rows of the day-partitioned tables as Arrow: the Parquet files' schema, derived from the
models so a new column is exported without a change here.

Exact types only: prices, sizes and amounts are ``decimal128(38, 18)`` (a value with more
than 18 decimals or 20 integer digits fails the conversion, so the export fails and the
partition stays, rather than being rounded); hashes and addresses are their strings
(dictionary-encoded by Parquet where they repeat); times are int64 milliseconds as stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from sqlalchemy import Boolean, FromClause, Integer, Numeric, String

from models import Base
from models.base import UtcDateTime
from models.hexbytes import HexBytesType
from models.trade import TRADES_AS_READ, TradeSnapshot

DECIMAL = pa.decimal128(38, 18)


def arrow_type(column: Any) -> pa.DataType:
    kind = column.type
    if isinstance(kind, HexBytesType | String):
        return pa.string()
    if isinstance(kind, Boolean):
        return pa.bool_()
    if isinstance(kind, Integer):
        return pa.int64()
    if isinstance(kind, Numeric):
        return DECIMAL
    if isinstance(kind, UtcDateTime):
        return pa.timestamp("us", tz="UTC")
    raise TypeError(f"no Parquet type for {column.table.name}.{column.name} ({kind!r})")


def table_of(name: str) -> FromClause:
    """The rows of ``name`` as exported: the table's, but trades with their buyer and
    seller addresses (the wallet dictionary joined, models/trade.py), so the files keep
    one schema across migration 0012."""
    if name == TradeSnapshot.__tablename__:
        return TRADES_AS_READ
    return Base.metadata.tables[name]


def schema(table: FromClause) -> pa.Schema:
    return pa.schema(
        [pa.field(c.name, arrow_type(c), nullable=bool(c.nullable)) for c in table.columns]
    )


def key_columns(table: FromClause) -> list[str]:
    """The table's key, text columns first: the files' sort order (a coin's rows together,
    in time order: what compresses best and what a reader of one coin skips to)."""
    primary_key: Any = table.primary_key
    key = list(getattr(primary_key, "columns", primary_key))
    text = [c.name for c in key if isinstance(c.type, String | HexBytesType)]
    return text + [c.name for c in key if c.name not in text]


def to_arrow(arrow_schema: pa.Schema, rows: Sequence[Sequence[Any]]) -> pa.Table:
    """Rows (tuples in the schema's column order) as one Arrow table."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(arrow_schema)
    return pa.Table.from_arrays(
        [
            pa.array(values, type=field.type)
            for values, field in zip(columns, arrow_schema, strict=True)
        ],
        schema=arrow_schema,
    )
