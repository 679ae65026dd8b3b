"""Day partitions of the snapshot tables on PostgreSQL (no-ops elsewhere).

Partition bounds are integer milliseconds computed here, never operator input; PostgreSQL
does not accept bind parameters in DDL, so names are quoted by the dialect and bounds are
rendered from ints. Creation takes a transaction-level advisory lock per table so that
several workers creating the same day at once do not collide.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import Connection, text

from models import PARTITIONED_TABLES

DAY_MS = 86_400_000


def day_of(ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date()


def day_start_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


def partition_name(table: str, day: dt.date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def _check_table(table: str) -> None:
    if table not in PARTITIONED_TABLES:
        raise ValueError(f"{table!r} is not a partitioned table")


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def ensure_partitions(conn: Connection, table: str, days: Iterable[dt.date]) -> list[str]:
    """Create the day partitions of ``table`` that do not exist yet; returns those created."""
    _check_table(table)
    if not is_postgres(conn):
        return []
    wanted = sorted(set(days))
    if not wanted:
        return []
    existing = set(list_partitions(conn, table))
    missing = [d for d in wanted if partition_name(table, d) not in existing]
    if not missing:
        return []
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:t))"), {"t": f"hyperwatch.partition.{table}"}
    )
    existing = set(list_partitions(conn, table))
    quote = conn.dialect.identifier_preparer.quote
    created = []
    for day in missing:
        name = partition_name(table, day)
        if name in existing:
            continue
        start = day_start_ms(day)
        conn.execute(
            text(
                f"CREATE TABLE {quote(name)} PARTITION OF {quote(table)} "
                f"FOR VALUES FROM ({int(start)}) TO ({int(start + DAY_MS)})"
            )
        )
        created.append(name)
    return created


def create_ahead(conn: Connection, today: dt.date, ahead: int, behind: int = 1) -> list[str]:
    """Make sure every partitioned table has days [today-behind, today+ahead]."""
    days = [today + dt.timedelta(days=offset) for offset in range(-behind, ahead + 1)]
    created: list[str] = []
    for table in PARTITIONED_TABLES:
        created += ensure_partitions(conn, table, days)
    return created


def list_partitions(conn: Connection, table: str) -> list[str]:
    _check_table(table)
    if not is_postgres(conn):
        return []
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = :table ORDER BY c.relname"
        ),
        {"table": table},
    )
    return [r[0] for r in rows]


def days_older_than(conn: Connection, table: str, cutoff: dt.date) -> list[dt.date]:
    """The days of ``table``'s partitions that end on or before ``cutoff``'s start, oldest
    first."""
    _check_table(table)
    if not is_postgres(conn):
        return []
    prefix = f"{table}_p"
    days = []
    for name in list_partitions(conn, table):
        suffix = name.removeprefix(prefix)
        if not (len(suffix) == 8 and suffix.isdigit()):
            continue
        day = dt.date(int(suffix[:4]), int(suffix[4:6]), int(suffix[6:]))
        if day < cutoff:
            days.append(day)
    return sorted(days)


def drop_older_than(conn: Connection, table: str, cutoff: dt.date) -> list[str]:
    """Drop whole day partitions that end on or before ``cutoff``'s start."""
    quote = conn.dialect.identifier_preparer.quote
    dropped = []
    for day in days_older_than(conn, table, cutoff):
        name = partition_name(table, day)
        conn.execute(text(f"DROP TABLE {quote(name)}"))
        dropped.append(name)
    return dropped
