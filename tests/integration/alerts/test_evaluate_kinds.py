"""Every alert kind, judged by a real worker on real Redis and PostgreSQL, delivered to a
real local receiver: it fires when its condition holds, and stays quiet when it does not or
when the data is unknown (missing or stale)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import redis
from sqlalchemy import text

from models.db import Database
from settings import Settings
from tasks.application import HyperwatchCelery
from tests.integration.alerts.support import (
    WALLET,
    add_alert,
    add_channel,
    add_user,
    add_wallet,
    context,
    contexts,
    fired_alert_ids,
    mids,
    notifications,
    now_ms,
    position,
    positions,
    wait_until,
)
from tests.integration.celery.support import drained
from tests.integration.notify.receiver import Receiver

pytestmark = pytest.mark.integration

OTHER_WALLET = "0x" + "cd" * 20


def settle(client: redis.Redis, db: Database, expected_sent: int, timeout: float = 20) -> None:
    """Wait until the alerts and notify queues are empty and acknowledged and
    ``expected_sent`` notifications are sent."""
    wait_until(
        lambda: (
            drained(client, "alerts")
            and drained(client, "notify")
            and sum(n.status == "sent" for n in notifications(db)) >= expected_sent
        ),
        timeout,
        what=f"{expected_sent} notification(s) sent and queues drained",
    )


@pytest.fixture()
def subscriber(
    alert_settings: Settings, pg_database: Database, redis_client: redis.Redis, receiver: Receiver
) -> Callable[..., int]:
    """``alert(**fields)`` → a new alert of one pro subscriber, notifying the receiver."""
    user_id = add_user(pg_database)
    add_wallet(pg_database, alert_settings, user_id, WALLET)
    add_wallet(pg_database, alert_settings, user_id, OTHER_WALLET)
    channel_id = add_channel(pg_database, alert_settings, user_id, receiver.url())

    def alert(**fields: Any) -> int:
        return add_alert(pg_database, alert_settings, redis_client, user_id, channel_id, **fields)

    return alert


def test_every_kind_fires_when_it_holds_and_stays_quiet_when_it_does_not_or_is_unknown(
    worker: HyperwatchCelery,
    subscriber: Callable[..., int],
    pg_database: Database,
    redis_client: redis.Redis,
    receiver: Receiver,
) -> None:
    # Given one alert of every kind whose condition the data below makes true, a twin of
    # each that the same data leaves false, and alerts whose data is missing or stale
    fires = {
        "price_above mid": subscriber(kind="price_above", coin="BTC", threshold="100"),
        "price_below mark": subscriber(
            kind="price_below", coin="ETH", threshold="50", price_source="mark"
        ),
        "price_move_pct": subscriber(
            kind="price_move_pct", coin="SOL", threshold="5", window_s=60, direction="up"
        ),
        "funding_above": subscriber(kind="funding_above", coin="AVAX", threshold="0.0001"),
        "funding_below": subscriber(kind="funding_below", coin="DOGE", threshold="-0.0001"),
        "oi_change_pct": subscriber(kind="oi_change_pct", coin="ARB", threshold="10", window_s=60),
        "liquidation_distance_below": subscriber(
            kind="liquidation_distance_below", coin="LINK", threshold="5", wallet=WALLET
        ),
        "stale_data": subscriber(kind="stale_data", coin="XRP", threshold="5", stream="mids"),
    }
    quiet = [
        subscriber(kind="price_above", coin="BTC", threshold="200"),
        subscriber(kind="price_below", coin="ETH", threshold="40", price_source="mark"),
        subscriber(kind="price_below", coin="ETH", threshold="50"),  # mid source: no ETH mid
        subscriber(kind="price_move_pct", coin="SOL", threshold="10", window_s=60),
        subscriber(kind="price_move_pct", coin="SOL", threshold="5", window_s=60, direction="down"),
        subscriber(kind="funding_above", coin="AVAX", threshold="0.001"),
        subscriber(kind="funding_below", coin="DOGE", threshold="-0.001"),
        subscriber(kind="oi_change_pct", coin="ARB", threshold="50", window_s=60),
        subscriber(
            kind="liquidation_distance_below", coin="LINK", threshold="5", wallet=OTHER_WALLET
        ),
        subscriber(kind="stale_data", coin="BTC", threshold="60", stream="mids"),
        # unknown: no data at all for NEAR; OP's only mid is two minutes old; the only TIA
        # position has no liquidation price; XRP contexts were never seen but that stream
        # watch waits 10 minutes (silence counted from when the shared view started)
        subscriber(kind="price_above", coin="NEAR", threshold="1"),
        subscriber(kind="price_above", coin="OP", threshold="1"),
        subscriber(kind="liquidation_distance_below", coin="TIA", threshold="50", wallet=WALLET),
        subscriber(kind="stale_data", coin="XRP", threshold="600", stream="asset_contexts"),
    ]

    # When the market moves (as the ingester would send it) and beat's tick runs
    t = now_ms()
    send = worker.send_task
    send("hyperwatch.alerts.evaluate", args=[mids(t - 2_000, SOL="100")])
    send("hyperwatch.alerts.evaluate", args=[mids(t - 10_000, XRP="0.5")])
    send("hyperwatch.alerts.evaluate", args=[mids(t - 120_000, OP="5")])
    send(
        "hyperwatch.alerts.evaluate",
        args=[contexts(context("ARB", t - 2_000, oi="1000"), context("LINK", t - 1_000))],
    )
    send(
        "hyperwatch.alerts.evaluate",
        args=[positions(position("LINK", t, liq="97"), position("LINK", t, liq="80", user=OTHER_WALLET),
                        position("TIA", t, liq=None))],
    )  # fmt: skip
    send("hyperwatch.alerts.evaluate", args=[mids(t, BTC="101", SOL="106")])
    send(
        "hyperwatch.alerts.evaluate",
        args=[
            contexts(
                context("ETH", t, mark="49"),
                context("AVAX", t, funding="0.0002"),
                context("DOGE", t, funding="-0.0002"),
                context("ARB", t, oi="1200"),
                context("LINK", t, mark="100"),
                context("TIA", t, mark="100"),
            )
        ],
    )
    send("hyperwatch.alerts.tick")
    settle(redis_client, pg_database, len(fires) + 1)  # and OP's 'data stale' notice

    # Then exactly the alerts whose condition held fired, each once, each delivered
    assert fired_alert_ids(pg_database) == sorted(fires.values())
    assert all(n.status == "sent" for n in notifications(pg_database))
    bodies = [json.loads(r.body) for r in receiver.received()]
    delivered = {body["alert_id"]: body for body in bodies if "alert_id" in body}
    # OP's only mid is two minutes old: its alerts are held, and the subscriber told so once
    notices = [(b["kind"], b["coin"]) for b in bodies if "alert_id" not in b]
    assert notices == [("data_stale", "OP")]
    assert sorted(delivered) == sorted(fires.values())
    assert not set(quiet) & set(delivered)
    # and each says what it measured, exactly
    assert delivered[fires["price_above mid"]]["value"] == "101"
    assert delivered[fires["price_below mark"]]["price_source"] == "mark"
    assert Decimal(delivered[fires["price_move_pct"]]["value"]) == 6
    assert Decimal(delivered[fires["funding_above"]]["value_annualised"]) == Decimal("1.752")
    assert Decimal(delivered[fires["oi_change_pct"]]["value"]) == 20
    assert Decimal(delivered[fires["liquidation_distance_below"]]["value"]) == 3
    assert "no mids data for XRP" in delivered[fires["stale_data"]]["message"]


def test_recurring_alert_rearms_only_past_the_margin_and_respects_its_cooldown(
    worker: HyperwatchCelery,
    subscriber: Callable[..., int],
    pg_database: Database,
    redis_client: redis.Redis,
) -> None:
    # Given a recurring price_above 100 (re-arm 1 % below: under 99) and another that also
    # has an hour of cooldown
    rearming = subscriber(
        kind="price_above", coin="BTC", threshold="100", mode="recurring", rearm_margin="0.01"
    )
    cooling = subscriber(
        kind="price_above", coin="ETH", threshold="100", mode="recurring", rearm_margin="0.01",
        cooldown_s=3600,
    )  # fmt: skip
    t = now_ms()

    # When the price crosses, dips inside the margin, crosses, falls through the margin and
    # crosses again — one batch at a time, in order
    for i, px in enumerate(["101", "99.5", "101", "98", "101"]):
        worker.send_task(
            "hyperwatch.alerts.evaluate", args=[mids(t - 5_000 + i * 1_000, BTC=px, ETH=px)]
        )
        settle(redis_client, pg_database, 0)

    # Then the first fired twice (at the first crossing and after the real re-arm), the
    # dip inside the margin re-armed nothing; the second fired once (cooling down)
    settle(redis_client, pg_database, 3)
    assert fired_alert_ids(pg_database) == sorted([rearming, rearming, cooling])


def test_once_snoozed_expired_and_older_inputs(
    worker: HyperwatchCelery,
    subscriber: Callable[..., int],
    pg_database: Database,
    redis_client: redis.Redis,
) -> None:
    # Given a once alert, one snoozed for an hour, one that expired a second ago, and one on
    # a coin whose newest mid is below its threshold
    t = now_ms()
    once = subscriber(kind="price_above", coin="BTC", threshold="100")
    subscriber(kind="price_above", coin="BTC", threshold="100", snooze_until=t + 3_600_000)
    expired = subscriber(kind="price_above", coin="BTC", threshold="100", expires_at=t + 60_000)
    # (a new alert must expire in the future: this one is made to have expired since)
    with pg_database.engine.begin() as conn:
        conn.execute(
            text("UPDATE alerts SET expires_at = :at WHERE id = :id"),
            {"at": t - 1_000, "id": expired},
        )
    subscriber(kind="price_above", coin="ETH", threshold="100")

    # When BTC crosses, falls and crosses again; and an ETH batch older than the newest
    # ETH mid arrives late carrying a crossing price
    for i, px in enumerate(["101", "90", "102"]):
        worker.send_task("hyperwatch.alerts.evaluate", args=[mids(t + i, BTC=px)])
    worker.send_task("hyperwatch.alerts.evaluate", args=[mids(t, ETH="99")])
    settle(redis_client, pg_database, 1)
    worker.send_task("hyperwatch.alerts.evaluate", args=[mids(t - 500, ETH="150")])
    worker.send_task("hyperwatch.alerts.tick")
    settle(redis_client, pg_database, 1)

    # Then only the once alert fired, once; the expired one was deactivated unfired; the
    # late, older ETH input was skipped
    assert fired_alert_ids(pg_database) == [once]
    with pg_database.engine.connect() as conn:
        states: dict[int, bool] = dict(conn.execute(text("SELECT id, active FROM alerts")).all())
    assert states[once] is False and states[expired] is False
