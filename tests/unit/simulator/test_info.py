"""/info answers computed from exchange state (no sockets)."""

from __future__ import annotations

from collections import deque

import orjson
import pytest

from workers.simulator.contexts import AssetContexts
from workers.simulator.info import InfoError, InfoService
from workers.simulator.ledger import Ledger
from workers.simulator.market import Market
from workers.simulator.universe import Universe

USER = "0x" + "a1" * 20


@pytest.fixture
def service() -> InfoService:
    universe = Universe.build(["BTC", "ETH"], ["MATIC"])
    market = Market(universe, seed=1, trades_per_block=20, users=(USER,), user_share=0.5)
    ledger = Ledger(universe, (USER,))
    recent: dict[str, deque] = {s.name: deque(maxlen=10) for s in universe.specs}
    for index in range(10):
        block = market.make_block(1_000 + index * 100)
        for coin, trades in block.by_coin.items():
            recent[coin].extend(trades)
        ledger.apply(block.trades)
    return InfoService(universe, AssetContexts(market, 1), ledger, recent, lambda: 5_000)


def test_meta_and_asset_ctxs_join_by_index(service: InfoService) -> None:
    meta, ctxs = service.answer({"type": "metaAndAssetCtxs"})
    assert len(meta["universe"]) == len(ctxs) == 3
    assert meta["universe"][2]["name"] == "MATIC" and ctxs[2]["midPx"] is None
    assert all("coin" not in ctx for ctx in ctxs)


def test_recent_trades(service: InfoService) -> None:
    trades = service.answer({"type": "recentTrades", "coin": "ETH"})
    assert 0 < len(trades) <= 10 and all(t["coin"] == "ETH" for t in trades)
    assert service.answer({"type": "recentTrades", "coin": "eth"}) is None


def test_user_fills_by_time_is_inclusive_ascending_and_bounded(service: InfoService) -> None:
    everything = service.answer({"type": "userFills", "user": USER})
    assert everything and [f["time"] for f in everything] == sorted(
        (f["time"] for f in everything), reverse=True
    )
    window = service.answer(
        {"type": "userFillsByTime", "user": USER, "startTime": 1_300, "endTime": 1_500}
    )
    assert window and all(1_300 <= f["time"] <= 1_500 for f in window)
    assert [f["time"] for f in window] == sorted(f["time"] for f in window)


def test_all_mids_is_flat(service: InfoService) -> None:
    mids = service.answer({"type": "allMids"})
    assert set(mids) == {"BTC", "ETH"} and all(isinstance(v, str) for v in mids.values())


@pytest.mark.parametrize(
    "request_body",
    [
        {"type": "candleSnapshot"},
        {},
        {"type": "recentTrades"},
        {"type": "clearinghouseState", "user": "nobody"},
        {"type": "userFillsByTime", "user": USER},
        {"type": "userFillsByTime", "user": USER, "startTime": "0"},
        [1],
    ],
)
def test_refusals_are_422(service: InfoService, request_body: object) -> None:
    with pytest.raises(InfoError) as caught:
        service.answer(request_body)
    assert caught.value.status == 422
    assert caught.value.message.startswith(
        "Failed to deserialize the JSON body into the target type: "
    )


def test_non_json_is_400(service: InfoService) -> None:
    status, body, content_type = service.answer_bytes(b"{not json")
    assert status == 400 and content_type == "text/plain" and body.startswith(b"Failed to parse")
    status, body, content_type = service.answer_bytes(b'{"type":"meta"}')
    assert status == 200 and content_type == "application/json" and "universe" in orjson.loads(body)
