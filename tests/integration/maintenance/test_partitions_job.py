"""The partitions-ahead job against PostgreSQL (and its no-op on SQLite)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from models import PARTITIONED_TABLES
from models.db import Database
from models.partitions import list_partitions
from runtime.clock import ManualClock
from settings import load_settings
from tasks.maintenance.partitions import create_partitions, create_partitions_ahead

DAY = dt.date(2041, 5, 10)  # far from every other test's days
ON_DAY = ManualClock.at(dt.datetime.combine(DAY, dt.time(12), dt.UTC))


@pytest.fixture()
def clean_2041(pg_database: Database) -> Iterator[Database]:
    yield pg_database
    with pg_database.engine.begin() as conn:
        for table in PARTITIONED_TABLES:
            for name in list_partitions(conn, table):
                if "_p2041" in name:
                    conn.execute(text(f'DROP TABLE "{name}"'))  # test-made names


def test_given_a_day_when_run_then_yesterday_to_ahead_exist_for_every_table_once(
    clean_2041: Database,
) -> None:
    created = create_partitions_ahead(clean_2041, ahead_days=2, clock=ON_DAY)
    expected_days = ["20410509", "20410510", "20410511", "20410512"]
    assert sorted(created) == sorted(f"{t}_p{d}" for t in PARTITIONED_TABLES for d in expected_days)
    with clean_2041.engine.connect() as conn:
        for table in PARTITIONED_TABLES:
            names = list_partitions(conn, table)
            assert all(f"{table}_p{d}" in names for d in expected_days)
    # Idempotent: the next hourly run finds nothing to do.
    assert create_partitions_ahead(clean_2041, ahead_days=2, clock=ON_DAY) == []


def test_given_the_task_when_called_on_postgres_then_partitions_exist_ahead_of_today(
    pg_database: Database, make_app: Any
) -> None:
    make_app(load_settings(database_url=pg_database.url, partitions_ahead_days=4))
    create_partitions()
    ahead = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=4)
    with pg_database.engine.connect() as conn:
        for table in PARTITIONED_TABLES:
            assert f"{table}_p{ahead:%Y%m%d}" in list_partitions(conn, table)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_given_sqlite_when_run_then_nothing_is_created(database: Database) -> None:
    assert create_partitions_ahead(database, ahead_days=3, clock=ON_DAY) == []
