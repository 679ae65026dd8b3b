"""Simulated wallets: fills from trades, positions that follow them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from workers.simulator.config import SimulatorConfig
from workers.simulator.ledger import DEFAULT_BALANCE, FILLS_KEPT, Ledger
from workers.simulator.universe import Universe

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b2" * 20
OTHER = "0x" + "cc" * 20


def ledger(*users: str) -> Ledger:
    return Ledger(Universe.build(["BTC", "ETH"], ["MATIC"]), users or (ALICE,))


def trade(
    side: str,
    px: str,
    sz: str,
    buyer: str,
    seller: str,
    tid: int = 1,
    coin: str = "ETH",
    h: str = "0x01",
) -> dict:
    return {
        "coin": coin,
        "side": side,
        "px": px,
        "sz": sz,
        "time": 1000 + tid,
        "hash": h,
        "tid": tid,
        "users": [buyer, seller],
    }


def position(state: dict, coin: str) -> dict | None:
    for entry in state["assetPositions"]:
        if entry["position"]["coin"] == coin:
            return entry["position"]
    return None


def test_trade_without_sim_users_makes_no_fill() -> None:
    assert ledger().apply([trade("B", "100.0", "1.0", OTHER, BOB)]) == []


def test_taker_buy_opens_long_with_wsfill_fields() -> None:
    # Given Alice buys 2 ETH at 100 as taker
    book = ledger()
    fills = book.apply([trade("B", "100.0", "2.0", ALICE, OTHER, tid=7)])
    # Then one fill with the exact WsFill fields, strings for numbers
    assert len(fills) == 1
    user, fill = fills[0]
    assert user == ALICE
    assert list(fill) == [
        "coin", "px", "sz", "side", "time", "startPosition", "dir", "closedPnl",
        "hash", "oid", "crossed", "fee", "tid", "feeToken", "twapId",
    ]  # fmt: skip
    assert fill["side"] == "B" and fill["crossed"] is True and fill["dir"] == "Open Long"
    assert fill["startPosition"] == "0.0" and fill["closedPnl"] == "0.0"
    assert fill["fee"] == "0.09"  # 200 USD * 4.5 bps taker
    assert fill["tid"] == 7 and fill["feeToken"] == "USDC"
    assert all(isinstance(fill[k], str) for k in ("px", "sz", "startPosition", "closedPnl", "fee"))


def test_maker_sell_side_is_not_crossed() -> None:
    _, fill = ledger().apply([trade("B", "100.0", "1.0", OTHER, ALICE)])[0]
    assert fill["side"] == "A" and fill["crossed"] is False and fill["dir"] == "Open Short"
    assert fill["fee"] == "0.015"  # 1.5 bps maker


def test_adding_averages_entry_and_partial_close_realises_pnl() -> None:
    # Given Alice buys 1 @100 then 1 @110 (entry 105), then sells 0.5 @120
    book = ledger()
    book.apply([trade("B", "100.0", "1.0", ALICE, OTHER, tid=1)])
    book.apply([trade("B", "110.0", "1.0", ALICE, OTHER, tid=2)])
    _, close = book.apply([trade("A", "120.0", "0.5", OTHER, ALICE, tid=3)])[0]
    # Then the close realises (120 - 105) * 0.5 and the position is 1.5 @105
    assert close["dir"] == "Close Long" and close["startPosition"] == "2.0"
    assert Decimal(close["closedPnl"]) == Decimal("7.5")
    pos = position(book.clearinghouse_state(ALICE, {"ETH": Decimal("120")}, 5), "ETH")
    assert pos is not None
    assert Decimal(pos["szi"]) == Decimal("1.5") and Decimal(pos["entryPx"]) == Decimal("105")
    assert Decimal(pos["unrealizedPnl"]) == Decimal("22.5")


def test_flip_long_to_short_reopens_at_fill_price() -> None:
    book = ledger()
    book.apply([trade("B", "100.0", "1.0", ALICE, OTHER, tid=1)])
    _, flip = book.apply([trade("A", "90.0", "3.0", OTHER, ALICE, tid=2)])[0]
    assert flip["dir"] == "Long > Short" and Decimal(flip["closedPnl"]) == Decimal("-10")
    pos = position(book.clearinghouse_state(ALICE, {"ETH": Decimal("90")}, 5), "ETH")
    assert (
        pos is not None
        and Decimal(pos["szi"]) == Decimal("-2")
        and Decimal(pos["entryPx"]) == Decimal("90")
    )


def test_full_close_removes_position_and_books_cash() -> None:
    book = ledger()
    book.apply([trade("B", "100.0", "1.0", OTHER, ALICE, tid=1)])  # sells 1 @100 as maker
    _, close = book.apply([trade("B", "80.0", "1.0", ALICE, OTHER, tid=2)])[0]  # cover @80 (taker)
    assert close["dir"] == "Close Short" and Decimal(close["closedPnl"]) == Decimal("20")
    state = book.clearinghouse_state(ALICE, {"ETH": Decimal("80")}, 5)
    assert state["assetPositions"] == []
    fees = Decimal("0.015") + Decimal("0.036")
    assert Decimal(state["marginSummary"]["accountValue"]) == DEFAULT_BALANCE + Decimal("20") - fees


def test_trade_between_two_sim_users_fills_both_with_same_tid() -> None:
    book = ledger(ALICE, BOB)
    fills = book.apply([trade("A", "100.0", "1.0", ALICE, BOB, tid=99)])
    assert [(u, f["side"], f["crossed"], f["tid"]) for u, f in fills] == [
        (ALICE, "B", False, 99),
        (BOB, "A", True, 99),
    ]


def test_sweep_shares_the_takers_oid() -> None:
    book = ledger()
    fills = book.apply(
        [
            trade("B", "100.0", "1.0", ALICE, OTHER, tid=1, h="0xaa"),
            trade("B", "100.1", "1.0", ALICE, BOB, tid=2, h="0xaa"),
        ]
    )
    assert fills[0][1]["oid"] == fills[1][1]["oid"]
    maker = book.apply([trade("A", "100.0", "1.0", ALICE, OTHER, tid=3, h="0xbb")])
    assert maker[0][1]["oid"] != fills[0][1]["oid"]


def test_clearinghouse_state_shape_and_types() -> None:
    book = ledger()
    book.apply([trade("B", "4000.0", "2.0", ALICE, OTHER, coin="ETH")])
    state = book.clearinghouse_state(ALICE, {"ETH": Decimal("4100")}, 1234)
    assert set(state) == {
        "marginSummary", "crossMarginSummary", "crossMaintenanceMarginUsed", "withdrawable", "assetPositions", "time",
    }  # fmt: skip
    assert state["time"] == 1234
    for summary in (state["marginSummary"], state["crossMarginSummary"]):
        assert set(summary) == {"accountValue", "totalNtlPos", "totalRawUsd", "totalMarginUsed"}
        assert all(isinstance(v, str) for v in summary.values())
    entry = state["assetPositions"][0]
    assert entry["type"] == "oneWay"
    pos = entry["position"]
    assert pos["positionValue"] == "8200.0" and pos["unrealizedPnl"] == "200.0"
    assert pos["leverage"] == {"type": "cross", "value": 10} and pos["maxLeverage"] == 25
    assert pos["marginUsed"] == "820.0"
    assert Decimal(pos["returnOnEquity"]) == Decimal("0.25")  # 200 / (2*4000/10)
    assert pos["liquidationPx"] is None  # a long this well collateralised cannot be liquidated
    assert set(pos["cumFunding"]) == {"allTime", "sinceOpen", "sinceChange"}


def test_short_has_a_liquidation_price_above_mark() -> None:
    book = ledger()
    book.apply([trade("A", "4000.0", "10.0", OTHER, ALICE)])
    pos = position(book.clearinghouse_state(ALICE, {"ETH": Decimal("4000")}, 1), "ETH")
    assert pos is not None and pos["liquidationPx"] is not None
    assert Decimal(pos["liquidationPx"]) > Decimal("4000")


def test_unknown_wallet_has_an_empty_account() -> None:
    state = ledger().clearinghouse_state(OTHER, {}, 1)
    assert state["assetPositions"] == [] and state["marginSummary"]["accountValue"] == "0.0"


def test_funding_charges_longs_when_rate_positive() -> None:
    book = ledger()
    book.apply([trade("B", "100.0", "10.0", ALICE, OTHER)])
    book.charge_funding({"ETH": Decimal("0.0001")}, {"ETH": Decimal("100")})
    pos = position(book.clearinghouse_state(ALICE, {"ETH": Decimal("100")}, 1), "ETH")
    assert pos is not None
    assert pos["cumFunding"] == {"allTime": "0.1", "sinceOpen": "0.1", "sinceChange": "0.1"}


def test_fills_are_kept_oldest_first() -> None:
    book = ledger()
    book.apply(
        [
            trade("B", "100.0", "1.0", ALICE, OTHER, tid=1),
            trade("B", "100.0", "1.0", ALICE, OTHER, tid=2),
        ]
    )
    assert [f["tid"] for f in book.fills(ALICE)] == [1, 2]
    assert book.fills(OTHER) == []


def test_given_many_trades_when_applied_then_each_wallet_keeps_only_its_most_recent_fills() -> None:
    # Given a ledger keeping 50 fills per wallet, for two wallets that trade with each other
    book = Ledger(Universe.build(["BTC", "ETH"], ["MATIC"]), (ALICE, BOB), fills_kept=50)
    # When 1,000 trades between them are applied
    for tid in range(1, 1001):
        buyer, seller = (ALICE, BOB) if tid % 2 else (BOB, ALICE)
        book.apply([trade("B", "2000", "0.1", buyer, seller, tid=tid)])
    # Then each keeps exactly the 50 newest, oldest first, and memory stays bounded
    for user in (ALICE, BOB):
        kept = book.fills(user)
        assert len(kept) == 50
        assert [f["tid"] for f in kept] == list(range(951, 1001))
        assert book.accounts[user].fills.maxlen == 50


def test_given_the_defaults_when_a_ledger_is_built_then_it_keeps_2000_fills_per_wallet() -> None:
    assert FILLS_KEPT == 2000 == SimulatorConfig().fills_kept
    book = ledger(ALICE)
    for tid in range(1, FILLS_KEPT + 11):
        book.apply([trade("B", "2000", "0.1", ALICE, OTHER, tid=tid)])
    assert len(book.fills(ALICE)) == FILLS_KEPT
    assert book.fills(ALICE)[0]["tid"] == 11


def test_given_fills_kept_below_one_when_building_then_refused() -> None:
    with pytest.raises(ValueError):
        Ledger(Universe.build(["BTC"], []), (ALICE,), fills_kept=0)
    with pytest.raises(ValueError, match="fills-kept"):
        SimulatorConfig(fills_kept=0).validate()


def test_liquidation_closes_the_position_at_the_mark_with_the_wire_liquidation_object() -> None:
    # Given Alice long 2 ETH from 100
    book = ledger()
    book.apply([trade("B", "100.0", "2.0", ALICE, OTHER, tid=1)])

    # When she is liquidated at a mark of 90
    fill = book.liquidate(ALICE, "ETH", Decimal("90"), 5_000)

    # Then one taker sell of the whole position, at the mark, says it was her liquidation
    assert fill is not None
    assert (fill["side"], fill["sz"], fill["px"], fill["dir"], fill["crossed"]) == (
        "A", "2.0", "90.0", "Close Long", True,
    )  # fmt: skip
    assert fill["liquidation"] == {"liquidatedUser": ALICE, "markPx": "90.0", "method": "market"}
    assert Decimal(fill["closedPnl"]) == Decimal("-20") and fill["time"] == 5_000
    assert book.clearinghouse_state(ALICE, {"ETH": Decimal("90")}, 6)["assetPositions"] == []
    assert book.fills(ALICE)[-1] is fill
    # and nobody else's, nor a flat position, can be liquidated; tids never repeat
    assert book.liquidate(ALICE, "ETH", Decimal("90"), 6_000) is None
    assert book.liquidate(OTHER, "ETH", Decimal("90"), 6_000) is None
    book.apply([trade("A", "100.0", "1.0", OTHER, ALICE, tid=2, coin="BTC")])
    short = book.liquidate(ALICE, "BTC", Decimal("120"), 7_000)
    assert short is not None and short["side"] == "B" and short["tid"] == fill["tid"] - 1
