"""The WebSocket protocol over a real socket, as the ingester will see it."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.integration.simulator.conftest import Client
from workers.simulator import sim_user_address


def test_ack_echoes_normalised_subscription_before_any_data(start_sim, clients) -> None:
    # Given a running simulator and a connected client
    sim = start_sim()
    client: Client = clients(sim.ws_url)
    # When it subscribes to userFills without aggregateByTime
    user = sim_user_address(0).upper().replace("0X", "0x")
    client.subscribe({"type": "userFills", "user": user})
    # Then the very first frame is the ack with the normalised echo
    assert client.recv() == {
        "channel": "subscriptionResponse",
        "data": {
            "method": "subscribe",
            "subscription": {"type": "userFills", "user": user.lower(), "aggregateByTime": False},
        },
    }


def test_first_trades_frame_is_an_unflagged_replay_of_recent_trades(start_sim, clients) -> None:
    # Given a simulator that has been trading for a while
    sim = start_sim(replay_trades=5)
    deadline = time.monotonic() + 5
    while sim.stats()["trades_generated"] < 60 and time.monotonic() < deadline:
        time.sleep(0.02)
    client = clients(sim.ws_url)
    # When a client subscribes to BTC trades
    client.subscribe({"type": "trades", "coin": "BTC"})
    ack = client.recv()
    first = client.recv()
    # Then the ack comes first, then an array of exactly 5 past trades with no flag
    assert ack["channel"] == "subscriptionResponse"
    assert first["channel"] == "trades" and set(first) == {"channel", "data"}
    assert isinstance(first["data"], list) and len(first["data"]) == 5
    assert all(t["coin"] == "BTC" for t in first["data"])
    # And later frames are new trades after the replayed ones
    later = client.recv_until(lambda m: m["channel"] == "trades")
    assert later["data"][0]["time"] >= first["data"][-1]["time"]
    assert not {t["tid"] for t in later["data"]} & {t["tid"] for t in first["data"]}


def test_trade_wire_fields(start_sim, clients) -> None:
    sim = start_sim()
    client = clients(sim.ws_url)
    client.subscribe({"type": "trades", "coin": "ETH"})
    client.recv()
    frame = client.recv_until(lambda m: m["channel"] == "trades" and bool(m["data"]))
    trade = frame["data"][0]
    assert list(trade) == ["coin", "side", "px", "sz", "time", "hash", "tid", "users"]
    assert (
        isinstance(trade["px"], str)
        and isinstance(trade["sz"], str)
        and isinstance(trade["tid"], int)
    )


def test_ping_gets_pong(start_sim, clients) -> None:
    client = clients(start_sim().ws_url)
    client.send({"method": "ping"})
    assert client.recv() == {"channel": "pong"}


def test_duplicate_subscribe_is_an_error_string_and_socket_stays_open(start_sim, clients) -> None:
    client = clients(start_sim().ws_url)
    client.subscribe({"type": "allMids"})
    client.recv()  # ack
    client.subscribe({"type": "allMids"})
    error = client.recv_until(lambda m: m["channel"] == "error")
    assert error == {"channel": "error", "data": 'Already subscribed: {"type":"allMids"}'}
    client.send({"method": "ping"})
    assert client.recv_until(lambda m: m["channel"] == "pong")


def test_unsubscribe_is_acked_and_second_unsubscribe_is_an_error(start_sim, clients) -> None:
    client = clients(start_sim().ws_url)
    sub = {"type": "trades", "coin": "SOL"}
    client.subscribe(sub)
    client.recv_until(lambda m: m["channel"] == "subscriptionResponse")
    client.send({"method": "unsubscribe", "subscription": sub})
    ack = client.recv_until(lambda m: m["channel"] == "subscriptionResponse")
    assert ack["data"] == {"method": "unsubscribe", "subscription": sub}
    client.send({"method": "unsubscribe", "subscription": sub})
    error = client.recv_until(lambda m: m["channel"] == "error")
    assert error["data"] == 'Already unsubscribed: {"type":"trades","coin":"SOL"}'


def test_parse_error_quotes_the_frame(start_sim, clients) -> None:
    client = clients(start_sim().ws_url)
    frame = '{"method":"subscribe","subscription":{"type":"trades","coin":["BTC","ETH"]}}'
    client.send(frame)
    assert client.recv() == {
        "channel": "error",
        "data": "Error parsing JSON into valid websocket request: " + frame,
    }
    client.send("not json")
    assert client.recv()["data"] == "Error parsing JSON into valid websocket request: not json"


def test_unknown_coin_silently_kills_the_whole_socket(start_sim, clients) -> None:
    # Given a client with a working subscription
    sim = start_sim()
    client = clients(sim.ws_url)
    client.subscribe({"type": "trades", "coin": "BTC"})
    client.recv()
    # When it subscribes to a coin the exchange does not list
    client.subscribe({"type": "trades", "coin": "NOPE"})
    # Then the socket dies with no error frame and no close frame
    received = client.frames_until_dropped(timeout=3)
    assert all('"channel":"error"' not in frame for frame in received)
    assert sim.stats()["silent_closes"] == 1


def test_miscased_coin_is_dropped_without_close_frame(start_sim, clients) -> None:
    client = clients(start_sim().ws_url)
    client.subscribe({"type": "activeAssetCtx", "coin": "btc"})
    assert client.dropped_without_close_frame()


def test_delisted_coin_is_acknowledged(start_sim, clients) -> None:
    client = clients(start_sim().ws_url)
    client.subscribe({"type": "trades", "coin": "MATIC"})
    assert client.recv()["channel"] == "subscriptionResponse"
    assert client.recv() == {"channel": "trades", "data": []}


def test_user_fills_snapshot_first_then_unflagged_updates(start_sim, clients) -> None:
    # Given a simulated wallet that trades often
    user = sim_user_address(0)
    sim = start_sim(users=1, user_share=0.5, rate=400.0)
    deadline = time.monotonic() + 5
    while sim.stats()["fills_generated"] < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    client = clients(sim.ws_url)
    # When the client subscribes to its fills
    client.subscribe({"type": "userFills", "user": user})
    client.recv()  # ack
    snapshot = client.recv()
    # Then the first frame is flagged isSnapshot with the fills so far, newest first
    assert snapshot["channel"] == "userFills" and snapshot["data"]["isSnapshot"] is True
    assert snapshot["data"]["user"] == user and len(snapshot["data"]["fills"]) >= 5
    times = [f["time"] for f in snapshot["data"]["fills"]]
    assert times == sorted(times, reverse=True)
    # And a later update carries no isSnapshot flag
    update = client.recv_until(lambda m: m["channel"] == "userFills")
    assert "isSnapshot" not in update["data"] and update["data"]["fills"]


def test_clearinghouse_state_push_shape(start_sim, clients) -> None:
    user = sim_user_address(0)
    client = clients(start_sim(users=1, user_share=0.5).ws_url)
    client.subscribe({"type": "clearinghouseState", "user": user})
    client.recv()
    frame = client.recv()
    assert frame["channel"] == "clearinghouseState"
    assert frame["data"]["dex"] == "" and frame["data"]["user"] == user
    state = frame["data"]["clearinghouseState"]
    assert {
        "marginSummary",
        "crossMarginSummary",
        "crossMaintenanceMarginUsed",
        "withdrawable",
        "assetPositions",
        "time",
    } <= set(state)


def test_asset_ctx_and_all_mids_push_current_state(start_sim, clients) -> None:
    client = clients(start_sim(ctx_interval_s=0.1, mids_interval_s=0.1).ws_url)
    client.subscribe({"type": "activeAssetCtx", "coin": "ETH"})
    client.recv()
    first = client.recv()
    assert first["channel"] == "activeAssetCtx" and first["data"]["coin"] == "ETH"
    assert isinstance(first["data"]["ctx"]["markPx"], str)
    assert client.recv_until(lambda m: m["channel"] == "activeAssetCtx")["data"]["coin"] == "ETH"
    client.subscribe({"type": "allMids"})
    mids = client.recv_until(lambda m: m["channel"] == "allMids")
    assert set(mids["data"]["mids"]) == {"BTC", "ETH", "SOL"}


def test_idle_connection_is_dropped_but_a_pinging_one_survives(start_sim, clients) -> None:
    # Given an idle timeout of 0.4 s
    sim = start_sim(idle_timeout_s=0.4)
    idle = clients(sim.ws_url)
    busy = clients(sim.ws_url)
    # When one client stays silent and the other pings every 0.1 s for 1 s
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        busy.send({"method": "ping"})
        assert busy.recv()["channel"] == "pong"
        time.sleep(0.1)
    # Then the silent one was dropped without a close frame, the other is still served
    assert idle.dropped_without_close_frame(timeout=2)
    assert sim.stats()["idle_closes"] >= 1
    busy.send({"method": "ping"})
    assert busy.recv() == {"channel": "pong"}


def test_post_info_over_the_socket(start_sim, clients) -> None:
    client = clients(start_sim().ws_url)
    client.send(
        {"method": "post", "id": 9, "request": {"type": "info", "payload": {"type": "meta"}}}
    )
    reply = client.recv()
    assert reply["channel"] == "post" and reply["data"]["id"] == 9
    assert reply["data"]["response"]["type"] == "info"
    assert reply["data"]["response"]["payload"]["type"] == "meta"
    assert reply["data"]["response"]["payload"]["data"]["universe"][0]["name"] == "BTC"


def test_user_limit_is_an_error_string(start_sim, clients) -> None:
    client = clients(start_sim(max_users_tracked=2).ws_url)
    for index in range(3):
        client.subscribe({"type": "userFills", "user": sim_user_address(index)})
    frames = [client.recv() for _ in range(5)]  # ack, snapshot, ack, snapshot, error
    assert frames[-1] == {"channel": "error", "data": "Cannot track more than 2 total users."}


def test_a_liquidated_wallet_gets_a_liquidation_fill_the_ingester_parses(
    start_sim, clients
) -> None:
    # Given a simulated wallet that has traded into a position, subscribed to its fills
    from events import Fill
    from runtime.hyperliquid.protocol import parse_frame
    from tests.integration.simulator.conftest import http_post

    sim = start_sim(users=1, user_share=0.5)
    user = sim_user_address(0)
    client: Client = clients(sim.ws_url)
    client.subscribe({"type": "userFills", "user": user})
    client.recv()  # the ack
    client.recv()  # the snapshot

    def open_coin(exchange: Any) -> str | None:
        account = exchange.ledger.accounts[user]
        return next((c for c, p in account.positions.items() if p.szi != 0), None)

    deadline = time.monotonic() + 5
    while (coin := sim.call(open_coin)) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert coin is not None

    # When the test control liquidates it (and a wallet without positions)
    status, fill = http_post(f"{sim.base_url}/_sim/liquidate", {"user": user, "coin": coin})
    missing, _ = http_post(
        f"{sim.base_url}/_sim/liquidate", {"user": "0x" + "0" * 40, "coin": coin}
    )

    # Then the fill is pushed on userFills, and the ingester's parser keeps the liquidation
    assert (status, missing) == (200, 404)
    raw = client.recv_until(
        lambda m: m["channel"] == "userFills" and m["data"]["fills"][0].get("liquidation")
    )
    parsed = parse_frame(json.dumps(raw).encode(), int(time.time() * 1000))
    [event] = [e for e in parsed.events if isinstance(e, Fill) and e.tid == fill["tid"]]
    assert (event.liquidation, event.liquidated_user, event.coin) == ("market", user, coin)
