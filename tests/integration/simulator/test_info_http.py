"""POST /info over HTTP: shapes and refusals."""

from __future__ import annotations

import time

from tests.integration.simulator.conftest import http_post
from workers.simulator import sim_user_address


def test_meta(start_sim) -> None:
    status, meta = http_post(start_sim().info_url, {"type": "meta"})
    assert status == 200
    assert [u["name"] for u in meta["universe"]] == ["BTC", "ETH", "SOL", "MATIC"]
    assert meta["universe"][-1]["isDelisted"] is True


def test_meta_and_asset_ctxs_is_a_pair_joined_by_index(start_sim) -> None:
    status, body = http_post(start_sim().info_url, {"type": "metaAndAssetCtxs"})
    assert status == 200 and isinstance(body, list) and len(body) == 2
    meta, ctxs = body
    assert len(ctxs) == len(meta["universe"])
    assert isinstance(ctxs[0]["funding"], str) and ctxs[0]["midPx"] is not None
    assert ctxs[3]["midPx"] is None and ctxs[3]["impactPxs"] is None  # delisted MATIC


def test_recent_trades_and_all_mids(start_sim) -> None:
    sim = start_sim(replay_trades=7)
    deadline = time.monotonic() + 5
    while sim.stats()["trades_generated"] < 100 and time.monotonic() < deadline:
        time.sleep(0.02)
    status, trades = http_post(sim.info_url, {"type": "recentTrades", "coin": "BTC"})
    assert status == 200 and len(trades) == 7
    assert set(trades[0]) == {"coin", "side", "px", "sz", "time", "hash", "tid", "users"}
    status, mids = http_post(sim.info_url, {"type": "allMids"})
    assert status == 200 and set(mids) == {"BTC", "ETH", "SOL"} and "mids" not in mids


def test_wallet_endpoints(start_sim) -> None:
    user = sim_user_address(0)
    sim = start_sim(users=1, user_share=0.5, rate=400.0)
    deadline = time.monotonic() + 5
    while sim.stats()["fills_generated"] < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    status, state = http_post(sim.info_url, {"type": "clearinghouseState", "user": user})
    assert status == 200 and isinstance(state["marginSummary"]["accountValue"], str)
    status, fills = http_post(
        sim.info_url, {"type": "userFillsByTime", "user": user, "startTime": 0}
    )
    assert status == 200 and len(fills) >= 10
    assert [f["time"] for f in fills] == sorted(f["time"] for f in fills)
    assert {
        "coin",
        "px",
        "sz",
        "side",
        "time",
        "startPosition",
        "dir",
        "closedPnl",
        "hash",
        "oid",
        "crossed",
        "fee",
        "tid",
        "feeToken",
    } <= set(fills[0])
    cut = fills[len(fills) // 2]["time"]
    status, later = http_post(
        sim.info_url, {"type": "userFillsByTime", "user": user, "startTime": cut, "endTime": cut}
    )
    assert status == 200 and later and all(f["time"] == cut for f in later)


def test_unknown_type_is_422_with_a_message(start_sim) -> None:
    status, body = http_post(start_sim().info_url, {"type": "spotMetaPlease"})
    assert status == 422 and "unknown variant `spotMetaPlease`" in body


def test_not_json_is_400(start_sim) -> None:
    status, body = http_post(start_sim().info_url, b"{oops")
    assert status == 400 and body.startswith("Failed to parse the request body as JSON")


def test_bad_candle_and_funding_requests_are_422_with_the_field(start_sim) -> None:
    url = start_sim().info_url
    status, body = http_post(
        url, {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "2m", "startTime": 0}}
    )
    assert status == 422 and "req.interval: unknown variant `2m`" in body
    status, body = http_post(url, {"type": "candleSnapshot", "coin": "BTC", "interval": "1m"})
    assert status == 422 and "missing field `req`" in body
    status, body = http_post(url, {"type": "fundingHistory", "coin": "BTC"})
    assert status == 422 and "missing field `startTime`" in body
    status, body = http_post(url, {"type": "l2Book", "coin": "BTC", "nSigFigs": 9})
    assert status == 422 and "nSigFigs" in body


def test_info_over_the_websocket_post_serves_candles(start_sim, clients) -> None:
    sim = start_sim()
    deadline = time.monotonic() + 5
    while sim.stats()["trades_generated"] < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    client = clients(sim.ws_url)
    payload = {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": 0}}
    client.send({"method": "post", "id": 7, "request": {"type": "info", "payload": payload}})
    reply = client.recv_until(lambda m: m.get("channel") == "post")
    response = reply["data"]["response"]
    assert reply["data"]["id"] == 7 and response["type"] == "info"
    assert response["payload"]["type"] == "candleSnapshot"
    assert response["payload"]["data"] and response["payload"]["data"][0]["s"] == "BTC"
