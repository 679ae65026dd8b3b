"""Migrations: empty database → head → base → head, on PostgreSQL and SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import inspect, select, text

from models import PARTITIONED_TABLES, Base, hexbytes, migrate
from models.db import get_database
from models.partitions import day_of, ensure_partitions, list_partitions
from models.trade import TradeSnapshot
from settings import load_settings
from tests.support.services import PostgresDatabase


def _roundtrip(url: str) -> None:
    settings = load_settings(database_url=url)
    engine = get_database(settings).engine
    assert migrate.current(settings) is None
    migrate.upgrade(settings)
    assert migrate.current(settings) == migrate.head(settings)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    migrate.downgrade(settings, "base")
    assert migrate.current(settings) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(settings)
    assert migrate.current(settings) == migrate.head(settings)


def test_given_empty_sqlite_when_migrating_up_down_up_then_schema_follows(tmp_path: Path) -> None:
    _roundtrip(f"sqlite:///{tmp_path / 'm.db'}")


def test_given_empty_postgres_when_migrating_up_down_up_then_schema_follows() -> None:
    database = PostgresDatabase()
    try:
        _roundtrip(database.url)
        settings = load_settings(database_url=database.url)
        with get_database(settings).engine.connect() as conn:
            for table in PARTITIONED_TABLES:
                kind = conn.execute(
                    text("SELECT relkind FROM pg_class WHERE relname = :t"), {"t": table}
                ).scalar()
                assert kind == "p", f"{table} is not partitioned"
        get_database(settings).dispose()
    finally:
        database.close()


def test_given_migrated_database_when_compared_with_models_then_no_drift(database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with database.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )

    # Day partitions are created at run time and are not part of the declared model.
    def runtime_partition(entry: tuple) -> bool:
        obj = entry[1]
        table = getattr(obj, "table", obj)
        return entry[0] in ("remove_table", "remove_index") and "_p2" in str(
            getattr(table, "name", "")
        )

    diff = [d for d in diff if not runtime_partition(d)]
    assert diff == [], diff


def _wallet_activity_migration(url: str) -> None:
    """0006 keeps the fills stored before it (as fills) and its downgrade drops only the rows
    the older schema cannot hold: those no fill completed."""
    settings = load_settings(database_url=url)
    engine = get_database(settings).engine
    migrate.upgrade(settings, "0005")
    fill = {"user": "0x" + "a1" * 20, "tid": 1, "coin": "ETH", "time": 1, "oid": 7, "px": "1.5",
            "sz": "2", "side": "B", "dir": "Open Long", "start_position": "0", "closed_pnl": "0",
            "fee": "0.1", "fee_token": "USDC", "crossed": True, "hash": "0x" + "00" * 32}  # fmt: skip
    columns = ", ".join(f'"{c}"' for c in fill)
    values = ", ".join(f":{c}" for c in fill)
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO user_fills ({columns}) VALUES ({values})"), fill)  # noqa: S608
    migrate.upgrade(settings)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT source, counterparty FROM user_fills")).all() == [
            ("fill", None)
        ]
        conn.execute(
            text(
                'INSERT INTO user_fills ("user", tid, coin, time, px, sz, side, hash, counterparty, '
                "source) VALUES (:u, 2, 'ETH', 2, '1', '1', 'A', :h, :c, 'trade')"
            ),
            {"u": fill["user"], "h": fill["hash"], "c": "0x" + "b2" * 20},
        )
    migrate.downgrade(settings, "0005")
    with engine.connect() as conn:
        assert [r[0] for r in conn.execute(text("SELECT tid FROM user_fills"))] == [1]
    migrate.upgrade(settings)
    get_database(settings).dispose()


def test_given_stored_fills_and_activity_when_0006_goes_up_and_down_then_fills_survive(
    tmp_path: Path,
) -> None:
    _wallet_activity_migration(f"sqlite:///{tmp_path / 'm.db'}")
    database = PostgresDatabase()
    try:
        _wallet_activity_migration(database.url)
    finally:
        database.close()


def _digests_migration(url: str) -> None:
    """0009's downgrade keeps a digested notification, as sent and naming its digest."""
    settings = load_settings(database_url=url)
    engine = get_database(settings).engine
    migrate.upgrade(settings)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, email, tier, active, created_at) "
                "VALUES (1, 'a@x', 'pro', true, CURRENT_TIMESTAMP)"
            )
        )
        for n, (status, digest) in enumerate([("sent", None), ("digested", 1)], 1):
            conn.execute(
                text(
                    "INSERT INTO notifications (id, user_id, channel_kind, payload, status, "
                    "attempts, idempotency_key, digest_id, created_at, updated_at) VALUES "
                    "(:id, 1, 'webhook', '{}', :status, 0, :key, :digest, CURRENT_TIMESTAMP, "
                    "CURRENT_TIMESTAMP)"
                ),
                {"id": n, "status": status, "key": f"k{n}", "digest": digest},
            )
    migrate.downgrade(settings, "0008")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, status, last_error FROM notifications ORDER BY id"))
        assert rows.all() == [(1, "sent", None), (2, "sent", "delivered in digest 1")]
    migrate.upgrade(settings)
    get_database(settings).dispose()


