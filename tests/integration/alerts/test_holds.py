"""Holds on the real Redis and PostgreSQL: an alert never fires on stale data or inside an
open gap; each channel gets exactly one 'data stale' and one 'restored' notice per hold;
the held alert is judged on the first fresh data. Time is passed in (no sleeps)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis

from events import Trade, encode_batch
from models.db import Database
from models.notification import Notification
from runtime import keys, lifecycle
from settings import Settings
from tasks.alerts.evaluate import HOLDS_KEY, Evaluator
from tasks.application import HyperwatchCelery, create_app
from tests.integration.alerts.support import (
    add_alert,
    add_channel,
    add_user,
    mids,
    notifications,
    now_ms,
)

pytestmark = pytest.mark.integration


@pytest.fixture()
def evaluator(alert_settings: Settings, pg_database: Database) -> Iterator[Evaluator]:
    app: HyperwatchCelery = create_app(alert_settings)
    client = redis.Redis.from_url(alert_settings.redis_url)
    yield Evaluator(app, alert_settings, pg_database, client)
    client.close()
    app.close()
    lifecycle.registry.reset()


def _subscribers(
    db: Database, settings: Settings, client: redis.Redis, coin: str, kind: str = "price_above"
) -> tuple[list[int], list[int]]:
    """Two users, each with a channel and an alert on ``coin`` at 100 (threshold in USD
    notional for whale trades)."""
    channels, alerts = [], []
    for name in ("ann", "bob"):
        user = add_user(db, f"{name}@example.com")
        channel = add_channel(db, settings, user, "http://127.0.0.1:9/h")
        alert = add_alert(db, settings, client, user, channel, kind=kind, coin=coin,
                          threshold="100")  # fmt: skip
        channels.append(channel)
        alerts.append(alert)
    return channels, alerts


def _kinds(rows: list[Notification]) -> list[tuple[str, int | None]]:
    return [(str(n.payload["kind"]), n.channel_id) for n in rows]


def test_stale_mids_hold_the_alert_with_one_stale_and_one_restored_notice_per_channel(
    evaluator: Evaluator, alert_settings: Settings, pg_database: Database,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    # Given two subscribers with BTC > 100 alerts, and a BTC mid of 99 at t0
    channels, alerts = _subscribers(pg_database, alert_settings, redis_client, "BTC")
    t0 = now_ms()
    evaluator.evaluate_batch(mids(t0, BTC="99"), t0)
    hold_ms = int(alert_settings.alert_hold_mids_s * 1000)

    # When the mids stop for longer than ALERT_HOLD_MIDS_S and the tick runs twice
    evaluator.tick(t0 + hold_ms + 1)
    evaluator.tick(t0 + hold_ms + 2_000)

    # Then each channel got exactly one 'data stale' notice, naming when the data stopped
    rows = notifications(pg_database)
    assert _kinds(rows) == [("data_stale", channels[0]), ("data_stale", channels[1])]
    assert rows[0].payload["since"] == t0 and rows[0].status == "pending"
    assert rows[0].payload["message"].startswith("data stale for BTC since ")
    assert json.loads(redis_client.hget(HOLDS_KEY, "BTC") or b"{}")["since"] == t0

    # When a late mid of 101 arrives that is itself older than the hold threshold
    # (fresh enough for ALERT_MAX_AGE_S, but the feed is behind)
    late = t0 + 1_000
    report = evaluator.evaluate_batch(mids(late, BTC="101"), late + hold_ms + 1)

    # Then nothing fires and the hold stays
    assert report.fired == 0 and report.held == 2
    assert len(notifications(pg_database)) == 2 and redis_client.hexists(HOLDS_KEY, "BTC")

    # When fresh data arrives (BTC still 101)
    fresh = late + hold_ms + 5_000
    report = evaluator.evaluate_batch(mids(fresh, BTC="101"), fresh)

    # Then the hold ends: one 'restored' notice per channel, and then, judged on that first
    # fresh data, both alerts fire
    assert report.fired == 2 and report.held == 0
    rows = notifications(pg_database)
    assert _kinds(rows) == [
        ("data_stale", channels[0]), ("data_stale", channels[1]),
        ("data_restored", channels[0]), ("data_restored", channels[1]),
        ("price_above", channels[0]), ("price_above", channels[1]),
    ]  # fmt: skip
    assert [r.alert_id for r in rows[4:]] == alerts
    assert rows[2].payload["since"] == t0
    assert not redis_client.hexists(HOLDS_KEY, "BTC")

    # When later ticks run on fresh data
    evaluator.tick(fresh + 1_000)
    evaluator.tick(fresh + 2_000)

    # Then no further notice
    assert len(notifications(pg_database)) == 6


def test_an_open_gap_holds_price_and_event_alerts_until_it_closes(
    evaluator: Evaluator, alert_settings: Settings, pg_database: Database,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    # Given an ETH price alert and an ETH whale-trade alert, and an open ETH trades gap in
    # an ingester's journal (the connection ended at t0)
    price_channels, _ = _subscribers(pg_database, alert_settings, redis_client, "ETH")
    user = add_user(pg_database, "whale@example.com")
    whale_channel = add_channel(pg_database, alert_settings, user, "http://127.0.0.1:9/w")
    add_alert(pg_database, alert_settings, redis_client, user, whale_channel,
              kind="whale_trade", coin="ETH", threshold="1000")  # fmt: skip
    t0 = now_ms()
    journal = keys.GAPS_OPEN.name(feed="test-feed")
    gap = {"id": "g1", "stream": "trades", "key": "ETH", "from_ms": t0 - 60_000,
           "to_ms": None, "opened_at": t0}  # fmt: skip
    redis_client.hset(journal, "trades|ETH", json.dumps(gap))
    redis_client.hset(journal, "userFills|0xab", json.dumps({**gap, "stream": "userFills"}))

    # When fresh mids cross the threshold and a whale trade arrives inside the gap, and
    # the tick runs
    held = evaluator.evaluate_batch(mids(t0 + 500, ETH="101"), t0 + 500)
    trade = Trade("ETH", t0 + 600, 1, Decimal("3000"), Decimal("10"), "B", "0x" + "1" * 64)
    held_trade = evaluator.evaluate_batch(encode_batch("trades", [trade]), t0 + 700)
    evaluator.tick(t0 + 1_000)
    evaluator.tick(t0 + 2_000)

    # Then nothing fired; each of the three channels was told once that ETH is held since
    # the gap opened
    assert (held.fired, held.held, held_trade.fired, held_trade.held) == (0, 2, 0, 1)
    rows = notifications(pg_database)
    assert _kinds(rows) == [("data_stale", c) for c in (*price_channels, whale_channel)]
    assert {r.payload["since"] for r in rows} == {t0}
    assert "feed for ETH was cut" in rows[0].payload["reason"]

    # When the first new trade closes the gap (the journal drops it) and fresh mids arrive
    redis_client.hdel(journal, "trades|ETH")
    report = evaluator.evaluate_batch(mids(t0 + 3_000, ETH="101"), t0 + 3_000)
    evaluator.tick(t0 + 4_000)

    # Then each channel is told once that ETH is restored, and the price alerts fire on
    # that first fresh batch
    assert report.fired == 2
    kinds = [k for k, _ in _kinds(notifications(pg_database))]
    assert kinds == ["data_stale"] * 3 + ["data_restored"] * 3 + ["price_above"] * 2


def test_a_hold_left_without_its_notices_by_a_dead_worker_gets_them_once_on_the_next_tick(
    alert_settings: Settings, pg_database: Database, redis_client: redis.Redis
) -> None:
    # Given two subscribers with BTC alerts whose mids stopped at t0, and a worker that
    # recorded the BTC hold in Redis and died before writing its notices
    channels, _ = _subscribers(pg_database, alert_settings, redis_client, "BTC")
    t0 = now_ms()
    hold_ms = int(alert_settings.alert_hold_mids_s * 1000)
    app: HyperwatchCelery = create_app(alert_settings)
    dead = Evaluator(app, alert_settings, pg_database, redis_client)
    dead.evaluate_batch(mids(t0, BTC="99"), t0)
    held = {"coin": "BTC", "since": t0, "reason": "no mid since", "needs": ["mids"]}
    redis_client.hset(HOLDS_KEY, "BTC", json.dumps(held))
    assert notifications(pg_database) == []

    # When another worker's ticks run
    other = Evaluator(app, alert_settings, pg_database, redis_client)
    other.tick(t0 + hold_ms + 1)
    other.tick(t0 + hold_ms + 2_000)

    # Then each channel is told once, under the hold the dead worker started
    rows = notifications(pg_database)
    assert _kinds(rows) == [("data_stale", channels[0]), ("data_stale", channels[1])]
    assert {r.payload["since"] for r in rows} == {t0}
    app.close()
    lifecycle.registry.reset()
