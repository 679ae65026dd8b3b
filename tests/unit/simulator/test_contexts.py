"""Asset contexts: full-state snapshots, all strings, delisted shape."""

from __future__ import annotations

from decimal import Decimal

from workers.simulator.contexts import AssetContexts
from workers.simulator.market import Market
from workers.simulator.universe import Universe

FIELDS = {
    "funding",
    "openInterest",
    "prevDayPx",
    "dayNtlVlm",
    "premium",
    "oraclePx",
    "markPx",
    "midPx",
    "impactPxs",
    "dayBaseVlm",
}


def contexts() -> AssetContexts:
    market = Market(Universe.build(["BTC", "ETH"], ["MATIC"]), seed=1, trades_per_block=10)
    for i in range(20):
        market.make_block(i)
    return AssetContexts(market, seed=1)


def test_listed_ctx_has_every_field_as_strings() -> None:
    ctxs = contexts()
    for _ in range(5):
        ctxs.step()
    ctx = ctxs.ctx("BTC")
    assert ctx is not None and set(ctx) == FIELDS
    for key in FIELDS - {"impactPxs"}:
        assert isinstance(ctx[key], str), key
        Decimal(ctx[key])
    assert all(isinstance(px, str) for px in ctx["impactPxs"])
    assert Decimal(ctx["impactPxs"][0]) < Decimal(ctx["midPx"]) < Decimal(ctx["impactPxs"][1])


def test_funding_is_an_hourly_rate_near_the_interest_baseline() -> None:
    ctxs = contexts()
    for _ in range(50):
        ctxs.step()
    assert abs(ctxs.funding("ETH") - Decimal("0.0000125")) <= Decimal("0.000125")


def test_delisted_ctx_has_nulls_and_zero_volume() -> None:
    ctx = contexts().ctx("MATIC")
    assert ctx is not None
    assert ctx["premium"] is None and ctx["midPx"] is None and ctx["impactPxs"] is None
    assert ctx["dayNtlVlm"] == "0.0" and ctx["openInterest"] == "0.0"


def test_unknown_coin_has_no_ctx_and_mids_skip_delisted() -> None:
    ctxs = contexts()
    assert ctxs.ctx("NOPE") is None
    assert set(ctxs.mids()) == {"BTC", "ETH"}
    assert set(ctxs.marks()) == {"BTC", "ETH"}


def test_day_volume_grows_with_trading() -> None:
    market = Market(Universe.build(["ETH"]), seed=1, trades_per_block=10)
    ctxs = AssetContexts(market, seed=1)
    before = ctxs.ctx("ETH")
    market.make_block(1)
    after = ctxs.ctx("ETH")
    assert before is not None and after is not None
    assert Decimal(after["dayBaseVlm"]) > Decimal(before["dayBaseVlm"])