def test_given_a_digested_notification_when_0009_goes_down_then_it_stays_as_sent(
    tmp_path: Path,
) -> None:
    _digests_migration(f"sqlite:///{tmp_path / 'd.db'}")
    database = PostgresDatabase()
    try:
        _digests_migration(database.url)
    finally:
        database.close()


# Trades as the 0009 schema stored them: canonical hex, and the odd values live input,
# tests and old rows hold (upper case, odd length, not hex, no address).
_TRADE_ROWS = [
    ("BTC", 1_754_006_400_000, 1, "117342.5", "0.00123", "B", "0x" + "ab" * 32,
     "0x" + "5b" * 20, "0x" + "0a" * 20),
    ("ETH", 1_754_006_400_001, 2, "3000.1", "1", "A", "0x" + "00" * 32, None, None),
    ("kPEPE", 1_754_006_400_001, 3, "0.0000123", "1000000", "A", "0xAB", "0x1", "h"),
    ("SOL", 1_754_006_400_002, 4, "150", "2.5", "B", "hash", "0xh", "0x"),
]  # fmt: skip


_PARAMS = ("c", "t", "i", "px", "sz", "side", "h", "b", "s")


def _trades_as_text(conn: Any) -> list[tuple[Any, ...]]:
    rows = conn.execute(
        text(
            "SELECT coin, time, tid, CAST(px AS TEXT), CAST(sz AS TEXT), side, hash, buyer, "
            "seller FROM trade_snapshots ORDER BY tid"
        )
    )
    return [tuple(r) for r in rows]


def _trades_through_model(conn: Any) -> list[tuple[Any, ...]]:
    t = TradeSnapshot
    stmt = select(t.coin, t.time, t.tid, t.px, t.sz, t.side, t.hash, t.buyer, t.seller)
    rows = conn.execute(stmt.order_by(t.tid))
    return [(*r[:3], str(r[3]), str(r[4]), *r[5:]) for r in rows]


def _compact_trades_migration(url: str) -> None:
    """0010 keeps every trade exactly, up, down and up again."""
    settings = load_settings(database_url=url)
    engine = get_database(settings).engine
    migrate.upgrade(settings, "0009")
    with engine.begin() as conn:
        ensure_partitions(conn, "trade_snapshots", [day_of(_TRADE_ROWS[0][1])])
        conn.execute(
            text(
                "INSERT INTO trade_snapshots (coin, time, tid, px, sz, side, hash, buyer, seller) "
                "VALUES (:c, :t, :i, :px, :sz, :side, :h, :b, :s)"
            ),
            [dict(zip(_PARAMS, r, strict=True)) for r in _TRADE_ROWS],
        )
    migrate.upgrade(settings)
    with engine.connect() as conn:
        assert _trades_through_model(conn) == _TRADE_ROWS
        if engine.dialect.name == "postgresql":
            sizes = conn.execute(
                text("SELECT octet_length(t.hash), octet_length(w.address) FROM trade_snapshots t "
                     "JOIN wallets w ON w.id = t.buyer_id WHERE t.tid = 1")
            ).one()  # fmt: skip
            assert tuple(sizes) == (33, 21)  # a tag byte and the 32 / 20 bytes
    migrate.downgrade(settings, "0009")
    with engine.connect() as conn:
        assert _trades_as_text(conn) == _TRADE_ROWS
    migrate.upgrade(settings)
    with engine.connect() as conn:
        assert _trades_through_model(conn) == _TRADE_ROWS
    get_database(settings).dispose()


