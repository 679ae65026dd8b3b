"""/info answers computed from exchange state (no sockets)."""

from __future__ import annotations

from collections import deque
from decimal import Decimal

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
        {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m"}},
        {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "2m", "startTime": 0}},
        {"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m", "startTime": -1}},
        {"type": "candleSnapshot", "req": {"interval": "1m", "startTime": 0}},
        {"type": "candleSnapshot", "req": "BTC"},
        {"type": "fundingHistory", "coin": "BTC"},
        {"type": "fundingHistory", "coin": "BTC", "startTime": 1.5},
        {"type": "fundingHistory", "startTime": 0},
        {"type": "l2Book"},
        {"type": "l2Book", "coin": "BTC", "nSigFigs": 7},
        {"type": "l2Book", "coin": "BTC", "nSigFigs": 4, "mantissa": 2},
        {"type": "l2Book", "coin": "BTC", "nSigFigs": 5, "mantissa": 3},
        {"type": "spotMetaX"},
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


def test_refusal_messages_name_the_field(service: InfoService) -> None:
    with pytest.raises(InfoError) as caught:
        service.answer({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1m"}})
    assert caught.value.message.endswith("req: missing field `startTime`")
    with pytest.raises(InfoError) as caught:
        service.answer({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "7m",
                                                           "startTime": 0}})  # fmt: skip
    assert "req.interval: unknown variant `7m`" in caught.value.message
    with pytest.raises(InfoError) as caught:
        service.answer({"type": "bogus"})
    assert "unknown variant `bogus`" in caught.value.message
    assert "candleSnapshot" in caught.value.message and "spotMeta" in caught.value.message


def test_start_up_requests_of_stock_clients(service: InfoService) -> None:
    spot = service.answer({"type": "spotMeta"})
    assert spot["universe"] == [] and [t["name"] for t in spot["tokens"]] == ["USDC"]
    assert spot["tokens"][0]["index"] == 0 and spot["tokens"][0]["weiDecimals"] == 8
    assert service.answer({"type": "spotMetaAndAssetCtxs"}) == [spot, []]
    assert service.answer({"type": "perpDexs"}) == [None]
    assert service.answer({"type": "meta", "dex": ""}) == service.answer({"type": "meta"})


def test_candle_snapshot_reads_the_market_bars(service: InfoService) -> None:
    # The fixture's blocks are at 1,000..1,900 ms: one 1m bar per coin
    answer = service.answer(
        {"type": "candleSnapshot", "req": {"coin": "ETH", "interval": "1h", "startTime": 0}}
    )
    trades = [t for t in service.recent["ETH"]]
    assert len(answer) == 1 and answer[0]["t"] == 0 and answer[0]["T"] == 3_599_999
    assert answer[0]["n"] >= len(trades) and answer[0]["c"] == trades[-1]["px"]
    assert service.answer(
        {"type": "candleSnapshot", "req": {"coin": "ETH", "interval": "1m", "startTime": 0,
                                           "endTime": None}}
    ) != []  # fmt: skip
    assert (
        service.answer(
            {"type": "candleSnapshot", "req": {"coin": "DOGE", "interval": "1m", "startTime": 0}}
        )
        == []
    )


def test_l2_book_surrounds_the_touch(service: InfoService) -> None:
    book = service.answer({"type": "l2Book", "coin": "BTC", "nSigFigs": None, "mantissa": None})
    bids, asks = book["levels"]
    assert book["coin"] == "BTC" and book["time"] == 5_000
    assert 0 < len(bids) <= 20 and 0 < len(asks) <= 20
    bid_px = [Decimal(level["px"]) for level in bids]
    ask_px = [Decimal(level["px"]) for level in asks]
    assert bid_px == sorted(bid_px, reverse=True) and ask_px == sorted(ask_px)
    mid = Decimal(service.answer({"type": "allMids"})["BTC"])
    assert bid_px[0] < mid < ask_px[0]
    assert all(Decimal(level["sz"]) > 0 and level["n"] >= 1 for level in bids + asks)
    # The same second, the same book; coarser figures widen the steps
    assert service.answer({"type": "l2Book", "coin": "BTC"}) == book
    coarse = service.answer({"type": "l2Book", "coin": "BTC", "nSigFigs": 3})
    coarse_bids = [Decimal(level["px"]) for level in coarse["levels"][0]]
    assert all(px % 1000 == 0 for px in coarse_bids) and coarse_bids[0] <= bid_px[0]
    five = service.answer({"type": "l2Book", "coin": "BTC", "nSigFigs": 5, "mantissa": 5})
    assert all(Decimal(level["px"]) % 5 == 0 for side in five["levels"] for level in side)
    assert service.answer({"type": "l2Book", "coin": "MATIC"})["levels"] == [[], []]
    assert service.answer({"type": "l2Book", "coin": "DOGE"}) is None


def test_funding_history_answers_the_contexts_rows(service: InfoService) -> None:
    service.contexts.settle_funding(3_600_010)
    rows = service.answer({"type": "fundingHistory", "coin": "BTC", "startTime": 0})
    assert rows == []  # endTime defaults to now (5,000 ms): the row is in the future
    rows = service.answer(
        {"type": "fundingHistory", "coin": "BTC", "startTime": 0, "endTime": 4_000_000}
    )
    assert [r["time"] for r in rows] == [3_600_010] and rows[0]["coin"] == "BTC"


def test_each_request_is_weighed_as_the_exchange_weighs_it(service: InfoService) -> None:
    def weight(body: dict) -> int:
        return service.answer_weighed(orjson.dumps(body))[3]

    # reference §7.1: light types 2, userRole 60, every other type 20
    assert weight({"type": "clearinghouseState", "user": USER}) == 2
    assert weight({"type": "allMids"}) == 2
    assert weight({"type": "l2Book", "coin": "BTC"}) == 2
    assert weight({"type": "meta"}) == 20
    assert weight({"type": "metaAndAssetCtxs"}) == 20
    # plus one per 20 items returned by the paginated reads
    fills = service.answer({"type": "userFills", "user": USER})
    assert weight({"type": "userFills", "user": USER}) == 20 + len(fills) // 20
    assert len(fills) >= 20  # the extra weight is exercised
    # a refused request still costs its type's base weight (unknown types: 20)
    assert service.answer_weighed(b'{"type": "clearinghouseState"}')[::3] == (422, 2)
    assert service.answer_weighed(b'{"type": "nonsense"}')[::3] == (422, 20)
    assert service.answer_weighed(b"not json")[::3] == (400, 20)


def test_weights_of_candles_count_per_60_items() -> None:
    from workers.simulator.info import request_weight

    assert request_weight("candleSnapshot", [{}] * 119) == 21
    assert request_weight("recentTrades", [{}] * 40) == 22
    assert request_weight("userRole") == 60
    assert request_weight(None) == 20
