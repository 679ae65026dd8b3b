"""The shared market view on a real Redis: the atomic ordering guard, the bucketed history,
and two workers' evaluators that each see half of the batches yet judge windows, positions
and marks from the whole."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis

from domain.alerts.shared_state import FINE, HistoryMirror, SharedMarket, seen_key
from domain.alerts.view import Series
from models.db import Database
from runtime import lifecycle
from settings import Settings
from tasks.alerts.evaluate import Evaluator
from tasks.application import HyperwatchCelery, create_app
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
    now_ms,
    position,
    positions,
)
from tests.unit.alerts.builders import mid

pytestmark = pytest.mark.integration

T0 = 1_787_000_000_000


def test_each_position_comes_back_with_the_one_it_replaced_also_when_reapplied(
    redis_client: redis.Redis,
) -> None:
    market = SharedMarket(redis_client)
    other = "0x" + "cd" * 20
    btc = position("BTC", T0 + 10, liq=None, szi="2")
    eth = position("ETH", T0 + 10, liq=None, szi="1")
    # Given a wallet's first state (BTC and ETH), and another wallet's
    first = market.apply_replacing(
        "positions", [btc, eth, position("BTC", T0, liq=None, user=other)]
    )
    assert [replaced for _, replaced in first] == [None, None, None]  # baselines

    # When BTC grows, SOL appears (absent from the wallet's earlier state), and both are
    # applied again (a retry, a redelivery); then an older BTC arrives late
    grown = position("BTC", T0 + 20, liq=None, szi="5")
    sol = position("SOL", T0 + 20, liq=None, szi="3")
    pairs = market.apply_replacing("positions", [grown, sol])
    again = market.apply_replacing("positions", [grown, sol])
    late = market.apply_replacing("positions", [position("BTC", T0 + 15, liq=None, szi="9")])

    # Then each came back with what it replaced — the same pair when re-applied — SOL with a
    # flat position (an open); the late one was skipped
    assert pairs == again
    (got_btc, was_btc), (got_sol, was_sol) = pairs
    assert (got_btc, was_btc) == (grown, btc)
    assert got_sol == sol and was_sol is not None and was_sol.szi == 0
    assert late == []
    # and the next snapshot is paired with the grown one, not with the first state
    [(_, was)] = market.apply_replacing("positions", [position("BTC", T0 + 30, liq=None)])
    assert was == grown


def test_an_older_input_is_skipped_and_an_equal_one_reapplied(redis_client: redis.Redis) -> None:
    market = SharedMarket(redis_client)
    # Given BTC applied at T0+10; When an older and then an equal-time batch arrive
    assert market.apply("mids", [mid("BTC", T0 + 10, "2")]) == [mid("BTC", T0 + 10, "2")]
    older = market.apply("mids", [mid("BTC", T0 + 5, "1"), mid("ETH", T0, "7")])
    again = market.apply("mids", [mid("BTC", T0 + 10, "2")])

    # Then the older BTC was skipped (ETH, new, applied) and the replay applied unchanged
    assert [m.coin for m in older] == ["ETH"]
    assert [m.coin for m in again] == ["BTC"]
    assert market.mids(["BTC"])[0].px == Decimal(2)


def test_concurrent_out_of_order_batches_never_move_a_coin_back(redis_client: redis.Redis) -> None:
    # Given 8 threads applying 400 batches of BTC at shuffled times
    times = list(range(T0, T0 + 400))
    random.Random(7).shuffle(times)
    chunks = [times[i::8] for i in range(8)]

    def apply(chunk: list[int]) -> None:
        client = redis.Redis(connection_pool=redis_client.connection_pool)
        market = SharedMarket(client)
        for t in chunk:
            market.apply("mids", [mid("BTC", t, str(t - T0 + 1))], {"BTC": 60_000})

    threads = [threading.Thread(target=apply, args=(c,)) for c in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then the newest time and its value won, and the newest point is in the history
    assert int(redis_client.hget(seen_key("mids"), "BTC") or 0) == T0 + 399
    assert SharedMarket(redis_client).mids(["BTC"])[0].px == Decimal(400)
    mirror = HistoryMirror()
    mirror.sync(SharedMarket(redis_client), [("BTC", Series.MID, FINE)], T0 + 400)
    window = mirror.range("BTC", Series.MID, 60_000, T0 + 400, Decimal(400))
    assert window.high == Decimal(400)


def test_history_buckets_and_incremental_sync_match_a_fresh_one(redis_client: redis.Redis) -> None:
    market = SharedMarket(redis_client)
    incremental = HistoryMirror()
    # Given mids applied in batches over several seconds, synced after each batch
    for i, px in enumerate(["10", "12", "9", "11", "15", "8"]):
        t = T0 + i * 700
        market.apply("mids", [mid("SOL", t, px)], {"SOL": 60_000})
        incremental.sync(market, [("SOL", Series.MID, FINE)], t)
    fresh = HistoryMirror()
    fresh.sync(market, [("SOL", Series.MID, FINE)], T0 + 3_500)

    # Then the incremental mirror equals a fresh one, and the window's low/high are exact
    now = T0 + 3_600
    a = incremental.range("SOL", Series.MID, 10_000, now, Decimal(8))
    b = fresh.range("SOL", Series.MID, 10_000, now, Decimal(8))
    assert a == b
    assert (a.low, a.high) == (Decimal(8), Decimal(15))
    members = redis_client.zrange(FINE.key(Series.MID, "SOL"), 0, -1)
    assert members[0] == f"{T0}|10|12".encode()  # two points in the first second


@pytest.fixture()
def two_evaluators(
    alert_settings: Settings, pg_database: Database
) -> Iterator[tuple[Evaluator, Evaluator]]:
    app: HyperwatchCelery = create_app(alert_settings)
    clients = [redis.Redis.from_url(alert_settings.redis_url) for _ in range(2)]
    yield (
        Evaluator(app, alert_settings, pg_database, clients[0]),
        Evaluator(app, alert_settings, pg_database, clients[1]),
    )
    for client in clients:
        client.close()
    app.close()
    lifecycle.registry.reset()


def test_two_workers_each_seeing_half_the_batches_judge_from_the_whole(
    two_evaluators: tuple[Evaluator, Evaluator],
    alert_settings: Settings,
    pg_database: Database,
    redis_client: redis.Redis,
) -> None:
    # Given a 5 % move alert on SOL and a liquidation alert on a tracked wallet's LINK
    a, b = two_evaluators
    user_id = add_user(pg_database)
    add_wallet(pg_database, alert_settings, user_id)
    channel_id = add_channel(pg_database, alert_settings, user_id, "http://127.0.0.1:9/h")
    move = add_alert(pg_database, alert_settings, redis_client, user_id, channel_id,
                     kind="price_move_pct", coin="SOL", threshold="5", window_s=60)  # fmt: skip
    liquidation = add_alert(pg_database, alert_settings, redis_client, user_id, channel_id,
                            kind="liquidation_distance_below", coin="LINK", threshold="5",
                            wallet=WALLET)  # fmt: skip
    t = now_ms()

    # When worker A gets the first SOL mid and LINK's position, worker B the second SOL mid
    # and LINK's mark
    a.evaluate_batch(mids(t - 1_000, SOL="100"), t)
    a.evaluate_batch(positions(position("LINK", t - 1_000, liq="96")), t)
    assert fired_alert_ids(pg_database) == []
    b.evaluate_batch(mids(t, SOL="105.5"), t)
    b.evaluate_batch(contexts(context("LINK", t, mark="100")), t)

    # Then B fired both: the move from A's point, the distance from A's position
    assert fired_alert_ids(pg_database) == sorted([move, liquidation])
