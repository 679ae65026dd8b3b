"""The listed universe and its meta answer."""

from __future__ import annotations

from decimal import Decimal

import pytest

from workers.simulator.universe import Universe, UniverseError, coin_spec, px_decimals_for


def test_meta_keeps_delisted_coins_at_their_index() -> None:
    meta = Universe.build(["BTC", "ETH", "SOL"], ["MATIC"]).meta()
    names = [entry["name"] for entry in meta["universe"]]
    assert names == ["BTC", "ETH", "SOL", "MATIC"]
    assert meta["universe"][3]["isDelisted"] is True
    assert "isDelisted" not in meta["universe"][0]
    assert {"szDecimals", "maxLeverage"} <= set(meta["universe"][0])
    assert meta["marginTables"]


def test_price_scale_follows_five_significant_figures() -> None:
    assert px_decimals_for(Decimal("117000"), 5) == 0
    assert px_decimals_for(Decimal("4320"), 4) == 1
    assert px_decimals_for(Decimal("186"), 2) == 2
    assert px_decimals_for(Decimal("0.22"), 0) == 5
    assert px_decimals_for(Decimal("0.011"), 0) == 6  # capped by 6 - szDecimals


def test_unknown_coin_gets_derived_spec_and_price_override() -> None:
    spec = coin_spec("FOO=2.5")
    assert spec.name == "FOO" and spec.base_px == Decimal("2.5") and spec.sz_decimals == 0
    assert coin_spec("BTC=90000").base_px == Decimal("90000")


@pytest.mark.parametrize("token", ["", "BAD NAME", "X=abc", "X=-1", "X=0"])
def test_bad_coin_tokens_are_refused(token: str) -> None:
    with pytest.raises(UniverseError):
        coin_spec(token)


def test_duplicates_and_all_delisted_are_refused() -> None:
    with pytest.raises(UniverseError):
        Universe.build(["BTC", "BTC"])
    with pytest.raises(UniverseError):
        Universe.build([], ["MATIC"])


def test_listed_coin_is_not_also_delisted() -> None:
    universe = Universe.build(["MATIC"], ["MATIC"])
    spec = universe.get("MATIC")
    assert spec is not None and not spec.delisted


def test_lookup_is_case_sensitive() -> None:
    universe = Universe.build(["BTC"])
    assert universe.get("BTC") is not None and universe.get("btc") is None


def test_listing_appends_and_delisting_keeps_the_index() -> None:
    universe = Universe.build(["BTC", "ETH"], ["MATIC"])
    universe.add(coin_spec("XRP"))
    assert [a["name"] for a in universe.meta()["universe"]] == ["BTC", "ETH", "MATIC", "XRP"]
    assert [s.name for s in universe.listed] == ["BTC", "ETH", "XRP"]
    universe.delist("ETH")
    entries = universe.meta()["universe"]
    assert [a["name"] for a in entries] == ["BTC", "ETH", "MATIC", "XRP"]
    assert entries[1].get("isDelisted") is True
    assert [s.name for s in universe.listed] == ["BTC", "XRP"]
    with pytest.raises(UniverseError):
        universe.add(coin_spec("BTC"))
    with pytest.raises(UniverseError):
        universe.delist("ETH")
