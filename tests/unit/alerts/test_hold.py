"""Holds, pure: which inputs hold which kinds, the gap journal read, rule and coin holds."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from domain.alerts.definition import AlertKind, AlertRule, PriceSource
from domain.alerts.hold import (
    Hold,
    HoldPolicy,
    Input,
    coin_hold,
    inputs_of,
    open_gaps,
    rule_hold,
)
from domain.alerts.market_state import MarketState
from domain.alerts.view import Stream
from tests.unit.alerts.builders import WALLET, ctx, mid, position

POLICY = HoldPolicy(mids_ms=10_000, contexts_ms=30_000, positions_ms=75_000)
T = 1_787_052_600_000


def _rule(kind: AlertKind, **fields: object) -> AlertRule:
    base: dict[str, object] = {"coin": "BTC", "threshold": Decimal("5"), **fields}
    return AlertRule(id=1, user_id=1, kind=kind, **base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rule", "inputs"),
    [
        (_rule(AlertKind.PRICE_ABOVE), ("mids",)),
        (_rule(AlertKind.PRICE_BELOW, price_source=PriceSource.MARK), ("asset_contexts",)),
        (_rule(AlertKind.PRICE_MOVE_PCT, window_s=60), ("mids",)),
        (_rule(AlertKind.FUNDING_ABOVE, threshold=Decimal("0.001")), ("asset_contexts",)),
        (_rule(AlertKind.OI_CHANGE_PCT, window_s=60), ("asset_contexts",)),
        (
            _rule(AlertKind.LIQUIDATION_DISTANCE_BELOW, wallet=WALLET),
            ("asset_contexts", "positions"),
        ),
        (_rule(AlertKind.WHALE_TRADE, threshold=Decimal("1000")), ()),
        (_rule(AlertKind.STALE_DATA, stream=Stream.MIDS), ()),
    ],
)
def test_each_kind_is_held_by_the_inputs_it_reads(rule: AlertRule, inputs: tuple[str, ...]) -> None:
    assert inputs_of(rule) == inputs


def test_the_gap_journal_gives_each_coin_its_oldest_open_trades_gap_and_skips_bad_fields() -> None:
    # Given two feeds' journals: BTC open in both, a wallet's fills gap, an unreadable field
    first = {
        b"trades|BTC": json.dumps({"from_ms": 1, "opened_at": T + 5}).encode(),
        b"userFills|0xab": json.dumps({"from_ms": 1, "opened_at": T}).encode(),
        b"trades|ETH": b"not json",
    }
    second = {b"trades|BTC": json.dumps({"from_ms": T + 2}).encode()}

    # When read, Then BTC opened at the earlier moment (opened_at, else from_ms); nothing else
    assert open_gaps([first, second]) == {"BTC": T + 2}


def test_a_rule_is_held_by_an_open_gap_or_an_input_older_than_its_threshold() -> None:
    view = MarketState(max_age_ms=60_000, position_max_age_ms=300_000)
    view.apply(mid("BTC", T, "100"))
    view.apply(ctx("BTC", T))
    view.apply(position("BTC", T))
    price = _rule(AlertKind.PRICE_ABOVE)
    liquidation = _rule(AlertKind.LIQUIDATION_DISTANCE_BELOW, wallet=WALLET)
    whale = _rule(AlertKind.WHALE_TRADE, threshold=Decimal("1000"))
    stale = _rule(AlertKind.STALE_DATA, stream=Stream.MIDS)

    # Fresh data and no gap: nothing is held
    assert rule_hold(price, view, {}, POLICY, T + 10_000) is None
    # Mids past ALERT_HOLD_MIDS_S hold the price rule, since the last mid
    held = rule_hold(price, view, {}, POLICY, T + 10_001)
    assert held is not None and held.since_ms == T and "no mids for BTC" in held.reason
    # Positions past their cadence hold the liquidation rule (contexts still within 30 s)
    view.apply(ctx("BTC", T + 70_000))
    held = rule_hold(liquidation, view, {}, POLICY, T + 75_001)
    assert held is not None and "no positions" in held.reason
    # An open gap holds even event kinds; stale_data never is held
    assert rule_hold(whale, view, {}, POLICY, T + 999_999) is None
    held = rule_hold(whale, view, {"BTC": T + 3}, POLICY, T + 4)
    assert held is not None and held.since_ms == T + 3 and "feed for BTC was cut" in held.reason
    assert rule_hold(stale, view, {"BTC": T}, POLICY, T + 999_999) is None
    # A value never seen is not a hold (the judgement finds it unknown)
    assert rule_hold(_rule(AlertKind.PRICE_ABOVE, coin="ETH"), view, {}, POLICY, T) is None


def test_a_coin_hold_starts_when_the_first_reason_began_and_round_trips() -> None:
    both: tuple[Input, ...] = ("mids", "asset_contexts")
    seen: dict[Input, int | None] = {"mids": T, "asset_contexts": T + 1_000}

    # Fresh: no hold; mids stale: since the last mid
    assert coin_hold("BTC", both, seen, None, POLICY, T, T + 10_000) is None
    hold = coin_hold("BTC", both, seen, None, POLICY, T, T + 10_001)
    assert hold == Hold("BTC", T, hold.reason if hold else "", both)

    # A gap that opened earlier than the data went stale names the hold
    hold = coin_hold("BTC", ["asset_contexts"], seen, T - 5, POLICY, T, T + 1)
    assert hold is not None and hold.since_ms == T - 5 and hold.needs == ("asset_contexts",)

    # An input never seen is stale since the view started; positions are not a coin's need
    hold = coin_hold("BTC", ["mids", "positions"], {}, None, POLICY, T - 20_000, T)
    assert hold is not None and hold.since_ms == T - 20_000 and hold.needs == ("mids",)
    assert Hold.from_json(hold.to_json()) == hold
