"""Continuity against the simulator: several sockets in one process, coins listed and
delisted while running, one silent stream resubscribed while its socket lives."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runtime.metrics import (
    CONNECTED,
    LISTING_CHANGES,
    PLANNED_CONNECTIONS,
    RECONNECTS,
    STREAM_RESUBSCRIBES,
    MetricDef,
    Metrics,
)
from tests.integration.ingester.support import (
    ingest_settings,
    read_queues,
    running_ingester,
    window_keys,
)
from tests.support.services import RedisServer
from workers.simulator import SimulatorConfig, SimulatorHandle, SimulatorServer
from workers.simulator.groundtruth import read_ground_truth

pytestmark = pytest.mark.integration


def values(metrics: Metrics, d: MetricDef) -> dict[str, float]:
    """Each sample's value by its label values joined with commas (counters: the total)."""
    out: dict[str, float] = {}
    for family in metrics[d].collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            out[",".join(sample.labels.values())] = sample.value
    return out


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds it took for ``predicate`` to hold; fails after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - started


def socket_topics(sim: SimulatorHandle) -> list[set[str]]:
    """The topics each open client socket of the simulator is subscribed to."""

    def collect(ex: Any) -> list[set[str]]:
        return [
            {s.topic for s in c.subscriptions.values()}
            for c in ex.hub.connections.values()
            if not c.closed
        ]

    return list(sim.call(collect))


