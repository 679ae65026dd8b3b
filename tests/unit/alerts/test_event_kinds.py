"""The event kinds — whale_trade, wallet_position_change, wallet_liquidated: validation,
the occurrences made from trades / snapshots / fills, their judgement (each firing case has
a twin that stays quiet), cooldown in event time, the wording and the book's prefilter."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from domain.alerts.book import AlertBook
from domain.alerts.definition import AlertKind, AlertRule, InvalidAlert, Mode, parse_rule
from domain.alerts.firing import Firing, payload
from domain.alerts.judgement import Outcome, evaluate, evaluate_occurrence, should_rearm
from domain.alerts.market_state import MarketState
from domain.alerts.occurrence import (
    Occurrence,
    PositionChange,
    classify,
    liquidations,
    position_change,
    whale_trade,
)
from domain.alerts.wording import message, short_wallet
from events import Fill, Trade
from tests.unit.alerts.builders import WALLET, position

D = Decimal
NOW = 1_800_000_000_000
AGE = 30_000
BUYER = "0x5b2e9c0d4a1f8e7b6c3d2a1908f7e6d5c4b3a291"
SELLER = "0x0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b"
OTHER = "0x" + "cd" * 20


def rule(kind: str, threshold: str, **fields: Any) -> AlertRule:
    data: dict[str, Any] = {"id": 1, "user_id": 7, "coin": "BTC", "kind": kind}
    data["threshold"] = threshold
    if kind != "whale_trade":
        data.setdefault("wallet", WALLET)
    return parse_rule({**data, **fields})


def trade(px: str, sz: str, *, side: str = "B", coin: str = "BTC", time: int = NOW) -> Trade:
    return Trade(coin, time, 17, D(px), D(sz), side, "0x" + "1f" * 32, BUYER, SELLER)  # type: ignore[arg-type]


def snapshot(
    szi: str, value: str, *, time: int = NOW, user: str = WALLET, coin: str = "BTC"
) -> Any:
    return replace(
        position(coin, time, szi=szi, user=user), position_value=D(value), liquidation_px=None
    )


def fill(
    sz: str,
    px: str = "80000",
    *,
    user: str = WALLET,
    liquidated: str | None = WALLET,
    method: str | None = "market",
    side: str = "A",
    tid: int = 1,
    time: int = NOW,
) -> Fill:
    return Fill(
        user=user, coin="BTC", time=time, tid=tid, oid=9, px=D(px), sz=D(sz), side=side,  # type: ignore[arg-type]
        dir="Close Long", start_position=D(sz), closed_pnl=D(0), fee=D(0), fee_token="USDC",
        crossed=True, hash="0x" + "2a" * 32, liquidation=method, liquidated_user=liquidated,
        liquidation_mark_px=None if method is None else D("79990"),
    )  # fmt: skip


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"kind": "whale_trade", "threshold": "0"}, "above zero"),
        ({"kind": "wallet_liquidated", "threshold": "-5", "wallet": WALLET}, "above zero"),
        ({"kind": "whale_trade", "threshold": "1000000000000.01"}, "above the 1,000,000,000,000"),
        ({"kind": "wallet_position_change", "threshold": "5E+12", "wallet": WALLET}, "limit"),
        ({"kind": "whale_trade", "threshold": "100000.001"}, "at most 2 decimals"),
        ({"kind": "whale_trade", "threshold": "999.99"}, "at least 1000 USD"),
        ({"kind": "whale_trade", "threshold": "100000", "wallet": WALLET}, "a wallet applies"),
        ({"kind": "whale_trade", "threshold": "100000", "direction": "up"}, "direction"),
        ({"kind": "wallet_liquidated", "threshold": "1", "direction": "up", "wallet": WALLET},
         "direction"),
        ({"kind": "wallet_position_change", "threshold": "1", "window_s": 60, "wallet": WALLET},
         "window_s"),
        ({"kind": "wallet_position_change", "threshold": "1"}, "needs the tracked wallet"),
        ({"kind": "wallet_liquidated", "threshold": "1"}, "needs the tracked wallet"),
        ({"kind": "wallet_liquidated", "threshold": "1", "wallet": "0xABC"}, "40"),
    ],
)  # fmt: skip
def test_given_a_bad_event_alert_when_parsed_then_refused_with_the_reason(
    data: dict[str, Any], words: str
) -> None:
    with pytest.raises(InvalidAlert, match=words):
        parse_rule({"coin": "BTC", **data})


def test_given_good_event_alerts_when_parsed_then_accepted() -> None:
    assert rule("whale_trade", "1000").threshold == 1000
    assert rule("whale_trade", "1000000000000").threshold == D(10) ** 12
    assert rule("wallet_position_change", "0.01", direction="down").direction == "down"
    assert rule("wallet_liquidated", "250000.50", mode="recurring").wallet == WALLET
    assert rule("whale_trade", "1500.500").threshold == D("1500.5")  # trailing zeros are cents


# --- occurrences ---------------------------------------------------------------------------


def test_a_trade_is_valued_at_px_times_sz_and_names_its_taker() -> None:
    bought = whale_trade(trade("80000", "12.5", side="B"))
    sold = whale_trade(trade("80000", "12.5", side="A"))
    assert (bought.notional, bought.side, bought.wallet) == (D("1000000.0"), "buy", BUYER)
    assert (sold.side, sold.wallet) == ("sell", SELLER)
    anonymous = whale_trade(trade("1", "1")._replace(buyer=None, seller=None))
    assert anonymous.wallet is None


@pytest.mark.parametrize(
    ("before", "after", "change"),
    [
        ("0", "2", PositionChange.OPEN),
        ("0", "-2", PositionChange.OPEN),
        ("2", "3", PositionChange.INCREASE),
        ("-2", "-3", PositionChange.INCREASE),
        ("3", "2", PositionChange.REDUCE),
        ("-3", "-2", PositionChange.REDUCE),
        ("2", "0", PositionChange.CLOSE),
        ("2", "-1", PositionChange.FLIP),
        ("-1", "2", PositionChange.FLIP),
        ("2", "2", None),
        ("0", "0", None),
    ],
)
def test_consecutive_sizes_are_classified(
    before: str, after: str, change: PositionChange | None
) -> None:
    assert classify(D(before), D(after)) is change


def test_a_position_change_is_priced_at_the_mark_its_snapshot_implies() -> None:
    # positionValue = |szi| x mark: 10 BTC worth 800,000 were marked at 80,000
    grew = position_change(snapshot("-4", "316000", time=NOW - 1), snapshot("-10", "800000"))
    assert grew is not None
    assert (grew.change, grew.side, grew.size, grew.price) == ("increase", "short", 6, 80000)
    assert grew.notional == 480000
    # a close has no value of its own: the previous snapshot's mark prices it
    closed = position_change(snapshot("10", "790000", time=NOW - 1), snapshot("0", "0"))
    assert closed is not None
    assert (closed.change, closed.side, closed.size, closed.notional) == (
        "close",
        "long",
        10,
        790000,
    )
    # a flip counts both sides: long 2 to short 3 is 5 sold
    flipped = position_change(snapshot("2", "160000", time=NOW - 1), snapshot("-3", "240000"))
    assert flipped is not None and (flipped.size, flipped.notional) == (5, 400000)
    # the same size (only the mark moved) is no change
    assert position_change(snapshot("2", "160000", time=NOW - 1), snapshot("2", "170000")) is None


def test_only_the_wallets_own_liquidation_fills_are_its_liquidation() -> None:
    # Given, in one batch, a liquidation in two fills (one block), a fill the wallet made as
    # the liquidator of someone else, and an ordinary close
    fills = [
        fill("3", "80000", tid=1),
        fill("2", "79000", tid=2),
        fill("7", liquidated=OTHER, tid=3, side="B"),
        fill("9", method=None, liquidated=None, tid=4),
        fill("1", liquidated=None, tid=5, time=NOW + 500),  # names nobody: its own
    ]
    found = liquidations(fills)
    # Then one occurrence per liquidation of its own: summed, at the average fill price
    assert [(o.size, o.notional, o.time) for o in found] == [
        (5, D("398000"), NOW), (1, D("80000"), NOW + 500),
    ]  # fmt: skip
    first = found[0]
    assert (first.side, first.price, first.method, first.mark) == (
        "long", D("79600"), "market", D("79990"),
    )  # fmt: skip


# --- judgement -----------------------------------------------------------------------------


def whale(px: str = "80000", sz: str = "12.5", **kw: Any) -> Occurrence:
    return whale_trade(trade(px, sz, **kw))


def test_a_whale_trade_fires_at_its_threshold_and_its_twins_stay_quiet() -> None:
    r = rule("whale_trade", "1000000")
    # exactly the threshold fires; a cent under it, or another coin, does not
    assert evaluate_occurrence(r, whale(), NOW, AGE).outcome is Outcome.FIRE
    under = whale("79999.99", "12.5")
    assert under.notional == D("999999.875")
    assert evaluate_occurrence(r, under, NOW, AGE).outcome is Outcome.CLEAR
    assert evaluate_occurrence(r, whale(coin="ETH"), NOW, AGE).outcome is Outcome.CLEAR
    # older than the freshness bound: unknown, never fires
    late = whale(time=NOW - AGE - 1)
    assert evaluate_occurrence(r, late, NOW, AGE).outcome is Outcome.UNKNOWN


def test_a_position_change_fires_for_its_wallet_and_direction_only() -> None:
    change = position_change(snapshot("0", "0", time=NOW - 1), snapshot("10", "800000"))
    assert change is not None and change.change is PositionChange.OPEN
    up = rule("wallet_position_change", "800000", direction="up")
    assert evaluate_occurrence(up, change, NOW, AGE).outcome is Outcome.FIRE
    twins = [
        rule("wallet_position_change", "800000.01"),  # just over the notional
        rule("wallet_position_change", "800000", direction="down"),  # an open is not down
        rule("wallet_position_change", "800000", wallet=OTHER),  # another wallet
        rule("wallet_position_change", "800000", coin="ETH"),  # another coin
    ]
    for twin in twins:
        assert evaluate_occurrence(twin, change, NOW, AGE).outcome is Outcome.CLEAR, twin


def test_a_liquidation_fires_for_its_wallet_and_a_close_is_no_liquidation() -> None:
    [liquidation] = liquidations([fill("10", "80000")])
    r = rule("wallet_liquidated", "800000")
    assert evaluate_occurrence(r, liquidation, NOW, AGE).outcome is Outcome.FIRE
    assert liquidations([fill("10", method=None, liquidated=None)]) == []
    other = rule("wallet_liquidated", "1", wallet=OTHER)
    assert evaluate_occurrence(other, liquidation, NOW, AGE).outcome is Outcome.CLEAR


def test_each_event_is_an_arm_cycle_held_by_the_cooldown_in_event_time() -> None:
    # Given a recurring whale alert with a minute of cooldown that fired at NOW
    r = rule("whale_trade", "1000", mode="recurring", cooldown_s=60, last_fired_at=NOW)

    def outcome(time: int) -> Outcome:
        return evaluate_occurrence(r, whale(time=time), time, AGE).outcome

    # Then the same event again (a redelivery) and one inside the minute are held; the first
    # event a minute after the last firing fires
    assert outcome(NOW) is Outcome.HOLD
    assert outcome(NOW + 59_999) is Outcome.HOLD
    assert outcome(NOW + 60_000) is Outcome.FIRE
    # A once alert that fired is spent; without a cooldown only a newer event fires again
    spent = replace(r, mode=Mode.ONCE, armed=False)
    assert evaluate_occurrence(spent, whale(time=NOW + 1), NOW + 1, AGE).outcome is Outcome.HOLD
    eager = replace(r, cooldown_s=0)
    assert evaluate_occurrence(eager, whale(time=NOW + 1), NOW + 1, AGE).outcome is Outcome.FIRE


def test_snoozed_and_expired_event_alerts_hold_what_they_see() -> None:
    snoozed = rule("whale_trade", "1000", snooze_until=NOW + 1)
    expired = rule("whale_trade", "1000", expires_at=NOW)
    for r in (snoozed, expired):
        assert evaluate_occurrence(r, whale(), NOW, AGE).outcome is Outcome.HOLD


def test_event_kinds_are_never_judged_on_the_market_state_nor_re_armed() -> None:
    r = rule("whale_trade", "1000", mode="recurring", armed=False)
    state = MarketState(max_age_ms=AGE, position_max_age_ms=AGE)
    assert evaluate(r, state, NOW).outcome is Outcome.UNKNOWN
    assert should_rearm(r, state, NOW) is False


# --- wording and payload -------------------------------------------------------------------


def worded(r: AlertRule, occurrence: Occurrence) -> str:
    verdict = evaluate_occurrence(r, occurrence, NOW, AGE)
    assert verdict.outcome is Outcome.FIRE
    return message(r, verdict)


def test_messages_name_the_wallet_side_size_price_notional_and_coin() -> None:
    assert short_wallet(BUYER) == "0x5b2e…a291"
    assert worded(rule("whale_trade", "500000"), whale()) == (
        "BTC whale trade: 0x5b2e…a291 bought 12.5 at 80000 = 1000000.00 USD, at or above "
        "500000 USD [whale_trade]"
    )
    opened = position_change(snapshot("0", "0", time=NOW - 1), snapshot("-10", "800000"))
    assert opened is not None
    assert worded(rule("wallet_position_change", "1E+5"), opened) == (
        "wallet 0xabab…abab opened a BTC short of 10 at 80000 = 800000.00 USD, at or above "
        "100000 USD [wallet_position_change]"
    )
    reduced = position_change(snapshot("3", "240000", time=NOW - 1), snapshot("1", "80001"))
    assert reduced is not None
    assert worded(rule("wallet_position_change", "100000"), reduced) == (
        "wallet 0xabab…abab reduced its BTC long by 2 to 1 at 80001 = 160002.00 USD, at or "
        "above 100000 USD [wallet_position_change]"
    )
    flipped = position_change(snapshot("2", "160000", time=NOW - 1), snapshot("-1", "80000"))
    assert flipped is not None
    assert "flipped its BTC long of 2 to a short of 1 at 80000 = 240000.00 USD" in worded(
        rule("wallet_position_change", "1000"), flipped
    )
    [liquidated] = liquidations([fill("3", "80000", tid=1), fill("2", "79000", tid=2)])
    assert worded(rule("wallet_liquidated", "1000"), liquidated) == (
        "wallet 0xabab…abab was liquidated (market): its BTC long of 5 closed at 79600 = "
        "398000.00 USD, at or above 1000 USD [wallet_liquidated]"
    )


def test_an_implied_price_is_worded_to_six_significant_digits() -> None:
    odd = position_change(snapshot("0", "0", time=NOW - 1), snapshot("3", "1000000"))
    assert odd is not None and odd.price == D(1000000) / 3
    assert " at 333333 = 1000000.00 USD" in worded(rule("wallet_position_change", "1"), odd)


def test_the_payload_carries_the_event_as_exact_strings() -> None:
    r = replace(rule("wallet_position_change", "1000"), id=5)
    change = position_change(snapshot("1", "80000", time=NOW - 1), snapshot("4", "320000"))
    assert change is not None
    verdict = evaluate_occurrence(r, change, NOW, AGE)
    body = payload(Firing(r, verdict, 3, NOW), NOW)
    assert {k: body[k] for k in ("wallet", "side", "size", "price", "notional", "change")} == {
        "wallet": WALLET, "side": "long", "size": "3", "price": "80000", "notional": "240000",
        "change": "increase",
    }  # fmt: skip
    assert (body["size_before"], body["size_after"], body["direction"]) == ("1", "4", "any")


# --- the book's prefilter ------------------------------------------------------------------


def test_the_book_lists_armed_event_rules_cheapest_first_and_their_floor() -> None:
    book = AlertBook(kinds={AlertKind.WHALE_TRADE})
    for i, threshold in ((1, "500000"), (2, "100000"), (3, "250000")):
        book.put(replace(rule("whale_trade", threshold), id=i))
    book.put(replace(rule("whale_trade", "1000", coin="ETH"), id=4))
    assert [r.id for r in book.event_rules(AlertKind.WHALE_TRADE, "BTC")] == [2, 3, 1]
    assert book.floors(AlertKind.WHALE_TRADE) == {"BTC": D(100000), "ETH": D(1000)}
    book.drop(2)
    assert book.floors(AlertKind.WHALE_TRADE)["BTC"] == D(250000)
    assert book.floors(AlertKind.WALLET_LIQUIDATED) == {}
