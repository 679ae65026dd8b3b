"""Which tracked wallets the REST poller owns: every one no ingester follows over WebSocket.
Pure."""

from __future__ import annotations

from runtime.wallets import polled_wallets, websocket_wallets
from settings import load_settings
from workers.ingester.planner import shard_wallets

A, B, C, D = (f"0x{c * 40}" for c in "abcd")
MANY = [f"0x{i:040x}" for i in range(1, 60)]


def test_given_configured_wallets_when_selecting_then_those_beyond_the_ws_limit_are_polled() -> (
    None
):
    # Given A, B, C configured, the first two followed over WebSocket
    settings = load_settings(tracked_wallets=f"{A},{B},{C}", ws_user_limit=2)
    # When the database also tracks B (any case), D and C
    # Then C (beyond the WS limit) and D (never on a socket) are polled here, once each
    assert polled_wallets(settings, [B.upper().replace("0X", "0x"), D, C]) == [C, D]


def test_given_database_wallets_when_selecting_then_each_is_polled_once_in_order() -> None:
    settings = load_settings(tracked_wallets=f"{A}", ws_user_limit=0)
    assert polled_wallets(settings, [A, B, B, C]) == [A, B, C]


def test_given_shards_when_counting_ws_wallets_then_each_shard_takes_its_own_first_ones() -> None:
    # Given 59 configured wallets split over 4 shards, 3 on WebSocket per shard
    followed = websocket_wallets(MANY, 3, 4)
    # Then exactly what every shard's ingester subscribes to (its planner's split)
    assert followed == {w for i in range(4) for w in shard_wallets(MANY, (i, 4))[:3]}
    assert len(followed) == 12
    # And a worker told the shard count polls all the others, whatever its own index
    settings = load_settings(tracked_wallets=",".join(MANY), ws_user_limit=3, ingest_shard="2/4")
    assert set(polled_wallets(settings, [])) == set(MANY) - followed


def test_given_a_worker_left_at_one_shard_when_four_run_then_no_wallet_is_left_out() -> None:
    # The safe mismatch (docs: runtime.wallets): it polls some WebSocket wallets too
    settings = load_settings(tracked_wallets=",".join(MANY), ws_user_limit=3)
    polled = set(polled_wallets(settings, []))
    assert polled | websocket_wallets(MANY, 3, 4) == set(MANY)
