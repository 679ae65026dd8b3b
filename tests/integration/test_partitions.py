"""Day partitions on PostgreSQL: created ahead, on demand for old days, dropped by day."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from events import Trade
from models.db import Database
from models.partitions import create_ahead, day_of, drop_older_than, list_partitions
from models.repositories import TradeRepository
from models.repositories.snapshots import forget_known_partitions


def test_given_old_day_trade_when_stored_then_partition_is_created_on_demand(
    pg_database: Database,
) -> None:
    old = 1_600_000_000_000  # 2020-09-13
    with pg_database.session() as s:
        assert TradeRepository(s).add_batch([Trade("BTC", old, 1, D(1), D(1), "B", "0x0")]).new == 1
    with pg_database.engine.connect() as conn:
        assert f"trade_snapshots_p{day_of(old):%Y%m%d}" in list_partitions(conn, "trade_snapshots")


def test_given_partitions_when_dropping_older_than_cutoff_then_only_old_days_go(
    pg_database: Database,
) -> None:
    today = dt.date(2031, 1, 10)
    with pg_database.engine.begin() as conn:
        create_ahead(conn, today, ahead=2, behind=3)
        dropped = drop_older_than(conn, "trade_snapshots", today - dt.timedelta(days=1))
        remaining = list_partitions(conn, "trade_snapshots")
    forget_known_partitions()
    assert sorted(dropped)[-2:] == ["trade_snapshots_p20310107", "trade_snapshots_p20310108"]
    assert "trade_snapshots_p20310109" in remaining and "trade_snapshots_p20310112" in remaining
    assert not any(name < "trade_snapshots_p20310109" for name in remaining)
