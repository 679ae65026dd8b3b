"""The one position poller against the simulator: 2,000 polled wallets, a small REST budget,
the ingester's meta refresh on the same budget, runs overlapping — and the exchange's limit,
as the simulator counts it, never exceeded.

Time runs ten times faster than the wall clock for everyone involved (the simulator's
weight accounting, the REST budget's minute windows, the poller's cadences and pacing), so
four exchange minutes take 24 s of test; HTTP and Redis stay real.
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections.abc import Iterator
from decimal import Decimal as Dec
from typing import Any

import httpx
import pytest
import redis

from domain.alerts.shared_state import SharedMarket
from events import AssetContext, Position
from models.alert import Alert
from models.db import Database
from models.repositories import AlertRepository, TrackedWalletRepository, UserRepository
from runtime.rest_budget import RestBudget
from settings import Settings, load_settings
from tasks.maintenance.positions_poll import PollResult, run_once
from tests.support.fast_clock import FastClock
from workers.ingester.listings import MetaRefresher
from workers.ingester.planner import LivePlan, plan_subscriptions
from workers.simulator import SimulatorConfig, SimulatorServer
from workers.simulator.market import sim_user_address

pytestmark = pytest.mark.integration

SPEED = 10.0
WALLETS = 2000
HOT = 5
BUDGET = 300  # weight a minute: 240 for positions (120 polls), the exchange allows 1,200
EXCHANGE_LIMIT = 1200
MINUTES = 4


@pytest.fixture()
def clock() -> FastClock:
    return FastClock(SPEED)


@pytest.fixture()
def simulator(clock: FastClock) -> Iterator[Any]:
    sim = SimulatorServer(
        SimulatorConfig(port=0, rate=2, seed=5, users=WALLETS), clock
    ).start_in_thread()
    yield sim
    sim.stop()


def track_all(database: Database, cache: redis.Redis) -> list[str]:
    """2,000 tracked wallets; the first HOT have a liquidation alert 6 % away (threshold 5)."""
    wallets = [sim_user_address(i) for i in range(WALLETS)]
    with database.session() as s:
        user = UserRepository(s).create("whales@example.com", "enterprise")
        repository = TrackedWalletRepository(s)
        for wallet in wallets:
            repository.track(user.id, wallet)
        for wallet in wallets[:HOT]:
            AlertRepository(s).add(
                Alert(user_id=user.id, coin="BTC", kind="liquidation_distance_below",
                      threshold=Dec(5), wallet=wallet)
            )  # fmt: skip
    market = SharedMarket(cache)
    market.apply("positions", [
        Position(w, "BTC", 1, Dec(1), Dec(100), Dec(100), Dec(0), Dec(0), Dec(94), "cross", 5,
                 Dec(20))
        for w in wallets[:HOT]
    ])  # fmt: skip
    market.apply("asset_contexts", [AssetContext("BTC", 1, Dec(0), Dec(1), Dec(100), Dec(100),
                                                 None, None, Dec(0), Dec(100))])  # fmt: skip
    return wallets


@pytest.mark.heavy  # four exchange minutes at a fast clock, 26 s: runs in make test-heavy
def test_given_2000_wallets_and_a_small_budget_when_runs_overlap_then_no_minute_exceeds_it(
    pg_database: Database, redis_url: str, simulator: Any, clock: FastClock
) -> None:
    cache = redis.Redis.from_url(redis_url)
    wallets = track_all(pg_database, cache)
    settings: Settings = load_settings(
        database_url=pg_database.url,
        redis_url=redis_url,
        hl_info_url=simulator.info_url,
        rest_weight_per_minute=BUDGET,
    )
    runs: list[tuple[int, PollResult]] = []
    stop = threading.Event()

    def poll_loop() -> None:
        # beat sends a run every 5 s; two loops at twice that rate: runs overlap all the time
        while not stop.is_set():
            started = clock.time_ms()
            result = run_once(settings, lambda _batch: None, clock)
            runs.append((started, result))
            stop.wait(2.5 / SPEED)

    # And meta refreshes on the same budget: three ingesters' worth (a leader, two standbys),
    # each every INGEST_META_REFRESH_S (60 s) — one every 20 s, 60 weight a minute
    refresher = MetaRefresher(
        simulator.info_url, 20 / SPEED, (0, 1), LivePlan(plan_subscriptions(["BTC"], [], 200)),
        lambda _changes: None, RestBudget(cache, BUDGET, clock), clock,
    )  # fmt: skip
    pollers = [threading.Thread(target=poll_loop, daemon=True) for _ in range(2)]
    # When both run for four exchange minutes
    refresher.start()
    for thread in pollers:
        thread.start()
    time.sleep(MINUTES * 60 / SPEED)
    stop.set()
    for thread in pollers:
        thread.join(30)
    refresher.stop()
    stats = httpx.get(f"{simulator.base_url}/_sim/stats").json()
    cache.close()
    print(
        "weight per minute",
        stats["info_weight_by_minute"],
        "max 60 s",
        stats["info_weight_max_60s"],
    )

    # Then the exchange never saw more than its limit in any 60 s, nor any minute more than
    # REST_WEIGHT_PER_MINUTE (the refresher and the poller share it)
    assert stats["info_weight_max_60s"] <= EXCHANGE_LIMIT
    per_minute = stats["info_weight_by_minute"]
    assert max(per_minute.values()) <= BUDGET, per_minute
    # And the budget was used, not left idle: every whole minute near the positions share
    whole = sorted(per_minute, key=int)[1:-1]
    assert whole and all(per_minute[m] >= 0.7 * BUDGET for m in whole), per_minute

    # And overlapping runs never polled a wallet twice: the idle cadence (300 s) is longer
    # than the test, so each idle wallet was polled at most once
    polled = [w for _t, r in runs for w in r.polled]
    idle = [w for w in polled if w not in wallets[:HOT]]
    assert len(idle) == len(set(idle)) and len(idle) > 150
    assert any(r.skipped for _t, r in runs)  # the lock did turn runs away
    assert not any(r.failed for _t, r in runs)

    # And the hot wallets kept their 10 s cadence although idle wallets were starving (at
    # 10x, a tenth of a second of this loaded machine's jitter is a second of schedule)
    for wallet in wallets[:HOT]:
        times = [t for t, r in runs if wallet in r.polled]
        gaps = [(b - a) / 1000 for a, b in itertools.pairwise(times)]
        assert len(times) >= MINUTES * 6 - 2, (wallet, gaps)
        assert statistics.median(gaps) <= 10.5 and max(gaps) <= 20, (wallet, gaps)
