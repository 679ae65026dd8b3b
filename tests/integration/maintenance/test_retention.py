"""Retention against real databases: partitions dropped on PostgreSQL, chunked deletes
everywhere else (and on SQLite), only finished rows, within the runtime cap."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from events import AssetContext, Position, Trade
from models import (
    DeadLetter,
    FundingRate,
    Gap,
    HealthMetric,
    Notification,
    RestBar,
    Session,
    TradeBar,
    User,
    UserFill,
)
from models.db import Database
from models.partitions import day_of, list_partitions
from models.repositories import AssetContextRepository, PositionRepository, TradeRepository
from runtime.clock import ManualClock
from settings import Settings, load_settings
from tasks.maintenance.retention import Retention, retention

NOW = dt.datetime(2031, 3, 20, 12, 0, tzinfo=dt.UTC)
MS = 1000


def ms(t: dt.datetime) -> int:
    return int(t.timestamp() * MS)


def settings_with(database: Database, **overrides: Any) -> Settings:
    return load_settings(database_url=database.url, **overrides)


def count(database: Database, model: Any) -> int:
    with database.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def trade(t: dt.datetime, tid: int) -> Trade:
    return Trade("BTC", ms(t), tid, D("100.5"), D("0.1"), "B", "0xabc")


def context(t: dt.datetime) -> AssetContext:
    return AssetContext("BTC", ms(t), D("0.0001"), D(1), D(100), D(100), None, None, D(1), D(99))


def position(t: dt.datetime) -> Position:
    return Position(
        "0x" + "a" * 40, "BTC", ms(t), D(1), D(100), D(100), D(0), D(0), None, "cross", 5, D(20)
    )


OLD = NOW - dt.timedelta(days=120)  # older than every default retention
RECENT = NOW - dt.timedelta(hours=1)


# --- partitioned tables on PostgreSQL ---------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "store"),
    [
        ("trade_snapshots", lambda s, t, i: TradeRepository(s).add_batch([trade(t, i)])),
        (
            "asset_context_snapshots",
            lambda s, t, i: AssetContextRepository(s).add_batch([context(t)], 60_000),
        ),
        ("position_snapshots", lambda s, t, i: PositionRepository(s).add_batch([position(t)])),
    ],
)
def test_given_old_and_recent_days_when_retained_on_postgres_then_old_partitions_are_dropped(
    pg_database: Database, table: str, store: Any
) -> None:
    # Given rows on an old day and on a recent one (day partitions created on demand)
    with pg_database.session() as s:
        store(s, OLD, 1)
        store(s, RECENT, 2)
    old_partition = f"{table}_p{day_of(ms(OLD)):%Y%m%d}"
    # When retention runs for the table
    result = Retention(pg_database, settings_with(pg_database), clock=ManualClock.at(NOW)).run(
        table
    )
    # Then the old day's partition is gone with its rows, the recent day stays
    assert old_partition in result.dropped_partitions and result.deleted_rows == 0
    with pg_database.engine.connect() as conn:
        partitions = list_partitions(conn, table)
        rows = conn.execute(select(func.count()).select_from(_table(table))).scalar_one()
    assert old_partition not in partitions
    assert f"{table}_p{day_of(ms(RECENT)):%Y%m%d}" in partitions
    assert rows == 1
    # And a late row for the dropped day is still accepted: the partition cache was cleared
    with pg_database.session() as s:
        store(s, OLD, 3)


def _table(name: str) -> Any:
    from models import Base

    return Base.metadata.tables[name]


# --- chunked deletes (both dialects) ------------------------------------------------------------


def _bar(minute: dt.datetime, coin: str = "BTC") -> dict[str, Any]:
    m = ms(minute)
    return dict(
        coin=coin, minute=m, open=D(1), high=D(1), low=D(1), close=D(1), open_time=m,
        open_tid=1, close_time=m, close_tid=1, volume=D(1), buy_volume=D(1), sell_volume=D(0),
        volume_delta=D(1), trade_count=1,
    )  # fmt: skip


def _fill(t: dt.datetime, tid: int) -> dict[str, Any]:
    return dict(
        user="0x" + "b" * 40, tid=tid, coin="ETH", time=ms(t), oid=tid, px=D(2), sz=D(1),
        side="B", dir="Open Long", start_position=D(0), closed_pnl=D(0), fee=D("0.01"),
        fee_token="USDC", crossed=True, hash="0x1",
    )  # fmt: skip


def _rest_bar(minute: dt.datetime) -> dict[str, Any]:
    return dict(
        coin="BTC", minute=ms(minute), open=D(1), high=D(2), low=D(1), close=D(2),
        volume=D(3), trade_count=4, fetched_at=NOW,
    )  # fmt: skip


ROWS: dict[str, tuple[Any, Any, Any]] = {
    # table: (model, old row, recent row)
    "trade_bars": (TradeBar, _bar(OLD), _bar(RECENT)),
    "user_fills": (UserFill, _fill(OLD, 1), _fill(RECENT, 2)),
    "health_metrics": (
        HealthMetric,
        dict(time=OLD, name="x", value=1.0, labels={}),
        dict(time=RECENT, name="x", value=2.0, labels={}),
    ),
    "dead_letters": (
        DeadLetter,
        dict(task="t", reason="bad", payload="{}", created_at=OLD),
        dict(task="t", reason="bad", payload="{}", created_at=RECENT),
    ),
    "rest_bars": (RestBar, _rest_bar(OLD), _rest_bar(RECENT)),
    "funding_rates": (
        FundingRate,
        dict(coin="BTC", time=ms(NOW - dt.timedelta(days=400)), rate=D("0.0000125")),
        dict(coin="BTC", time=ms(RECENT), rate=D("0.0000125")),
    ),
}


def _gap(gap_id: str, ended: dt.datetime | None, status: str) -> dict[str, Any]:
    return dict(
        id=gap_id, source="ingester", stream="trades", key="BTC",
        from_ms=ms(ended or OLD) - 5_000, to_ms=ms(ended) if ended else None,
        ended_by="reconnect" if ended else "open", status=status, filled=0, opened_at=OLD,
        closed_at=ended,
    )  # fmt: skip


def test_given_gaps_when_retained_then_only_old_settled_ones_go(database: Database) -> None:
    # Given old gaps in every state, a recent settled one and one still open since long ago
    rows = [
        _gap("old-healed", OLD, "healed"),
        _gap("old-partial", OLD, "partial"),
        _gap("old-unrecoverable", OLD, "unrecoverable"),
        _gap("old-closed-unhealed", OLD, "open"),
        _gap("still-open", None, "open"),
        _gap("recent-healed", RECENT, "healed"),
    ]
    with database.engine.begin() as conn:
        conn.execute(insert(Gap), rows)
    # When retention runs for gaps
    result = Retention(database, settings_with(database), clock=ManualClock.at(NOW)).run("gaps")
    # Then the old settled gaps go; a hole still to fill stays however old, and recent ones stay
    assert (result.deleted_rows, result.complete) == (3, True)
    with database.engine.connect() as conn:
        left = set(conn.execute(select(Gap.id)).scalars())
    assert left == {"old-closed-unhealed", "still-open", "recent-healed"}


@pytest.mark.parametrize("table", sorted(ROWS))
def test_given_old_and_recent_rows_when_retained_then_only_old_rows_go(
    database: Database, table: str
) -> None:
    model, old, recent = ROWS[table]
    with database.engine.begin() as conn:
        conn.execute(insert(model), [old, recent])
    result = Retention(database, settings_with(database), clock=ManualClock.at(NOW)).run(table)
    assert (result.deleted_rows, result.complete) == (1, True)
    assert count(database, model) == 1


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_given_trades_on_sqlite_when_retained_then_they_are_chunk_deleted(
    database: Database,
) -> None:
    with database.session() as s:
        TradeRepository(s).add_batch([trade(OLD, 1), trade(OLD, 2), trade(RECENT, 3)])
    result = Retention(database, settings_with(database), clock=ManualClock.at(NOW)).run(
        "trade_snapshots"
    )
    assert result.deleted_rows == 2 and result.dropped_partitions == ()
    with database.session() as s:
        assert [t.tid for t in TradeRepository(s).for_coin("BTC")] == [3]


def _user(database: Database) -> int:
    with database.engine.begin() as conn:
        return int(
            conn.execute(
                insert(User)
                .values(email="r@example.com", tier="free", active=True)
                .returning(User.id)
            ).scalar_one()
        )


def test_given_notifications_when_retained_then_pending_ones_are_kept_for_the_sweeper(
    database: Database,
) -> None:
    user_id = _user(database)
    rows = [
        (status, created, f"{status}-{i}")
        for i, created in enumerate((OLD, RECENT))
        for status in ("pending", "sent", "failed", "suppressed")
    ]
    with database.engine.begin() as conn:
        conn.execute(
            insert(Notification),
            [
                dict(
                    user_id=user_id,
                    channel_kind="webhook",
                    payload={},
                    status=status,
                    attempts=0,
                    idempotency_key=key,
                    created_at=created,
                    updated_at=created,
                )
                for status, created, key in rows
            ],
        )
    result = Retention(database, settings_with(database), clock=ManualClock.at(NOW)).run(
        "notifications"
    )
    assert result.deleted_rows == 3
    with database.engine.connect() as conn:
        left = set(conn.execute(select(Notification.idempotency_key)).scalars())
    assert left == {"pending-0", "pending-1", "sent-1", "failed-1", "suppressed-1"}


def test_given_sessions_when_retained_then_only_finished_old_ones_go(database: Database) -> None:
    def session(sid: str, started: dt.datetime, ended: dt.datetime | None) -> dict[str, Any]:
        return dict(
            id=sid, source="ingester", started_at=started, ended_at=ended, frames=0, events=0,
            malformed=0, duplicates=0, gap_count=0, gaps=[],
        )  # fmt: skip

    with database.engine.begin() as conn:
        conn.execute(
            insert(Session),
            [
                session("old-ended", OLD, OLD + dt.timedelta(hours=1)),
                session("old-never-ended", OLD, None),  # crashed: no end will ever come
                session("old-ended-recently", OLD, RECENT),  # a connection alive for months
                session("recent", RECENT, None),
            ],
        )
    result = Retention(database, settings_with(database), clock=ManualClock.at(NOW)).run("sessions")
    assert result.deleted_rows == 2
    with database.engine.connect() as conn:
        assert set(conn.execute(select(Session.id)).scalars()) == {"old-ended-recently", "recent"}


class EveryReadingTakes20s(ManualClock):
    """Each monotonic reading is 20 s after the previous one (0, 20, 40, …)."""

    def monotonic(self) -> float:
        reading = super().monotonic()
        self.advance(20.0)
        return reading


def test_given_more_than_one_run_can_delete_when_capped_then_it_stops_and_the_next_continues(
    database: Database,
) -> None:
    # Given 7 old rows, chunks of 2 and a clock where every chunk takes 20 s of a 30 s cap
    with database.engine.begin() as conn:
        conn.execute(
            insert(HealthMetric),
            [dict(time=OLD, name="x", value=float(i), labels={}) for i in range(7)],
        )
    retention_ = Retention(
        database,
        settings_with(database, retention_max_runtime_s=30),
        clock=EveryReadingTakes20s.at(NOW, start_s=0.0),
        chunk_size=2,
    )
    # When it runs: two chunks fit in the cap, then it stops, incomplete
    first = retention_.run("health_metrics")
    assert (first.deleted_rows, first.complete) == (4, False)
    assert count(database, HealthMetric) == 3
    # Then the next run finishes the job
    second = retention_.run("health_metrics")
    assert (second.deleted_rows, second.complete) == (3, True)
    assert count(database, HealthMetric) == 0


def test_given_unknown_table_when_retained_then_it_is_an_error(pg_database: Database) -> None:
    with pytest.raises(ValueError, match="no retention policy"):
        Retention(pg_database, settings_with(pg_database)).run("users")


def test_given_the_task_when_called_on_postgres_then_it_applies_the_policy(
    pg_database: Database, tmp_path: Any, make_app: Any
) -> None:
    # The beat entry's task itself, with the settings the worker would have.
    settings = settings_with(pg_database, retention_dead_letters_days=1, data_dir=tmp_path)
    now = dt.datetime.now(dt.UTC)
    with pg_database.engine.begin() as conn:
        conn.execute(
            insert(DeadLetter),
            [
                dict(task="t", reason="old", payload="{}", created_at=now - dt.timedelta(days=2)),
                dict(task="t", reason="new", payload="{}", created_at=now),
            ],
        )
    make_app(settings)
    outcome = retention("dead_letters")
    assert outcome == {
        "table": "dead_letters", "dropped_partitions": [], "deleted_rows": 1, "complete": True,
        "export_failures": [],
    }  # fmt: skip
    assert count(pg_database, DeadLetter) == 1
