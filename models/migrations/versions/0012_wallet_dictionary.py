"""The wallet dictionary: trade buyers and sellers as int4 ids, trade columns by alignment.

A ``wallets`` table (int4 identity id, the address in the encoding of ``models/hexbytes.py``,
unique) holds every address a trade names, once; ``trade_snapshots.buyer``/``seller``
(``bytea``, 22 bytes each) become ``buyer_id``/``seller_id`` (int4, NULL when the trade has
no address), and the table's columns are rewritten in alignment order (time, tid, buyer_id,
seller_id, coin, side, px, sz, hash) so PostgreSQL pads nothing between them. Measured by
``bench/bench_storage_layouts.py`` before building it: 150.4 bytes a trade against 190.1
(0010) and 306.6 (0009) — docs/DATABASE.md "Sizing".

PostgreSQL cannot reorder columns in place, so the table is rebuilt: the 0011 table and its
day partitions are renamed aside (``…_0011``), the new partitioned table is created with
the same day partitions (the same names and bounds), each day is copied in key order with
the addresses looked up in the dictionary and its old partition dropped, then the old
parent. It holds an exclusive lock on the table throughout: on a large database, run it in
a quiet window (it reads and writes every trade once).

SQLite (the small embedded default) gets the same schema by the same copy, without
partitions; its addresses stay text in the dictionary, as they were in the trades.

The downgrade rebuilds 0011's shape (bytea hash, buyer, seller with their length CHECKs,
key (time, coin, tid)) the same way, the addresses copied back from the dictionary, and
drops the dictionary.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import models.base
from models.hexbytes import length_check

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "trade_snapshots_0011"
_NEW = "trade_snapshots_0012"


def _hex(length: int) -> sa.types.TypeEngine[Any]:
    """What models.hexbytes.HexBytes creates: bytea, VARCHAR(length) on SQLite."""
    return sa.LargeBinary().with_variant(sa.String(length), "sqlite")


def _money() -> sa.types.TypeEngine[Any]:
    return sa.Numeric().with_variant(models.base.DecimalText(length=64), "sqlite")


def _new_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("tid", sa.BigInteger(), nullable=False),
        sa.Column("buyer_id", sa.Integer(), nullable=True),
        sa.Column("seller_id", sa.Integer(), nullable=True),
        sa.Column("coin", sa.String(length=40), nullable=False),
        sa.Column("side", sa.String(length=1), nullable=False),
        sa.Column("px", _money(), nullable=False),
        sa.Column("sz", _money(), nullable=False),
        sa.Column("hash", _hex(66), nullable=False),
    ]


def _old_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("coin", sa.String(length=40), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("tid", sa.BigInteger(), nullable=False),
        sa.Column("px", _money(), nullable=False),
        sa.Column("sz", _money(), nullable=False),
        sa.Column("side", sa.String(length=1), nullable=False),
        sa.Column("hash", _hex(66), nullable=False),
        sa.Column("buyer", _hex(42), nullable=True),
        sa.Column("seller", _hex(42), nullable=True),
    ]


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _partitions(table: str) -> list[tuple[str, str]]:
    """(name, bound expression) of ``table``'s partitions, by name (= by day)."""
    rows = op.get_bind().execute(
        sa.text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = CAST(:t AS regclass) "
            "ORDER BY c.relname"
        ),
        {"t": table},
    )
    return [(r[0], r[1]) for r in rows]


def _set_aside(suffix: str) -> list[tuple[str, str]]:
    """Rename trade_snapshots, its key and its partitions (and their indexes) to
    ``…_<suffix>``, so the rebuilt table can take their names; returns the partitions
    (original name, bound)."""
    aside = f"trade_snapshots_{suffix}"
    parts = _partitions("trade_snapshots") if _postgres() else []
    op.execute(f"ALTER TABLE trade_snapshots RENAME TO {aside}")
    if not _postgres():
        return parts
    op.execute(f"ALTER TABLE {aside} RENAME CONSTRAINT pk_trade_snapshots TO pk_{aside}")
    bind = op.get_bind()
    for name, _bound in parts:
        op.execute(f'ALTER TABLE "{name}" RENAME TO "{name}_{suffix}"')
        indexes = bind.execute(
            sa.text(
                "SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
                "WHERE x.indrelid = CAST(:t AS regclass)"
            ),
            {"t": f"{name}_{suffix}"},
        )
        for (index,) in list(indexes):
            op.execute(f'ALTER INDEX "{index}" RENAME TO "{index}_{suffix}"')
    return parts


