"""Compact trade rows: hashes and addresses as bytes, the key's index led by time.

PostgreSQL: ``trade_snapshots.hash``, ``buyer`` and ``seller`` become ``bytea`` in the
lossless encoding of ``models/hexbytes.py`` (canonical hex: the byte 00 then the digits;
other text starting with ``0x`` or ``\\x01``: 01 then its UTF-8; any other text: its UTF-8),
and the primary key (still the set coin, time, tid) is rebuilt as (time, coin, tid), which
also serves what the separate B-tree on ``time`` served, so that index is dropped. Measured
by ``bench/bench_storage.py``: a row from 228 to 149 bytes, the key's index from 71 to 41,
the time index's 8 gone. The columns are rewritten in one ``ALTER TABLE`` (one pass over
every partition, under an exclusive lock: on a large database, run it in a quiet window).

SQLite keeps the text columns (the embedded default is small); only the key's order and the
index change, by a table rebuild. Downgrade restores the text and the indexes exactly.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from models.hexbytes import length_check

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HEX_COLUMNS = ("hash", "buyer", "seller")
# As VARCHAR(n) did, CHECKs refuse strings longer than n characters (models/hexbytes.py).
_LENGTH = {"hash": 66, "buyer": 42, "seller": 42}


def _to_bytes(column: str) -> str:
    return (
        f"CASE WHEN {column} ~ '^0x([0-9a-f]{{2}})*$' "
        rf"THEN '\x00'::bytea || decode(substr({column}, 3), 'hex') "
        f"WHEN left({column}, 2) = '0x' OR left({column}, 1) = chr(1) "
        rf"THEN '\x01'::bytea || convert_to({column}, 'UTF8') "
        f"ELSE convert_to({column}, 'UTF8') END"
    )


def _to_text(column: str) -> str:
    head = f"substring({column} from 1 for 1)"
    return (
        rf"CASE WHEN {head} = '\x00'::bytea "
        f"THEN '0x' || encode(substring({column} from 2), 'hex') "
        rf"WHEN {head} = '\x01'::bytea THEN convert_from(substring({column} from 2), 'UTF8') "
        f"ELSE convert_from({column}, 'UTF8') END"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("trade_snapshots", recreate="always") as batch_op:
            batch_op.drop_index("ix_trade_snapshots_time")
            batch_op.drop_constraint("pk_trade_snapshots", type_="primary")
            batch_op.create_primary_key("pk_trade_snapshots", ["time", "coin", "tid"])
        return
    op.execute("DROP INDEX ix_trade_snapshots_time")
    op.execute("ALTER TABLE trade_snapshots DROP CONSTRAINT pk_trade_snapshots")
    changes = ", ".join(f"ALTER COLUMN {c} TYPE bytea USING {_to_bytes(c)}" for c in HEX_COLUMNS)
    checks = ", ".join(
        f"ADD CONSTRAINT ck_trade_snapshots_{c}_length CHECK ({length_check(c, _LENGTH[c])})"
        for c in HEX_COLUMNS
    )
    op.execute(f"ALTER TABLE trade_snapshots {changes}, {checks}")
    op.execute(
        "ALTER TABLE trade_snapshots ADD CONSTRAINT pk_trade_snapshots "
        "PRIMARY KEY (time, coin, tid)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("trade_snapshots", recreate="always") as batch_op:
            batch_op.drop_constraint("pk_trade_snapshots", type_="primary")
            batch_op.create_primary_key("pk_trade_snapshots", ["coin", "time", "tid"])
            batch_op.create_index("ix_trade_snapshots_time", ["time"], unique=False)
        return
    op.execute("ALTER TABLE trade_snapshots DROP CONSTRAINT pk_trade_snapshots")
    for c in HEX_COLUMNS:
        op.execute(f"ALTER TABLE trade_snapshots DROP CONSTRAINT ck_trade_snapshots_{c}_length")
    changes = ", ".join(
        f"ALTER COLUMN {c} TYPE varchar({_LENGTH[c]}) USING {_to_text(c)}" for c in HEX_COLUMNS
    )
    op.execute(f"ALTER TABLE trade_snapshots {changes}")
    op.execute(
        "ALTER TABLE trade_snapshots ADD CONSTRAINT pk_trade_snapshots "
        "PRIMARY KEY (coin, time, tid)"
    )
    op.execute("CREATE INDEX ix_trade_snapshots_time ON trade_snapshots (time)")
