"""Coin validation against /info meta: unknown or mis-cased coins refuse the start."""

from __future__ import annotations

import json

import httpx
import pytest

from runtime.hyperliquid.universe import (
    InfoUnavailable,
    UnknownCoin,
    fetch_universe,
    parse_meta,
    resolve_coins,
)

META = {
    "universe": [
        {"name": "BTC", "szDecimals": 5, "maxLeverage": 40},
        {"name": "ETH", "szDecimals": 4, "maxLeverage": 25},
        {"name": "kPEPE", "szDecimals": 0, "maxLeverage": 10},
        {"name": "MATIC", "szDecimals": 1, "maxLeverage": 20, "isDelisted": True},
    ]
}
XYZ = {"universe": [{"name": "xyz:TSLA", "szDecimals": 3, "maxLeverage": 10}]}


def client(status: int = 200) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["type"] == "meta"
        if status != 200:
            return httpx.Response(status)
        return httpx.Response(
            200, json=XYZ if body.get("dex") == "xyz" else (None if body.get("dex") else META)
        )

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_all_means_listed_perps_verbatim_without_delisted() -> None:
    assert resolve_coins(["all"], client(), "http://x/info") == ["BTC", "ETH", "kPEPE"]


def test_listed_coins_pass_including_builder_dex_names() -> None:
    assert resolve_coins(["kPEPE", "BTC", "xyz:TSLA"], client(), "http://x/info") == [
        "kPEPE",
        "BTC",
        "xyz:TSLA",
    ]


@pytest.mark.parametrize(
    ("coin", "message"),
    [
        ("NOPE", "unknown coin 'NOPE' in COINS: not in Hyperliquid's perp universe"),
        ("btc", "unknown coin 'btc' in COINS: names are case-sensitive, did you mean 'BTC'?"),
        ("MATIC", "coin 'MATIC' is delisted on Hyperliquid; remove it from COINS"),
        ("xyz:NOPE", "unknown coin 'xyz:NOPE' in COINS: not in Hyperliquid's perp universe"),
        ("abc:TSLA", "unknown coin 'abc:TSLA' in COINS: not in Hyperliquid's perp universe"),
        ("@107", "coin '@107' is a spot or outcome market; COINS takes perps only"),
    ],
)
def test_bad_coins_refuse_with_one_line_naming_the_coin(coin: str, message: str) -> None:
    with pytest.raises(UnknownCoin) as err:
        resolve_coins(["BTC", coin], client(), "http://x/info")
    assert str(err.value) == message and "\n" not in str(err.value)


def test_unreachable_or_nonsense_info_is_retryable_not_a_verdict() -> None:
    with pytest.raises(InfoUnavailable):
        fetch_universe(client(status=502), "http://x/info")
    with pytest.raises(InfoUnavailable):
        parse_meta({"universe": "nope"})