def _rebuild(
    columns: list[sa.Column[Any]],
    checks: dict[str, int],
    aside: str,
    select_sql: str,
    order: str,
    parts: list[tuple[str, str]],
) -> None:
    """Create trade_snapshots with ``columns`` (key (time, coin, tid)) and fill it from
    ``aside`` by ``select_sql`` (``{src}`` for the source), day by day on PostgreSQL."""
    names = ", ".join(c.name for c in columns)
    op.create_table(
        "trade_snapshots",
        *columns,
        sa.PrimaryKeyConstraint("time", "coin", "tid", name="pk_trade_snapshots"),
        postgresql_partition_by="RANGE (time)",
    )
    if not _postgres():
        op.execute(
            f"INSERT INTO trade_snapshots ({names}) {select_sql.format(src=aside)} ORDER BY {order}"
        )
        op.execute(f"DROP TABLE {aside}")
        return
    if checks:
        added = ", ".join(
            f"ADD CONSTRAINT ck_trade_snapshots_{c}_length CHECK ({length_check(c, n)})"
            for c, n in checks.items()
        )
        op.execute(f"ALTER TABLE trade_snapshots {added}")
    suffix = aside.removeprefix("trade_snapshots_")
    for name, bound in parts:
        op.execute(f'CREATE TABLE "{name}" PARTITION OF trade_snapshots {bound}')
        op.execute(
            f'INSERT INTO "{name}" ({names}) '
            f"{select_sql.format(src=chr(34) + name + '_' + suffix + chr(34))} ORDER BY {order}"
        )
        op.execute(f'DROP TABLE "{name}_{suffix}"')
    op.execute(f"DROP TABLE {aside}")


def upgrade() -> None:
    op.create_table(
        "wallets",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("address", _hex(42), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallets")),
        sa.UniqueConstraint("address", name=op.f("uq_wallets_address")),
    )
    if _postgres():
        op.execute(
            "ALTER TABLE wallets ADD CONSTRAINT ck_wallets_address_length "
            f"CHECK ({length_check('address', 42)})"
        )
    # Ids in address order: deterministic, whatever order the rows were stored in.
    op.execute(
        "INSERT INTO wallets (address) SELECT a FROM (SELECT buyer AS a FROM trade_snapshots "
        "UNION SELECT seller FROM trade_snapshots) s WHERE a IS NOT NULL ORDER BY a"
    )
    parts = _set_aside("0011")
    _rebuild(
        _new_columns(),
        {"hash": 66},
        _OLD,
        "SELECT o.time, o.tid, wb.id, ws.id, o.coin, o.side, o.px, o.sz, o.hash FROM {src} o "
        "LEFT JOIN wallets wb ON wb.address = o.buyer "
        "LEFT JOIN wallets ws ON ws.address = o.seller",
        "o.time, o.coin, o.tid",
        parts,
    )


def downgrade() -> None:
    parts = _set_aside("0012")
    _rebuild(
        _old_columns(),
        {"hash": 66, "buyer": 42, "seller": 42},
        _NEW,
        "SELECT n.coin, n.time, n.tid, n.px, n.sz, n.side, n.hash, wb.address, ws.address "
        "FROM {src} n LEFT JOIN wallets wb ON wb.id = n.buyer_id "
        "LEFT JOIN wallets ws ON ws.id = n.seller_id",
        "n.time, n.coin, n.tid",
        parts,
    )
    op.drop_table("wallets")
