"""``hyperwatch ingest --plan``: the plan a shard would run, printed without connecting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from workers.cli import cli
from workers.simulator import SimulatorConfig, SimulatorHandle, SimulatorServer

pytestmark = pytest.mark.integration

COINS = tuple(f"X{i}" for i in range(40))
WALLETS = [f"0x{i:040x}" for i in range(1, 6)]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    handle = SimulatorServer(SimulatorConfig(port=0, coins=COINS, rate=20)).start_in_thread()
    yield handle
    handle.stop()


def invoke(sim: SimulatorHandle, *args: str, **env: str) -> tuple[int, str, str]:
    base = {
        "HL_INFO_URL": sim.info_url,
        # Nothing listens here: --plan must not connect.
        "HL_WS_URL": "ws://127.0.0.1:9/ws",
        "TRACKED_WALLETS": ",".join(WALLETS),
        "WS_USER_LIMIT": "3",
        "INGEST_SUBSCRIPTIONS_PER_CONNECTION": "30",
    }
    result = CliRunner().invoke(cli, ["ingest", "--plan", *args], env={**base, **env})
    return result.exit_code, result.stdout, result.stderr


def test_given_coins_all_when_planning_then_every_listed_coin_is_spread_over_sockets(
    sim: SimulatorHandle,
) -> None:
    code, out, _ = invoke(sim, "--json")
    assert code == 0
    plan = json.loads(out)
    # 40 coins + 3 WS wallets + allMids = 87 subscriptions, at most 30 a socket: 3 sockets
    assert plan["shard"] == "0/1" and plan["coins"] == 40 and plan["subscriptions"] == 87
    assert [c["subscriptions"] for c in plan["connections"]] == [29, 30, 28]
    assert sorted(c for conn in plan["connections"] for c in conn["coins"]) == sorted(COINS)
    assert plan["ws_users"] == 3 and plan["polled"] == WALLETS[3:]
    assert plan["limits"]["connections"] == {"planned": 3, "allowed": 8, "exchange_limit": 10}
    assert plan["limits"]["subscriptions"]["exchange_limit"] == 1000


def test_given_shards_when_planning_each_then_they_split_coins_and_wallets(
    sim: SimulatorHandle,
) -> None:
    plans = [json.loads(invoke(sim, "--json", INGEST_SHARD=f"{i}/3")[1]) for i in range(3)]
    coins = [c for p in plans for conn in p["connections"] for c in conn["coins"]]
    wallets = [w for p in plans for conn in p["connections"] for w in conn["users"]]
    wallets += [w for p in plans for w in p["polled"]]
    assert sorted(coins) == sorted(COINS)
    assert sorted(wallets) == sorted(WALLETS)
    assert [p["shard"] for p in plans] == ["0/3", "1/3", "2/3"]


def test_given_text_output_when_planning_then_sockets_lists_and_limits_are_shown(
    sim: SimulatorHandle,
) -> None:
    code, out, _ = invoke(sim, COINS="X1,X2,X3")
    assert code == 0
    assert out.splitlines()[0] == (
        "shard 0/1: 3 coins, 3 wallets on WebSocket, 2 polled over REST (by the workers' poll job)"
    )
    assert "  socket 0: 13 subscriptions (allMids), 3 coins, 3 wallets" in out
    assert "    coins: X1 X2 X3" in out
    assert "subscriptions" in out and "/  1000" in out


def test_given_too_many_coins_for_the_limits_when_planning_then_exit_2_naming_the_limit(
    sim: SimulatorHandle,
) -> None:
    code, _, err = invoke(sim, INGEST_SUBSCRIPTIONS_PER_CONNECTION="10")
    assert code == 2
    assert "INGEST_SUBSCRIPTIONS_PER_CONNECTION" in err and "8 planned" in err
    assert len(err.strip().splitlines()) == 1


def test_given_too_many_coins_when_the_ingester_starts_then_it_exits_2_before_connecting(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "HL_INFO_URL": sim.info_url,
        "HL_WS_URL": "ws://127.0.0.1:9/ws",
        "INGEST_SUBSCRIPTIONS_PER_CONNECTION": "10",
        "INGESTER_HEALTH_PORT": "0",
        "DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "ingest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("hyperwatch: ") and "INGEST_SUBSCRIPTIONS_PER_CONNECTION" in last
