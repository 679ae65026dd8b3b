"""The subscription planner: shards by a stable hash, per-IP limits with headroom. Pure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workers.ingester.planner import (
    MAX_CONNECTIONS,
    MAX_SUBSCRIPTIONS,
    MAX_USERS,
    PLANNED_MAX_CONNECTIONS,
    PLANNED_MAX_SUBSCRIPTIONS,
    LivePlan,
    PlanError,
    plan_subscriptions,
    shard_coins,
    shard_wallets,
)
from workers.ingester.subscriptions import desired_subscriptions, sub_id

ROOT = Path(__file__).resolve().parents[3]
COINS = [f"C{i}" for i in range(230)]
USERS = [f"0x{i:040x}" for i in range(1, 11)]


def test_given_230_coins_and_10_users_when_planned_then_3_sockets_within_limits_with_headroom() -> (
    None
):
    plan = plan_subscriptions(COINS, USERS, 200)
    counts = [conn.count for conn in plan.connections]
    # 1 allMids + 230 x 2 + 10 x 2 = 481 subscriptions, at most 200 a socket: three sockets
    assert plan.subscriptions == 481 == sum(counts)
    assert len(counts) == 3 and max(counts) <= 200
    assert max(counts) - min(counts) <= 2, counts  # spread evenly, not 200/200/81
    usage = plan.usage()
    assert usage["connections"] == {"planned": 3, "allowed": 8, "exchange_limit": 10}
    assert usage["subscriptions"]["planned"] <= PLANNED_MAX_SUBSCRIPTIONS < MAX_SUBSCRIPTIONS
    assert usage["users"]["planned"] == 10 <= MAX_USERS
    assert PLANNED_MAX_CONNECTIONS < MAX_CONNECTIONS
    # Every coin and user on exactly one socket; allMids once, on the first
    assert sorted(plan.coins) == sorted(COINS) and len(plan.coins) == len(COINS)
    assert sorted(plan.users) == sorted(USERS)
    mids = [c.index for c in plan.connections for s in c.subscriptions if s["type"] == "allMids"]
    assert mids == [0]
    every = [sub_id(s) for c in plan.connections for s in c.subscriptions]
    assert len(every) == len(set(every)) == 481


def test_given_a_plan_when_inspected_then_each_coin_keeps_trades_and_context_on_one_socket() -> (
    None
):
    plan = plan_subscriptions(COINS, USERS, 61)  # an odd cap: coins must not be cut in half
    home: dict[tuple[str, str], set[int]] = {}
    for conn in plan.connections:
        assert conn.count <= 61
        for sub in conn.subscriptions:
            key = sub.get("coin") or sub.get("user") or ""
            home.setdefault((sub["type"], key), set()).add(conn.index)
    for coin in COINS:
        assert home[("trades", coin)] == home[("activeAssetCtx", coin)]
        assert len(home[("trades", coin)]) == 1


def test_given_everything_fits_one_socket_when_planned_then_one_socket_as_before() -> None:
    plan = plan_subscriptions(["BTC", "ETH", "SOL"], USERS[:2], 200)
    assert len(plan.connections) == 1
    assert plan.connections[0].subscriptions == desired_subscriptions(
        ["BTC", "ETH", "SOL"], USERS[:2]
    )


def test_given_shards_when_splitting_then_disjoint_and_together_everything() -> None:
    parts = [shard_coins(COINS, (i, 4)) for i in range(4)]
    assert sorted(c for part in parts for c in part) == sorted(COINS)
    assert sum(len(p) for p in parts) == len(COINS)
    assert all(30 <= len(p) <= 90 for p in parts), [len(p) for p in parts]  # spread, not lumped
    assert shard_coins(COINS, (0, 1)) == COINS  # one shard: nothing changes, order kept
    # Wallets hash lowercased: any spelling of an address lands in the same shard
    mixed = [u.upper().replace("0X", "0x") for u in USERS]
    for i in range(3):
        assert shard_wallets(mixed, (i, 3)) == shard_wallets(USERS, (i, 3))
    assert sorted(w for i in range(3) for w in shard_wallets(USERS, (i, 3))) == sorted(USERS)


def test_given_another_process_with_another_hash_seed_when_sharding_then_the_same_split() -> None:
    script = (
        "import json; from workers.ingester.planner import shard_coins; "
        f"print(json.dumps([shard_coins({COINS!r}, (i, 5)) for i in range(5)]))"
    )
    here = [shard_coins(COINS, (i, 5)) for i in range(5)]
    for seed in ("1", "4242"):
        result = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            check=True,
        )
        assert json.loads(result.stdout) == here


@pytest.mark.parametrize(
    ("coins", "users", "per_connection", "ping_s", "fragments"),
    [
        (400, 0, 200, None, ("801 subscriptions", "800 planned", "1000", "INGEST_SHARD")),
        (300, 0, 50, None, ("13 sockets", "8 planned", "INGEST_SUBSCRIPTIONS_PER_CONNECTION")),
        (10, 11, 200, None, ("11 wallets", "10 distinct users", "WS_USER_LIMIT")),
        (10, 0, 200, 0.01, ("messages a minute", "1600 planned", "PING_INTERVAL_S")),
    ],
)
def test_given_too_much_when_planned_then_refused_naming_the_limit(
    coins: int, users: int, per_connection: int, ping_s: float | None, fragments: tuple[str, ...]
) -> None:
    with pytest.raises(PlanError) as info:
        plan_subscriptions(
            [f"C{i}" for i in range(coins)],
            [f"0x{i:040x}" for i in range(users)],
            per_connection,
            ping_interval_s=ping_s,
        )
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_given_the_largest_plan_when_planned_then_it_fits_exactly() -> None:
    # 399 coins + allMids = 799, and 8 sockets of 100
    plan = plan_subscriptions([f"C{i}" for i in range(399)], [], 100, ping_interval_s=20)
    assert plan.subscriptions == 799 and len(plan.connections) == 8
    assert plan.messages_per_minute == 799 + 3 * 8


def test_given_listings_when_the_live_plan_updates_then_new_coins_go_where_there_is_room() -> None:
    # Given three coins on two sockets of at most 4 subscriptions (allMids + 1 coin, 2 coins)
    live = LivePlan(plan_subscriptions(["A", "B", "C"], [], 4))
    assert live.loads == {0: 3, 1: 4}
    # When B is delisted and D, E listed
    changes = live.update(["A", "C", "D", "E"])
    # Then B leaves its socket; D takes the room it left, E finds no room and is reported once
    assert changes.removed == (("B", 1),)
    assert changes.added == (("D", 1),)
    assert changes.unplaced == ("E",)
    assert live.update(["A", "C", "D", "E"]).unplaced == ()
    assert not live.update(["A", "C", "D", "E"])
    # And when room frees up, the waiting coin is placed
    assert live.update(["C", "D", "E"]).added == (("E", 0),)
    assert sorted(live.coins) == ["C", "D", "E"]