def test_given_a_small_cap_per_socket_when_ingesting_then_several_sockets_deliver_every_coin(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    # Given six coins and at most 4 subscriptions a socket: allMids + 12 → 4 sockets
    coins = ("BTC", "ETH", "SOL", "XRP", "DOGE", "HYPE")
    truth_path = tmp_path / "truth.jsonl"
    config = SimulatorConfig(port=0, coins=coins, rate=300, seed=3, record_path=truth_path)
    sim = SimulatorServer(config).start_in_thread()
    settings = ingest_settings(
        sim.ws_url, sim.info_url, private_redis.url,
        coins=list(coins), ingest_subscriptions_per_connection=4,
    )  # fmt: skip
    try:
        with running_ingester(settings) as ingester:
            # When it runs
            wait_for(lambda: values(ingester.metrics, CONNECTED).get("") == 1.0, 10, "subscribed")
            assert len(ingester.connections) == 4
            assert all(c.subscribed for c in ingester.connections)
            time.sleep(2.0)
            sockets = socket_topics(sim)
            planned = values(ingester.metrics, PLANNED_CONNECTIONS)[""]
            reconnects = sum(values(ingester.metrics, RECONNECTS).values())
    finally:
        sim.stop()
    truth = read_ground_truth(truth_path)
    published = read_queues(private_redis.url)

    # Then four sockets shared the subscriptions, each stream on one, a coin's two together
    assert planned == 4 and len(sockets) == 4 and reconnects == 0
    assert all(len(topics) <= 4 for topics in sockets)
    every = [t for topics in sockets for t in topics]
    assert len(every) == len(set(every)) == 13
    for coin in coins:
        assert [f"ctx:{coin}" in topics for topics in sockets] == [
            f"trades:{coin}" in topics for topics in sockets
        ]
    # And every coin's trades arrived once, none missing inside each coin's published span
    keys = published.trade_keys()
    assert {coin for coin, _, _ in keys} == set(coins)
    assert max(keys.values()) == 1
    assert window_keys(truth.trades, published) <= set(keys)
    # And each socket's pipeline stamped its own source
    sources = {b["source"] for b in published.args("hyperwatch.persist.trades")}
    assert sources == {"test-ingester", "test-ingester.c1", "test-ingester.c2", "test-ingester.c3"}


def test_given_coins_all_when_a_coin_is_listed_and_another_delisted_then_subscriptions_follow(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    # Given a simulator that lists XRP 1.5 s after its start, and an ingester on COINS=all
    # re-reading meta every half second
    refresh_s = 0.5
    truth_path = tmp_path / "truth.jsonl"
    config = SimulatorConfig(
        port=0, rate=200, seed=4, list_later=(("XRP", 1.5),), record_path=truth_path
    )
    sim = SimulatorServer(config).start_in_thread()
    settings = ingest_settings(
        sim.ws_url, sim.info_url, private_redis.url, coins=["all"], ingest_meta_refresh_s=refresh_s
    )
    try:
        with running_ingester(settings) as ingester:
            wait_for(lambda: values(ingester.metrics, CONNECTED).get("") == 1.0, 10, "subscribed")
            assert sorted(ingester.coins) == ["BTC", "ETH", "SOL"]
            # When XRP is listed
            wait_for(lambda: sim.stats()["coins_listed"] == 1, 5, "the listing")
            took = wait_for(
                lambda: any("trades:XRP" in t and "ctx:XRP" in t for t in socket_topics(sim)),
                5,
                "XRP subscribed",
            )
            time.sleep(1.0)
            # And ETH is delisted
            sim.call(lambda ex: ex.delist_coin("ETH"))
            dropped = wait_for(
                lambda: not any("trades:ETH" in t or "ctx:ETH" in t for t in socket_topics(sim)),
                5,
                "ETH unsubscribed",
            )
            changes = values(ingester.metrics, LISTING_CHANGES)
            reconnects = sum(values(ingester.metrics, RECONNECTS).values())
            coins_now = sorted(ingester.coins)
    finally:
        sim.stop()
    truth = read_ground_truth(truth_path)
    published = read_queues(private_redis.url)

    # Then XRP was subscribed within one meta refresh (plus the round trips), on the live
    # socket, and ETH unsubscribed the same way, without a reconnect
    assert took < refresh_s + 1.0, took
    assert dropped < refresh_s + 1.0, dropped
    assert changes == {"listed": 1.0, "delisted": 1.0}
    assert reconnects == 0
    assert coins_now == ["BTC", "SOL", "XRP"]
    # And XRP's trades arrived, all of them inside its published span
    xrp = [t for t in published.trades() if t["coin"] == "XRP"]
    assert len(xrp) >= 5
    assert window_keys(truth.trades, published) <= set(published.trade_keys())


def test_given_one_silent_context_stream_when_the_socket_lives_then_it_is_resubscribed(
    private_redis: RedisServer,
) -> None:
    # Given an ingester whose context streams count as silent after 3 s (3 pushes missed)
    sim = SimulatorServer(SimulatorConfig(port=0, rate=100, seed=6)).start_in_thread()
    settings = ingest_settings(sim.ws_url, sim.info_url, private_redis.url, stream_silence_s=1.5)
    try:
        with running_ingester(settings) as ingester:
            wait_for(lambda: values(ingester.metrics, CONNECTED).get("") == 1.0, 10, "subscribed")
            time.sleep(0.5)
            # When ETH's activeAssetCtx stops while everything else on the socket flows
            assert sim.fault("silence", channel="activeAssetCtx", coin="ETH")["connections"] == 1
            silenced_at = time.time()
            took = wait_for(
                lambda: values(ingester.metrics, STREAM_RESUBSCRIBES).get("activeAssetCtx", 0) >= 1,
                8,
                "a resubscribe",
            )
            time.sleep(1.5)
            resubscribes = values(ingester.metrics, STREAM_RESUBSCRIBES)
            reconnects = sum(values(ingester.metrics, RECONNECTS).values())
            silent_now = ingester.connection.silent_streams
    finally:
        sim.stop()
    published = read_queues(private_redis.url)

    # Then it was resubscribed after its threshold (3 s from its last push, which came up
    # to a second before the fault), once, counted, and the socket stayed up
    assert 1.9 < took < 5.0, took
    assert resubscribes == {"activeAssetCtx": 1.0}
    assert reconnects == 0 and len(published.sessions()) == 1
    assert silent_now == []
    # And ETH's contexts stopped for the silence and came back after it; BTC's never stopped
    times: dict[str, list[int]] = {}
    for batch in published.args("hyperwatch.persist.asset_contexts"):
        for event in batch["events"]:
            times.setdefault(event["coin"], []).append(event["time"])

    def longest_pause(coin: str) -> float:
        ts = sorted(times[coin])
        return max(b - a for a, b in itertools.pairwise(ts)) / 1000

    assert 2.5 < longest_pause("ETH") < 5.0
    assert max(times["ETH"]) > silenced_at * 1000 + 2500
    assert longest_pause("BTC") < 1.6
