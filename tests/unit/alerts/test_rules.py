"""Alert rules: validation, every kind's condition, unknown data, holds, re-arm hysteresis."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.alerts.definition import (
    AlertKind,
    AlertRule,
    Direction,
    InvalidAlert,
    Mode,
    PriceSource,
    parse_rule,
)
from domain.alerts.judgement import Outcome, evaluate, rearm_level, should_rearm
from domain.alerts.market_state import MarketState
from domain.alerts.view import Stream
from domain.alerts.wording import annualised, message
from tests.unit.alerts.builders import WALLET, ctx, mid, position

D = Decimal
NOW = 1_000_000


def rule(kind: AlertKind, threshold: str, **fields: Any) -> AlertRule:
    return AlertRule(id=1, user_id=7, kind=kind, coin="BTC", threshold=D(threshold), **fields)


def fresh_state(**kwargs: int) -> MarketState:
    kwargs.setdefault("max_age_ms", 5_000)
    kwargs.setdefault("position_max_age_ms", 60_000)
    return MarketState(**kwargs)


def with_mid(px: str, *, time: int = NOW) -> MarketState:
    s = fresh_state()
    s.apply(mid("BTC", time, px))
    return s


def with_ctx(*, time: int = NOW, **fields: str) -> MarketState:
    s = fresh_state()
    s.apply(ctx("BTC", time, **fields))
    return s


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"kind": "price_above", "threshold": "-5"}, "above zero"),
        ({"kind": "price_below", "threshold": "0"}, "above zero"),
        ({"kind": "price_move_pct", "threshold": "5"}, "needs window_s"),
        ({"kind": "oi_change_pct", "threshold": "5", "window_s": 0}, "from 1 to 86400"),
        ({"kind": "price_move_pct", "threshold": "5", "window_s": 90_000}, "from 1 to 86400"),
        ({"kind": "price_above", "threshold": "5", "window_s": 60}, "apply only to"),
        ({"kind": "price_above", "threshold": "5", "direction": "up"}, "apply only to"),
        ({"kind": "liquidation_distance_below", "threshold": "5"}, "needs the tracked wallet"),
        ({"kind": "liquidation_distance_below", "threshold": "5", "wallet": "0x12"}, "40"),
        ({"kind": "price_above", "threshold": "5", "wallet": WALLET}, "only to liquidation"),
        ({"kind": "stale_data", "threshold": "60"}, "needs stream"),
        ({"kind": "price_above", "threshold": "5", "stream": "mids"}, "only to stale_data"),
        ({"kind": "price_sideways", "threshold": "5"}, "unknown alert kind"),
        ({"threshold": "5"}, "needs a kind"),
        ({"kind": "price_above"}, "needs a threshold"),
        ({"kind": "price_above", "threshold": "abc"}, "decimal number"),
        ({"kind": "price_above", "threshold": "NaN"}, "finite"),
        ({"kind": "price_above", "threshold": 100.5}, "not a float"),
        ({"kind": "funding_above", "threshold": "0.5"}, "cap"),
        ({"kind": "funding_below", "threshold": "-0.05"}, "cap"),
        (
            {"kind": "price_move_pct", "threshold": "100", "window_s": 60, "direction": "down"},
            "could never fire",
        ),
        ({"kind": "price_move_pct", "threshold": "5", "window_s": 60, "direction": "x"}, "up"),
        (
            {"kind": "price_move_pct", "threshold": "5", "window_s": 60, "price_source": "mark"},
            "source",
        ),
        ({"kind": "price_above", "threshold": "5", "price_source": "last"}, "price source"),
        ({"kind": "price_above", "threshold": "5", "cooldown_s": -1}, "cooldown_s"),
        ({"kind": "price_above", "threshold": "5", "rearm_margin": "1"}, "rearm_margin"),
        ({"kind": "price_above", "threshold": "5", "rearm_margin": "-0.1"}, "rearm_margin"),
        ({"kind": "price_above", "threshold": "5", "expires_at": -1}, "expires_at"),
        ({"kind": "price_above", "threshold": "5", "mode": "twice"}, "unknown mode"),
        ({"kind": "price_above", "threshold": "5", "armed": "yes"}, "armed"),
        ({"kind": "price_above", "threshold": "5", "coin": "BTC USD"}, "coin name"),
        ({"kind": "price_above", "threshold": "5", "user_id": "me"}, "whole number"),
    ],
)
def test_given_a_bad_definition_when_parsed_then_it_is_refused_with_a_reason(
    data: dict[str, Any], words: str
) -> None:
    data = {"coin": "BTC", **data}

    with pytest.raises(InvalidAlert) as refused:
        parse_rule(data)

    assert words in str(refused.value)
    assert isinstance(refused.value, ValueError)


def test_given_loose_input_when_parsed_then_it_is_coerced_and_defaulted() -> None:
    parsed = parse_rule(
        {
            "id": "12",
            "user_id": 3,
            "kind": " Liquidation_Distance_Below ",
            "coin": "SOL",
            "threshold": " 5.5 ",
            "wallet": WALLET.upper().replace("0X", "0x"),
            "mode": "recurring",
            "cooldown_s": "600",
            "rearm_margin": "0.2",
        }
    )

    assert parsed == AlertRule(
        id=12,
        user_id=3,
        kind=AlertKind.LIQUIDATION_DISTANCE_BELOW,
        coin="SOL",
        threshold=D("5.5"),
        wallet=WALLET,
        mode=Mode.RECURRING,
        cooldown_s=600,
        rearm_margin=D("0.2"),
    )
    assert parsed.price_source is PriceSource.MID and parsed.armed


def test_given_a_negative_funding_threshold_when_built_then_it_is_accepted() -> None:
    assert rule(AlertKind.FUNDING_BELOW, "-0.0001").threshold == D("-0.0001")


def test_given_a_rule_when_changed_then_validation_runs_again() -> None:
    base = rule(AlertKind.PRICE_ABOVE, "100")

    with pytest.raises(InvalidAlert):
        replace(base, threshold=D("-1"))


# --- every kind: fire / clear / unknown ---------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "threshold", "px", "outcome"),
    [
        (AlertKind.PRICE_ABOVE, "100", "100", Outcome.FIRE),
        (AlertKind.PRICE_ABOVE, "100", "100.01", Outcome.FIRE),
        (AlertKind.PRICE_ABOVE, "100", "99.99", Outcome.CLEAR),
        (AlertKind.PRICE_BELOW, "100", "100", Outcome.FIRE),
        (AlertKind.PRICE_BELOW, "100", "100.01", Outcome.CLEAR),
    ],
)
def test_given_a_mid_when_a_price_rule_is_evaluated_then_it_compares_inclusively(
    kind: AlertKind, threshold: str, px: str, outcome: Outcome
) -> None:
    verdict = evaluate(rule(kind, threshold), with_mid(px), NOW)

    assert verdict.outcome is outcome
    assert verdict.value == D(px)


def test_given_a_mark_rule_when_only_a_mid_is_known_then_it_is_unknown() -> None:
    mark_rule = rule(AlertKind.PRICE_ABOVE, "100", price_source=PriceSource.MARK)

    assert evaluate(mark_rule, with_mid("150"), NOW).outcome is Outcome.UNKNOWN
    assert evaluate(mark_rule, with_ctx(mark="150"), NOW).outcome is Outcome.FIRE
    assert evaluate(mark_rule, with_ctx(mark="99"), NOW).outcome is Outcome.CLEAR


def test_given_no_price_or_a_stale_one_when_evaluated_then_unknown_never_fires() -> None:
    below = rule(AlertKind.PRICE_BELOW, "100")

    missing = evaluate(below, fresh_state(), NOW)
    stale = evaluate(below, with_mid("1", time=NOW - 5_001), NOW)

    assert (missing.outcome, stale.outcome) == (Outcome.UNKNOWN, Outcome.UNKNOWN)
    assert "no fresh mid price for BTC" in stale.reason


@pytest.mark.parametrize(
    ("kind", "threshold", "funding", "outcome"),
    [
        (AlertKind.FUNDING_ABOVE, "0.0001", "0.0001", Outcome.FIRE),
        (AlertKind.FUNDING_ABOVE, "0.0001", "0.00009", Outcome.CLEAR),
        (AlertKind.FUNDING_BELOW, "-0.0001", "-0.0002", Outcome.FIRE),
        (AlertKind.FUNDING_BELOW, "-0.0001", "0", Outcome.CLEAR),
        (AlertKind.FUNDING_BELOW, "0", "0", Outcome.FIRE),
    ],
)
def test_given_a_funding_rate_when_evaluated_then_the_hourly_rate_is_compared(
    kind: AlertKind, threshold: str, funding: str, outcome: Outcome
) -> None:
    assert evaluate(rule(kind, threshold), with_ctx(funding=funding), NOW).outcome is outcome


def test_given_funding_when_no_context_is_fresh_then_unknown() -> None:
    stale = with_ctx(funding="0.01", time=NOW - 10_000)

    assert evaluate(rule(AlertKind.FUNDING_ABOVE, "0.0001"), stale, NOW).outcome is Outcome.UNKNOWN


def moving_mids(*points: tuple[int, str]) -> MarketState:
    s = fresh_state(history_ms=3_600_000)
    for offset_s, px in points:
        s.apply(mid("BTC", NOW + offset_s * 1000, px))
    return s


def move_rule(threshold: str = "5", window_s: int = 600, **fields: Any) -> AlertRule:
    return rule(AlertKind.PRICE_MOVE_PCT, threshold, window_s=window_s, **fields)


def test_given_a_rise_within_the_window_when_evaluated_then_an_up_or_any_move_fires() -> None:
    s = moving_mids((-900, "100"), (-300, "100"), (-60, "103"), (0, "105"))
    at = NOW

    up = evaluate(move_rule(direction=Direction.UP), s, at)
    anyway = evaluate(move_rule(), s, at)
    down = evaluate(move_rule(direction=Direction.DOWN), s, at)

    assert (up.outcome, up.value, up.detail) == (Outcome.FIRE, D("5"), "up")
    assert anyway.outcome is Outcome.FIRE
    assert down.outcome is Outcome.CLEAR


def test_given_a_move_older_than_the_window_when_evaluated_then_it_does_not_count() -> None:
    s = moving_mids((-1200, "90"), (-900, "100"), (-300, "101"), (0, "100"))

    verdict = evaluate(move_rule(window_s=600), s, NOW)

    assert verdict.outcome is Outcome.CLEAR
    assert verdict.value == D("1") / D("101") * 100


def test_given_a_fall_within_the_window_when_evaluated_then_the_drop_is_from_the_high() -> None:
    s = moving_mids((-900, "100"), (-200, "200"), (0, "150"))

    verdict = evaluate(move_rule("25", direction=Direction.DOWN), s, NOW)

    assert (verdict.outcome, verdict.value, verdict.detail) == (Outcome.FIRE, D("25"), "down")


def test_given_history_shorter_than_the_window_when_calm_then_unknown_but_a_big_move_fires() -> (
    None
):
    calm = moving_mids((-60, "100"), (0, "101"))
    jump = moving_mids((-60, "100"), (0, "110"))

    assert evaluate(move_rule(), calm, NOW).outcome is Outcome.UNKNOWN
    assert evaluate(move_rule(), jump, NOW).outcome is Outcome.FIRE


def test_given_open_interest_history_when_it_grows_then_oi_change_fires() -> None:
    s = fresh_state()
    for offset_s, oi in [(-900, "1000"), (-300, "1000"), (0, "1100")]:
        s.apply(ctx("BTC", NOW + offset_s * 1000, oi=oi))
    oi_rule = rule(AlertKind.OI_CHANGE_PCT, "10", window_s=600)

    assert evaluate(oi_rule, s, NOW).outcome is Outcome.FIRE
    assert evaluate(replace(oi_rule, threshold=D("10.01")), s, NOW).outcome is Outcome.CLEAR


def test_given_zero_open_interest_when_a_change_is_asked_then_unknown() -> None:
    s = fresh_state()
    for offset_s, oi in [(-900, "50"), (-300, "0"), (0, "100")]:
        s.apply(ctx("BTC", NOW + offset_s * 1000, oi=oi))

    verdict = evaluate(rule(AlertKind.OI_CHANGE_PCT, "10", window_s=600), s, NOW)

    assert verdict.outcome is Outcome.UNKNOWN


def liq_state(mark: str = "100", **pos: Any) -> MarketState:
    s = fresh_state()
    s.apply(ctx("BTC", NOW, mark=mark))
    if pos.pop("none", False) is False:
        s.apply(position("BTC", NOW - 30_000, **pos))
    return s


def liq_rule(threshold: str = "5", **fields: Any) -> AlertRule:
    return rule(AlertKind.LIQUIDATION_DISTANCE_BELOW, threshold, wallet=WALLET, **fields)


@pytest.mark.parametrize(
    ("mark", "liq", "szi", "outcome", "distance"),
    [
        ("100", "96", "1", Outcome.FIRE, "4"),  # long, 4 % above liquidation
        ("100", "95", "1", Outcome.CLEAR, "5"),  # exactly 5 % is not below 5 %
        ("190", "199.5", "-2", Outcome.CLEAR, "5"),  # short, liquidation above mark
        ("195", "199.5", "-2", Outcome.FIRE, None),
    ],
)
def test_given_a_position_when_liquidation_distance_is_evaluated_then_both_sides_work(
    mark: str, liq: str, szi: str, outcome: Outcome, distance: str | None
) -> None:
    verdict = evaluate(liq_rule(), liq_state(mark, liq=liq, szi=szi), NOW)

    assert verdict.outcome is outcome
    if distance is not None:
        assert verdict.value == D(distance)


@pytest.mark.parametrize(
    ("state_kwargs", "why"),
    [
        ({"none": True}, "no fresh open BTC position"),
        ({"liq": None}, "no liquidation price"),
        ({"szi": "0"}, "no fresh open BTC position"),
    ],
)
def test_given_no_usable_position_when_evaluated_then_unknown_not_zero_distance(
    state_kwargs: dict[str, Any], why: str
) -> None:
    verdict = evaluate(liq_rule("50"), liq_state(**state_kwargs), NOW)

    assert verdict.outcome is Outcome.UNKNOWN
    assert why in verdict.reason


def test_given_a_stale_position_or_mark_when_evaluated_then_unknown() -> None:
    s = liq_state(liq="99")

    assert evaluate(liq_rule(), s, NOW + 5_001).outcome is Outcome.UNKNOWN  # mark stale
    old = fresh_state()
    old.apply(ctx("BTC", NOW, mark="100"))
    old.apply(position("BTC", NOW - 60_001, liq="99"))
    assert evaluate(liq_rule(), old, NOW).outcome is Outcome.UNKNOWN


def test_given_a_silent_stream_when_evaluated_then_stale_data_fires_after_n_seconds() -> None:
    s = fresh_state(started_ms=NOW - 3_600_000)
    s.apply(mid("BTC", NOW, "100"))
    stale = rule(AlertKind.STALE_DATA, "60", stream=Stream.MIDS)
    ctx_stale = replace(stale, stream=Stream.ASSET_CONTEXTS)

    assert evaluate(stale, s, NOW + 59_999).outcome is Outcome.CLEAR
    assert evaluate(stale, s, NOW + 60_000).outcome is Outcome.FIRE
    # Asset contexts were never seen since the view started an hour ago.
    assert evaluate(ctx_stale, s, NOW).outcome is Outcome.FIRE


# --- holds --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"snooze_until": NOW + 1}, "snoozed until"),
        ({"expires_at": NOW}, "expired"),
        ({"armed": False}, "already fired once"),
        ({"armed": False, "mode": Mode.RECURRING}, "disarmed"),
        ({"mode": Mode.RECURRING, "cooldown_s": 60, "last_fired_at": NOW - 59_999}, "cooling down"),
    ],
)
def test_given_a_true_condition_when_not_allowed_then_hold_with_the_reason(
    fields: dict[str, Any], reason: str
) -> None:
    verdict = evaluate(rule(AlertKind.PRICE_ABOVE, "100", **fields), with_mid("101"), NOW)

    assert verdict.outcome is Outcome.HOLD
    assert reason in verdict.reason


@pytest.mark.parametrize(
    "fields",
    [
        {"snooze_until": NOW},
        {"expires_at": NOW + 1},
        {"mode": Mode.RECURRING, "cooldown_s": 60, "last_fired_at": NOW - 60_000},
        {"mode": Mode.ONCE, "cooldown_s": 60, "last_fired_at": NOW - 1},
    ],
)
def test_given_the_gate_has_passed_when_evaluated_then_it_fires(fields: dict[str, Any]) -> None:
    verdict = evaluate(rule(AlertKind.PRICE_ABOVE, "100", **fields), with_mid("101"), NOW)

    assert verdict.outcome is Outcome.FIRE


def test_given_a_held_rule_when_the_condition_is_false_then_clear_not_hold() -> None:
    snoozed = rule(AlertKind.PRICE_ABOVE, "100", snooze_until=NOW + 1)

    assert evaluate(snoozed, with_mid("99"), NOW).outcome is Outcome.CLEAR


# --- re-arm hysteresis --------------------------------------------------------------------


def fired(kind: AlertKind, threshold: str, margin: str = "0.005", **fields: Any) -> AlertRule:
    return rule(
        kind,
        threshold,
        mode=Mode.RECURRING,
        armed=False,
        last_fired_at=NOW - 1,
        rearm_margin=D(margin),
        **fields,
    )


@pytest.mark.parametrize(
    ("kind", "px", "rearms"),
    [
        (AlertKind.PRICE_ABOVE, "99.6", False),
        (AlertKind.PRICE_ABOVE, "99.5", False),
        (AlertKind.PRICE_ABOVE, "99.49", True),
        (AlertKind.PRICE_BELOW, "100.5", False),
        (AlertKind.PRICE_BELOW, "100.51", True),
    ],
)
def test_given_a_fired_recurring_alert_when_price_moves_back_then_it_rearms_past_the_margin(
    kind: AlertKind, px: str, rearms: bool
) -> None:
    assert rearm_level(fired(kind, "100")) == (
        D("99.5") if kind is AlertKind.PRICE_ABOVE else D("100.5")
    )
    assert should_rearm(fired(kind, "100"), with_mid(px), NOW) is rearms


def test_given_a_rule_that_cannot_rearm_when_asked_then_no() -> None:
    far = with_mid("50")

    assert not should_rearm(rule(AlertKind.PRICE_ABOVE, "100", armed=False), far, NOW)  # once
    assert not should_rearm(replace(fired(AlertKind.PRICE_ABOVE, "100"), armed=True), far, NOW)
    assert not should_rearm(fired(AlertKind.PRICE_ABOVE, "100", expires_at=NOW), far, NOW)
    assert not should_rearm(fired(AlertKind.PRICE_ABOVE, "100"), fresh_state(), NOW)  # unknown


def test_given_liquidation_and_stale_rules_when_conditions_recover_then_they_rearm() -> None:
    liq = fired(AlertKind.LIQUIDATION_DISTANCE_BELOW, "5", "0.2", wallet=WALLET)
    s = fresh_state(started_ms=NOW - 120_000)
    s.apply(mid("BTC", NOW, "100"))
    stale = fired(AlertKind.STALE_DATA, "60", "0.5", stream=Stream.MIDS)

    assert not should_rearm(liq, liq_state(liq="94.01"), NOW)  # 5.99 % < 6 %
    assert should_rearm(liq, liq_state(liq="94"), NOW)  # 6 %
    assert should_rearm(stale, s, NOW + 29_999)
    assert not should_rearm(stale, s, NOW + 30_000)


def test_given_a_move_rule_when_history_is_incomplete_then_it_does_not_rearm() -> None:
    calm_but_short = moving_mids((-60, "100"), (0, "100"))
    calm_and_covered = moving_mids((-900, "100"), (0, "100"))
    fired_move = replace(move_rule(), mode=Mode.RECURRING, armed=False)

    assert not should_rearm(fired_move, calm_but_short, NOW)
    assert should_rearm(fired_move, calm_and_covered, NOW)


def test_given_a_recurring_alert_when_it_cycles_then_cooldown_delays_the_second_firing() -> None:
    # Given a recurring alert that fired and re-armed after the price fell back
    cycle = fired(AlertKind.PRICE_ABOVE, "100", cooldown_s=300)
    assert should_rearm(cycle, with_mid("99"), NOW)
    rearmed = replace(cycle, armed=True)

    # When the price crosses again inside and then after the cooldown
    inside = evaluate(rearmed, with_mid("101", time=NOW + 100_000), NOW + 100_000)
    after = evaluate(rearmed, with_mid("101", time=NOW + 300_000), NOW + 300_000)

    # Then it holds first and fires once the cooldown has passed
    assert (inside.outcome, after.outcome) == (Outcome.HOLD, Outcome.FIRE)


prices = st.decimals(min_value=D("0.000001"), max_value=D("1000000"), places=6)
margins = st.decimals(min_value=D("0"), max_value=D("0.5"), places=4)


@given(threshold=prices, px=prices, margin=margins, above=st.booleans())
def test_property_rearm_implies_clear_and_zero_margin_means_exactly_clear(
    threshold: Decimal, px: Decimal, margin: Decimal, above: bool
) -> None:
    kind = AlertKind.PRICE_ABOVE if above else AlertKind.PRICE_BELOW
    disarmed = fired(kind, str(threshold), str(margin))
    s = with_mid(str(px))

    rearms = should_rearm(disarmed, s, NOW)
    armed_outcome = evaluate(replace(disarmed, armed=True, last_fired_at=None), s, NOW).outcome

    assert armed_outcome is (
        (Outcome.FIRE if px >= threshold else Outcome.CLEAR)
        if above
        else (Outcome.FIRE if px <= threshold else Outcome.CLEAR)
    )
    if rearms:
        assert armed_outcome is Outcome.CLEAR
    if margin == 0:
        assert rearms is (armed_outcome is Outcome.CLEAR)


# --- humans -------------------------------------------------------------------------------


def test_given_an_hourly_rate_when_annualised_then_it_is_times_8760() -> None:
    assert annualised(D("0.0000125")) == D("0.1095")
    assert annualised(D("-0.0001")) == D("-0.876")


def test_given_a_fired_funding_alert_when_described_then_the_rate_is_also_annualised() -> None:
    r = rule(AlertKind.FUNDING_ABOVE, "0.0000125")
    verdict = evaluate(r, with_ctx(funding="0.00005"), NOW)

    text = message(r, verdict)

    assert text == (
        "BTC funding 0.00005 an hour (43.80 % a year) is at or above 0.0000125 an hour "
        "(10.95 % a year) [funding_above]"
    )


@pytest.mark.parametrize(
    ("r", "s", "expected"),
    [
        (
            rule(AlertKind.PRICE_ABOVE, "1E+5"),
            with_mid("100512.50"),
            "BTC mid price 100512.5 is at or above 100000 [price_above]",
        ),
        (
            move_rule(window_s=900),
            moving_mids((-1000, "100"), (-300, "100"), (0, "94")),
            "BTC mid price moved down 6.00 % within 15 min, at or above 5 % [price_move_pct]",
        ),
        (
            liq_rule(),
            liq_state(liq="96"),
            f"wallet {WALLET} BTC position is 4.00 % from liquidation (mark 100, liquidation 96),"
            " below 5 % [liquidation_distance_below]",
        ),
    ],
)
def test_given_fired_alerts_when_described_then_coin_value_threshold_and_kind_appear(
    r: AlertRule, s: MarketState, expected: str
) -> None:
    verdict = evaluate(r, s, NOW)

    assert verdict.outcome is Outcome.FIRE
    assert message(r, verdict) == expected


def test_given_an_unknown_verdict_when_described_then_refused() -> None:
    r = rule(AlertKind.PRICE_ABOVE, "100")

    with pytest.raises(ValueError):
        message(r, evaluate(r, fresh_state(), NOW))
