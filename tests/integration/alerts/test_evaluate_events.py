"""The event kinds end to end in a real worker (every queue, real Redis and PostgreSQL, a
local receiver): whale trades from stored trade batches, position changes from positions
batches, liquidations from stored fill batches. Each firing alert has twins the same data
must leave quiet; replays and redeliveries fire nothing more."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
import redis
from sqlalchemy import text

from events import Fill, Position, Trade, encode_batch
from models.db import Database
from settings import Settings
from tasks.alerts.forward import forward_new_trades
from tasks.application import HyperwatchCelery
from tests.integration.alerts.support import (
    WALLET,
    add_alert,
    add_channel,
    add_user,
    add_wallet,
    fired_alert_ids,
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
BUYER = "0x5b2e9c0d4a1f8e7b6c3d2a1908f7e6d5c4b3a291"
SELLER = "0x0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b"


def trade(coin: str, time: int, tid: int, px: str, sz: str, side: str = "B") -> Trade:
    return Trade(coin, time, tid, Decimal(px), Decimal(sz), side, "0x" + "3c" * 32, BUYER, SELLER)  # type: ignore[arg-type]


def trades(*items: Trade) -> dict[str, Any]:
    return encode_batch("trades", items)


def fill(
    user: str, coin: str, time: int, tid: int, *, liquidated: str | None, sz: str = "3"
) -> Fill:
    return Fill(
        user=user, coin=coin, time=time, tid=tid, oid=tid, px=Decimal("80000"), sz=Decimal(sz),
        side="A", dir="Close Long", start_position=Decimal(sz), closed_pnl=Decimal("-10"),
        fee=Decimal("1"), fee_token="USDC", crossed=True, hash="0x" + "4d" * 32,
        liquidation=None if liquidated is None else "market", liquidated_user=liquidated,
        liquidation_mark_px=None if liquidated is None else Decimal("79990"),
    )  # fmt: skip


def held(coin: str, time: int, szi: str, value: str, user: str = WALLET) -> Position:
    return replace(
        position(coin, time, liq=None, szi=szi, user=user), position_value=Decimal(value)
    )


def settle(client: redis.Redis, db: Database, expected_sent: int, timeout: float = 20) -> None:
    """Wait until ingest, alerts and notify are drained and ``expected_sent`` are sent."""
    wait_until(
        lambda: (
            all(drained(client, q) for q in ("ingest", "alerts", "notify"))
            and sum(n.status == "sent" for n in notifications(db)) >= expected_sent
        ),
        timeout,
        what=f"{expected_sent} notification(s) sent and queues drained",
    )


@pytest.fixture()
def subscriber(
    alert_settings: Settings, pg_database: Database, redis_client: redis.Redis, receiver: Receiver
) -> Callable[..., int]:
    """``alert(**fields)`` → a new alert of one pro subscriber tracking two wallets."""
    user_id = add_user(pg_database)
    add_wallet(pg_database, alert_settings, user_id, WALLET)
    add_wallet(pg_database, alert_settings, user_id, OTHER_WALLET)
    channel_id = add_channel(pg_database, alert_settings, user_id, receiver.url())

    def alert(**fields: Any) -> int:
        return add_alert(pg_database, alert_settings, redis_client, user_id, channel_id, **fields)

    return alert


def delivered(receiver: Receiver) -> dict[int, dict[str, Any]]:
    bodies = [json.loads(r.body) for r in receiver.received()]
    return {b["alert_id"]: b for b in bodies}


def test_a_stored_whale_trade_fires_once_and_its_twins_stay_quiet(
    worker: HyperwatchCelery,
    subscriber: Callable[..., int],
    pg_database: Database,
    redis_client: redis.Redis,
    receiver: Receiver,
) -> None:
    # Given a whale alert the BTC trade below meets exactly, and twins: a cent higher, on
    # ETH (whose trade is small)
    whale = subscriber(kind="whale_trade", coin="BTC", threshold="1000000")
    quiet = [
        subscriber(kind="whale_trade", coin="BTC", threshold="1000000.01"),
        subscriber(kind="whale_trade", coin="ETH", threshold="1000"),
    ]
    t = now_ms()
    batch = trades(
        trade("BTC", t, 1, "80000", "12.5"),  # 1,000,000 USD, the taker buys
        trade("BTC", t, 2, "80000", "0.5"),
        trade("ETH", t, 3, "3000", "0.3"),  # 900 USD
    )

    # When the ingester's batch is stored, then redelivered (a replay inserts nothing)
    worker.send_task("hyperwatch.persist.trades", args=[batch])
    settle(redis_client, pg_database, 1)
    worker.send_task("hyperwatch.persist.trades", args=[batch])
    settle(redis_client, pg_database, 1)

    # Then the whale alert fired once, delivered, and says what happened
    assert fired_alert_ids(pg_database) == [whale]
    body = delivered(receiver)[whale]
    assert not set(quiet) & set(delivered(receiver))
    assert body["message"] == (
        "BTC whale trade: 0x5b2e…a291 bought 12.5 at 80000 = 1000000.00 USD, at or above "
        "1000000 USD [whale_trade]"
    )
    assert (body["wallet"], body["side"], body["notional"], body["event_time"]) == (
        BUYER, "buy", "1000000.0", t,
    )  # fmt: skip


def test_recurring_whale_alert_fires_per_trade_past_its_cooldown_and_once_fires_once(
    worker: HyperwatchCelery,
    subscriber: Callable[..., int],
    pg_database: Database,
    redis_client: redis.Redis,
) -> None:
    # Given a recurring whale alert with a 15 s cooldown, and a once alert
    recurring = subscriber(
        kind="whale_trade", coin="BTC", threshold="1000", mode="recurring", cooldown_s=15
    )
    once = subscriber(kind="whale_trade", coin="ETH", threshold="1000")
    t = now_ms()

    # When big trades are stored 20 s ago, 10 s ago (inside the cooldown) and now
    for n, at in enumerate((t - 20_000, t - 10_000, t)):
        batch = trades(
            trade("BTC", at, 10 + n, "80000", "1"), trade("ETH", at, 20 + n, "3000", "1")
        )
        worker.send_task("hyperwatch.persist.trades", args=[batch])
        settle(redis_client, pg_database, 0)
    # and the forwarded trades of the first are delivered to the alert workers again
    worker.send_task(
        "hyperwatch.alerts.evaluate", args=[trades(trade("BTC", t - 20_000, 10, "80000", "1"))]
    )
    settle(redis_client, pg_database, 3)

    # Then the recurring alert fired on the first and the last, the once alert on the first
    assert fired_alert_ids(pg_database) == sorted([recurring, recurring, once])
    times = sorted(n.event_time or 0 for n in notifications(pg_database) if n.alert_id == recurring)
    assert times == [t - 20_000, t]
    with pg_database.engine.connect() as conn:
        states: dict[int, bool] = dict(
            conn.execute(text("SELECT id, armed AND active FROM alerts")).all()
        )
    assert states == {recurring: True, once: False}


def test_position_changes_of_a_tracked_wallet_fire_by_direction_and_size(
    worker: HyperwatchCelery,
    subscriber: Callable[..., int],
    pg_database: Database,
    redis_client: redis.Redis,
    receiver: Receiver,
) -> None:
    # Given alerts on WALLET's BTC position growing and shrinking by 500k, and twins: a
    # threshold a cent over the change, another wallet whose position only re-marks, a coin
    # whose position only exists from the start
    opened = subscriber(
        kind="wallet_position_change", coin="BTC", wallet=WALLET, threshold="500000",
        direction="up",
    )  # fmt: skip
    closed = subscriber(
        kind="wallet_position_change", coin="BTC", wallet=WALLET, threshold="500000",
        direction="down",
    )  # fmt: skip
    quiet = [
        subscriber(kind="wallet_position_change", coin="BTC", wallet=WALLET, threshold="800000.01"),
        subscriber(
            kind="wallet_position_change", coin="BTC", wallet=OTHER_WALLET, threshold="1000"
        ),
        subscriber(kind="wallet_position_change", coin="ETH", wallet=WALLET, threshold="1000"),
    ]
    t = now_ms()
    first = positions(
        held("ETH", t - 3_000, "1", "3000"), held("BTC", t - 3_000, "5", "400000", OTHER_WALLET)
    )
    opening = positions(
        held("BTC", t - 2_000, "10", "800000"),  # a coin not in the wallet's first state
        held("ETH", t - 2_000, "1", "3100"),
        held("BTC", t - 2_000, "5", "410000", OTHER_WALLET),
    )
    closing = positions(held("BTC", t - 1_000, "0", "0"))  # the close, as a flat position

    # When the wallets' states arrive in order, then two of them again (redelivered)
    for batch in (first, opening, closing, opening, closing):
        worker.send_task("hyperwatch.alerts.evaluate", args=[batch])
        settle(redis_client, pg_database, 0)
    settle(redis_client, pg_database, 2)

    # Then the open fired the "up" alert and the close the "down" one, once each
    assert fired_alert_ids(pg_database) == sorted([opened, closed])
    bodies = delivered(receiver)
    assert not set(quiet) & set(bodies)
    assert bodies[opened]["message"] == (
        "wallet 0xabab…abab opened a BTC long of 10 at 80000 = 800000.00 USD, at or above "
        "500000 USD [wallet_position_change]"
    )
    assert (bodies[closed]["change"], bodies[closed]["size_before"]) == ("close", "10")


def test_a_stored_liquidation_fires_for_the_liquidated_wallet_only(
    worker: HyperwatchCelery,
    subscriber: Callable[..., int],
    pg_database: Database,
    redis_client: redis.Redis,
    receiver: Receiver,
) -> None:
    # Given liquidation alerts on both tracked wallets' BTC, one on WALLET's ETH, one whose
    # threshold is above the liquidation
    liquidated = subscriber(kind="wallet_liquidated", coin="BTC", wallet=WALLET, threshold="1000")
    quiet = [
        subscriber(kind="wallet_liquidated", coin="BTC", wallet=OTHER_WALLET, threshold="1000"),
        subscriber(kind="wallet_liquidated", coin="ETH", wallet=WALLET, threshold="1000"),
        subscriber(kind="wallet_liquidated", coin="BTC", wallet=WALLET, threshold="240000.01"),
    ]
    t = now_ms()
    # WALLET is liquidated (3 BTC at 80,000); OTHER_WALLET liquidated someone else; an
    # ordinary close of WALLET's ETH
    batch = encode_batch(
        "fills",
        [
            fill(WALLET, "BTC", t, 1, liquidated=WALLET),
            fill(OTHER_WALLET, "BTC", t, 1, liquidated="0x" + "ef" * 20),
            fill(WALLET, "ETH", t, 2, liquidated=None),
        ],
    )

    # When the fills are stored, then the batch is redelivered
    worker.send_task("hyperwatch.persist.fills", args=[batch])
    settle(redis_client, pg_database, 1)
    worker.send_task("hyperwatch.persist.fills", args=[batch])
    settle(redis_client, pg_database, 1)

    # Then only the liquidated wallet's alert fired, once
    assert fired_alert_ids(pg_database) == [liquidated]
    bodies = delivered(receiver)
    assert not set(quiet) & set(bodies)
    assert bodies[liquidated]["message"] == (
        "wallet 0xabab…abab was liquidated (market): its BTC long of 3 closed at 80000 = "
        "240000.00 USD, at or above 1000 USD [wallet_liquidated]"
    )
    assert (bodies[liquidated]["method"], bodies[liquidated]["mark"]) == ("market", "79990")


def test_only_trades_at_or_above_a_coins_whale_floor_are_forwarded(
    app: HyperwatchCelery,
    subscriber: Callable[..., int],
    redis_client: redis.Redis,
) -> None:
    # Given whale alerts on BTC at 50k and 100k (the floor is 50k) and none on ETH
    subscriber(kind="whale_trade", coin="BTC", threshold="100000")
    subscriber(kind="whale_trade", coin="BTC", threshold="50000")
    t = now_ms()
    inserted = [
        trade("BTC", t, 1, "50000", "1"),  # at the floor
        trade("BTC", t, 2, "49999.99", "1"),  # a cent under it
        trade("ETH", t, 3, "3000", "100"),  # big, but no ETH whale alert
    ]

    # When a persist worker has stored them (no worker runs: the queue keeps what is sent)
    task = app.tasks["hyperwatch.persist.trades"]
    forwarded = forward_new_trades(task, inserted)

    # Then one trade went to the alerts queue, in one message
    assert forwarded == 1
    [raw] = redis_client.lrange("alerts", 0, -1)
    message = json.loads(raw)
    assert message["headers"]["task"] == "hyperwatch.alerts.evaluate"
    [batch], _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert (batch["kind"], [e[2] for e in batch["events"]]) == ("trades", [1])
    # and nothing at all is sent for trades under every floor
    assert forward_new_trades(task, inserted[1:]) == 0
    assert redis_client.llen("alerts") == 1

    # When a batch is stored by the persist task, then stored again (a redelivery)
    batch = trades(trade("BTC", t, 4, "90000", "1"))
    assert task.apply(args=[batch]).get()["new"] == 1
    assert task.apply(args=[batch]).get()["new"] == 0

    # Then its whale trade was forwarded once: the replay inserted, so forwarded, nothing
    assert redis_client.llen("alerts") == 2