def test_given_stored_trades_when_0010_goes_up_down_up_then_every_value_is_kept(
    tmp_path: Path,
) -> None:
    _compact_trades_migration(f"sqlite:///{tmp_path / 't.db'}")
    database = PostgresDatabase()
    try:
        _compact_trades_migration(database.url)
    finally:
        database.close()


# Trades as 0011 stores them, over two days (two partitions); an address that is the buyer
# of one trade and the seller of others, and the odd values of _TRADE_ROWS.
_DAY2 = 1_754_006_400_000 + 86_400_000
_WALLET_ROWS = [
    *_TRADE_ROWS,
    ("BTC", _DAY2, 5, "117000", "0.5", "A", "0x" + "cd" * 32, "0x" + "0a" * 20, "0x" + "5b" * 20),
    ("BTC", _DAY2 + 1, 6, "117001", "0.25", "B", "0x" + "cd" * 32, "0x1", "0x" + "0a" * 20),
]  # fmt: skip


def _trades_at_0011(conn: Any) -> list[tuple[Any, ...]]:
    rows = _trades_as_text(conn)
    if conn.dialect.name != "postgresql":
        return rows
    decode = hexbytes.decode
    return [
        (*r[:6], decode(bytes(r[6])), *(None if v is None else decode(bytes(v)) for v in r[7:]))
        for r in rows
    ]


def _wallet_dictionary_migration(url: str) -> None:
    """0012 keeps every trade exactly, up, down and up again, each address once."""
    settings = load_settings(database_url=url)
    engine = get_database(settings).engine
    migrate.upgrade(settings, "0011")
    postgres = engine.dialect.name == "postgresql"
    encode = hexbytes.encode if postgres else (lambda v: v)
    with engine.begin() as conn:
        ensure_partitions(conn, "trade_snapshots", {day_of(r[1]) for r in _WALLET_ROWS})
        partitions = list_partitions(conn, "trade_snapshots")
        assert not postgres or {"trade_snapshots_p20250801", "trade_snapshots_p20250802"} <= set(
            partitions
        )
        conn.execute(
            text(
                "INSERT INTO trade_snapshots (coin, time, tid, px, sz, side, hash, buyer, seller) "
                "VALUES (:c, :t, :i, :px, :sz, :side, :h, :b, :s)"
            ),
            [
                dict(zip(_PARAMS, (*r[:6], *(None if v is None else encode(v) for v in r[6:])),
                         strict=True))
                for r in _WALLET_ROWS
            ],
        )  # fmt: skip
    migrate.upgrade(settings)
    with engine.connect() as conn:
        assert _trades_through_model(conn) == _WALLET_ROWS
        addresses = {a for r in _WALLET_ROWS for a in r[7:] if a is not None}
        assert conn.execute(text("SELECT count(*) FROM wallets")).scalar_one() == len(addresses)
        if postgres:
            columns = conn.execute(
                text("SELECT attname FROM pg_attribute WHERE attrelid = 'trade_snapshots'::regclass "
                     "AND attnum > 0 ORDER BY attnum")
            ).scalars().all()  # fmt: skip
            assert columns == ["time", "tid", "buyer_id", "seller_id", "coin", "side", "px",
                               "sz", "hash"]  # fmt: skip
            assert list_partitions(conn, "trade_snapshots") == partitions
    migrate.downgrade(settings, "0011")
    with engine.connect() as conn:
        assert _trades_at_0011(conn) == _WALLET_ROWS
        assert "wallets" not in inspect(engine).get_table_names()
    migrate.upgrade(settings)
    with engine.connect() as conn:
        assert _trades_through_model(conn) == _WALLET_ROWS
    get_database(settings).dispose()


def test_given_stored_trades_when_0012_goes_up_down_up_then_every_value_is_kept(
    tmp_path: Path,
) -> None:
    _wallet_dictionary_migration(f"sqlite:///{tmp_path / 'w.db'}")
    database = PostgresDatabase()
    try:
        _wallet_dictionary_migration(database.url)
    finally:
        database.close()
