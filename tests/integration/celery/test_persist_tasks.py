"""Persist tasks against real databases (SQLite and PostgreSQL), run with ``Task.apply``.

``apply`` runs the real task body, base class and retry policy in this process; what the
broker adds (delivery, acks, retries as messages) is covered by test_worker_inprocess.py
and the e2e worker tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from events import AssetContext, Fill, Position, Trade, encode_batch
from models.db import Database
from runtime import lifecycle
from runtime.metrics_export import task_metrics
from settings import Settings
from tasks.application import HyperwatchCelery, create_app
from tests.integration.celery.support import (
    T0,
    expected_bars,
    make_trades,
    stored_bars,
    stored_trade_keys,
    trades_payload,
)

pytestmark = pytest.mark.integration


@pytest.fixture()
def app(database: Database, settings_for: Callable[..., Settings]) -> Iterator[HyperwatchCelery]:
    app = create_app(settings_for(database_url=database.url))
    app.loader.import_default_modules()
    yield app
    lifecycle.registry.reset()


def run(app: HyperwatchCelery, name: str, payload: Any) -> dict[str, int]:
    result: dict[str, int] = app.tasks[f"hyperwatch.persist.{name}"].apply(args=[payload]).get()
    return result


def sample(name: str, **labels: str) -> float:
    value = task_metrics().registry.get_sample_value(name, labels)
    return value or 0.0


def test_trade_batch_is_stored_once_and_a_replay_adds_nothing(
    app: HyperwatchCelery, database: Database
) -> None:
    # Given a batch of 500 trades over several coins and minutes
    trades = make_trades(500)
    stored_before = sample("hyperwatch_rows_stored_total", table="trade_snapshots")
    dup_before = sample("hyperwatch_rows_duplicate_total", table="trade_snapshots")

    # When it is persisted, then persisted again (a redelivery)
    first = run(app, "trades", trades_payload(trades))
    with database.engine.connect() as conn:
        bars_after_first = stored_bars(conn)
    second = run(app, "trades", trades_payload(trades))

    # Then the first run stored every trade and folded them into bars, the replay stored
    # nothing and left every bar (volume, delta, count) exactly as it was
    assert first["new"] == 500 and first["duplicates"] == 0 and first["bars"] > 0
    assert second == {"new": 0, "duplicates": 500, "bars": 0, "activity": 0}
    with database.engine.connect() as conn:
        assert len(stored_trade_keys(conn)) == 500
        assert stored_bars(conn) == bars_after_first == expected_bars(trades)
    assert sample("hyperwatch_rows_stored_total", table="trade_snapshots") == stored_before + 500
    assert sample("hyperwatch_rows_duplicate_total", table="trade_snapshots") == dup_before + 500


def test_overlapping_batch_folds_only_its_new_trades_into_bars(
    app: HyperwatchCelery, database: Database
) -> None:
    # Given trades 1-300 stored
    trades = make_trades(600)
    run(app, "trades", trades_payload(trades[:300]))

    # When a batch holding trades 201-600 arrives (100 already stored)
    result = run(app, "trades", trades_payload(trades[200:]))

    # Then only the 300 new ones count, and the bars equal those of all 600 trades once
    assert (result["new"], result["duplicates"]) == (300, 100)
    with database.engine.connect() as conn:
        assert stored_bars(conn) == expected_bars(trades)


def test_malformed_batch_is_dead_lettered_with_its_reason_and_not_retried(
    app: HyperwatchCelery, database: Database
) -> None:
    # Given a trade batch whose second event has a price that is not a number
    payload = trades_payload(make_trades(3))
    payload["events"][1][Trade._fields.index("px")] = "12O.5"
    dead_before = sample("hyperwatch_dead_letters_total", task="hyperwatch.persist.trades")

    # When it is persisted
    result = run(app, "trades", payload)

    # Then nothing is stored, the payload is kept with the reason, and the task returned
    # normally (its message is acknowledged, never retried)
    assert result == {"new": 0, "duplicates": 0, "dead_lettered": 1}
    with database.engine.connect() as conn:
        assert stored_trade_keys(conn) == []
        rows = conn.execute(text("SELECT task, reason, payload FROM dead_letters")).all()
    assert len(rows) == 1
    assert rows[0].task == "hyperwatch.persist.trades"
    assert rows[0].reason == "MalformedPayload: event 1: trades.px: not a decimal: '12O.5'"
    assert "12O.5" in rows[0].payload
    assert sample("hyperwatch_dead_letters_total", task="hyperwatch.persist.trades") == (
        dead_before + 1
    )


@pytest.mark.parametrize(
    ("name", "payload", "reason"),
    [
        ("trades", {"v": 1, "kind": "fills", "events": []}, "expected a trades batch, got fills"),
        ("positions", "not a batch", "batch is not JSON"),
        ("fills", "[1, 2]", "batch must be an object, got list"),
        ("session", {"id": "s1", "started_at": "yesterday"}, "session.started_at"),
    ],
)
def test_wrong_shapes_are_dead_lettered(
    app: HyperwatchCelery, database: Database, name: str, payload: Any, reason: str
) -> None:
    # Given a payload of the wrong kind or shape; When persisted
    result = run(app, name, payload)

    # Then it is dead-lettered with a reason naming the problem
    assert result["dead_lettered"] == 1
    with database.engine.connect() as conn:
        stored_reason = conn.execute(text("SELECT reason FROM dead_letters")).scalar_one()
    assert reason in stored_reason


def test_value_the_database_rejects_is_dead_lettered_not_retried(
    pg_database: Database, settings_for: Callable[..., Settings]
) -> None:
    # PostgreSQL only: SQLite does not enforce VARCHAR lengths, so there is nothing to reject.
    database = pg_database
    app = create_app(settings_for(database_url=database.url))
    app.loader.import_default_modules()
    # Given a trade whose hash is longer than the column (a valid event on the wire)
    payload = trades_payload(make_trades(2))
    payload["events"][0][Trade._fields.index("hash")] = "0x" + "ab" * 40

    # When persisted; Then the batch is dead-lettered as a DataError and nothing stored
    result = run(app, "trades", payload)
    assert result["dead_lettered"] == 1
    with database.engine.connect() as conn:
        assert stored_trade_keys(conn) == []
        reason = conn.execute(text("SELECT reason FROM dead_letters")).scalar_one()
    # (the hash is bytes in PostgreSQL: a CHECK holds it to 66 characters, as VARCHAR did)
    assert reason.startswith("CheckViolation: new row for relation"), reason
    assert "ck_trade_snapshots_hash_length" in reason, reason
    lifecycle.registry.reset()


def test_asset_contexts_positions_fills_and_sessions_are_idempotent(
    app: HyperwatchCelery, database: Database
) -> None:
    # Given one batch of each kind (two contexts of BTC in the same minute bucket)
    ctx = [
        AssetContext("BTC", T0 + 1_000 * i, Decimal("0.0000125"), Decimal("1000.5"),
                     Decimal("117000"), Decimal("117001"), None, None, Decimal("1e9"), Decimal("116000"))
        for i in (1, 2)
    ]  # fmt: skip
    user = "0x" + "ab" * 20
    positions = [
        Position(user, "ETH", T0, Decimal("-1.5"), Decimal("3500.1"), Decimal("5250.15"),
                 Decimal("-12.5"), Decimal("-0.01"), None, "cross", 10, Decimal("525.0"))
    ]  # fmt: skip
    fills = [
        Fill(user, "ETH", T0, 77, 900, Decimal("3500.1"), Decimal("1.5"), "A", "Open Short",
             Decimal("0"), Decimal("0"), Decimal("0.35"), "USDC", True, "0x" + "01" * 32)
    ]  # fmt: skip
    session = {"id": "sess-1", "source": "test", "started_at": T0, "ended_at": None,
               "end_reason": None, "frames": 10, "events": 9, "malformed": 1, "duplicates": 0,
               "gaps": []}  # fmt: skip

    # When each is persisted twice
    runs = {
        name: [run(app, name, payload) for _ in range(2)]
        for name, payload in (
            ("asset_contexts", encode_batch("asset_contexts", ctx)),
            ("positions", encode_batch("positions", positions)),
            ("fills", encode_batch("fills", fills)),
            ("session", session),
        )
    }

    # Then the first run stores, the second finds everything already there
    assert runs["asset_contexts"] == [{"new": 1, "duplicates": 1}, {"new": 0, "duplicates": 2}]
    assert runs["positions"] == [{"new": 1, "duplicates": 0}, {"new": 0, "duplicates": 1}]
    assert runs["fills"] == [{"new": 1, "duplicates": 0}, {"new": 0, "duplicates": 1}]
    assert runs["session"] == [{"new": 1, "duplicates": 0}, {"new": 0, "duplicates": 1}]
    with database.engine.connect() as conn:
        for table in ("asset_context_snapshots", "position_snapshots", "user_fills", "sessions"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 1  # noqa: S608
    assert sample("hyperwatch_rows_stored_total", table="user_fills") >= 1


def test_given_finite_policy_when_database_unreachable_then_retried_then_gives_up_loudly(
    settings_for: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    # Given an app whose database refuses connections (nothing listens on port 1)
    app = create_app(
        settings_for(
            database_url="postgresql+psycopg2://hw:pw@127.0.0.1:1/none",
            database_connection_timeout=500,
        )
    )
    app.loader.import_default_modules()
    task = app.tasks["hyperwatch.persist.trades"]
    # (the default policy retries without limit; a finite one is how a task gives up)
    task.policy = replace(task.policy, max_attempts=11)
    failed_before = sample("hyperwatch_tasks_failed_total", task=task.name)

    # When a batch is persisted (apply runs retries at once; countdowns apply via a broker)
    result = task.apply(args=[trades_payload(make_trades(2))])

    # Then it was retried max_retries times, then failed with the database error
    assert result.failed() and isinstance(result.result, OperationalError)
    retries = [r for r in caplog.records if "transient OperationalError, retry" in r.getMessage()]
    assert len(retries) == task.policy.max_retries
    assert any("giving up after 10 retries" in r.getMessage() for r in caplog.records)
    assert sample("hyperwatch_tasks_failed_total", task=task.name) == failed_before + 1
    lifecycle.registry.reset()
