"""ThresholdIndex: bisect results equal a naive filter, exactly, for firing and re-arming."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.alerts import index as index_module
from domain.alerts.definition import (
    FUNDING_DECIMALS,
    MAX_PRICE,
    PRICE_DECIMALS,
    AlertKind,
    AlertRule,
    Mode,
    PriceSource,
    comparison,
)
from domain.alerts.index import IndexKey, Purpose, ThresholdIndex, index_key
from domain.alerts.judgement import Outcome, evaluate, rearm_level, rearm_satisfied
from domain.alerts.market_state import MarketState, Quote
from domain.alerts.view import Stream
from tests.unit.alerts.builders import WALLET, ctx, mid

D = Decimal
ABOVE_MID: IndexKey = (AlertKind.PRICE_ABOVE, PriceSource.MID)
BELOW_MID: IndexKey = (AlertKind.PRICE_BELOW, PriceSource.MID)


def rule(
    alert_id: int, kind: AlertKind, threshold: str, coin: str = "BTC", **fields: Any
) -> AlertRule:
    return AlertRule(id=alert_id, user_id=1, kind=kind, coin=coin, threshold=D(threshold), **fields)


def test_given_above_thresholds_when_a_value_equals_one_then_it_is_crossed_inclusively() -> None:
    index = ThresholdIndex.build(
        [
            rule(1, AlertKind.PRICE_ABOVE, "100"),
            rule(2, AlertKind.PRICE_ABOVE, "100.005"),
            rule(3, AlertKind.PRICE_ABOVE, "99.5"),
        ]
    )

    assert sorted(index.crossed("BTC", ABOVE_MID, D("100"))) == [1, 3]
    assert sorted(index.crossed("BTC", ABOVE_MID, D("100.00499999"))) == [1, 3]
    assert sorted(index.crossed("BTC", ABOVE_MID, D("100.005"))) == [1, 2, 3]
    assert list(index.crossed("BTC", ABOVE_MID, D("99.4999"))) == []


def test_given_below_thresholds_when_a_value_comes_then_thresholds_at_or_above_it_cross() -> None:
    index = ThresholdIndex.build(
        [rule(1, AlertKind.PRICE_BELOW, "100"), rule(2, AlertKind.PRICE_BELOW, "99.995")]
    )

    assert sorted(index.crossed("BTC", BELOW_MID, D("99.995"))) == [1, 2]
    assert sorted(index.crossed("BTC", BELOW_MID, D("99.99500001"))) == [1]
    assert list(index.crossed("BTC", BELOW_MID, D("100.000001"))) == []
    assert list(index.crossed("ETH", BELOW_MID, D("1"))) == []


def test_given_books_per_source_when_crossed_then_mid_and_mark_do_not_mix() -> None:
    index = ThresholdIndex.build(
        [
            rule(1, AlertKind.PRICE_ABOVE, "100"),
            rule(2, AlertKind.PRICE_ABOVE, "100", price_source=PriceSource.MARK),
            rule(3, AlertKind.FUNDING_ABOVE, "0.0001"),
            rule(4, AlertKind.FUNDING_BELOW, "-0.0001"),
        ]
    )

    ticked = index.candidates_for_tick(
        {"BTC": Quote(mid=D("101"), mark=D("99"), funding=D("-0.0002"))}
    )

    assert sorted(ticked) == [1, 4]
    assert list(index.crossed("BTC", (AlertKind.FUNDING_ABOVE, None), D("0.0001"))) == [3]


def test_given_an_unknown_value_when_a_tick_comes_then_its_books_cross_nothing() -> None:
    index = ThresholdIndex.build(
        [rule(1, AlertKind.PRICE_BELOW, "100", price_source=PriceSource.MARK)]
    )

    assert index.candidates_for_tick({"BTC": Quote(mid=D("1"), mark=None, funding=None)}) == []


def test_given_finer_thresholds_when_added_later_then_they_compare_exactly() -> None:
    index = ThresholdIndex.build([rule(1, AlertKind.PRICE_ABOVE, "100")])

    index.add(rule(2, AlertKind.PRICE_ABOVE, "100.0000001"))
    index.add(rule(3, AlertKind.PRICE_ABOVE, "99.99999999"))

    assert sorted(index.crossed("BTC", ABOVE_MID, D("100"))) == [1, 3]
    assert sorted(index.crossed("BTC", ABOVE_MID, D("100.0000001"))) == [1, 2, 3]
    assert sorted(index.crossed("BTC", ABOVE_MID, D("100.000000099999"))) == [1, 3]


def test_given_the_extreme_accepted_thresholds_when_indexed_then_they_fit_and_compare_exactly() -> (
    None
):
    # Given the largest and the finest price thresholds a rule accepts, the widest margin
    top, tiny = MAX_PRICE, D(1).scaleb(-PRICE_DECIMALS)
    index = ThresholdIndex.build(
        [rule(1, AlertKind.PRICE_ABOVE, str(tiny)), rule(2, AlertKind.PRICE_ABOVE, str(top))]
    )
    below = rule(3, AlertKind.PRICE_BELOW, str(top), armed=False, mode=Mode.RECURRING,
                 rearm_margin=D("0.999999"))  # fmt: skip
    rearm = ThresholdIndex.build([below], Purpose.REARM)

    # Then they are crossed exactly at their level, and at the re-arm level 1999999000
    assert sorted(index.crossed("BTC", ABOVE_MID, top)) == [1, 2]
    assert list(index.crossed("BTC", ABOVE_MID, top - tiny)) == [1]
    assert list(index.crossed("BTC", ABOVE_MID, tiny / 2)) == []
    assert rearm_level(below) == D("1999999000")
    assert list(rearm.crossed("BTC", BELOW_MID, D("1999999000"))) == []
    assert list(rearm.crossed("BTC", BELOW_MID, D("1999999000.000000001"))) == [3]
    # and a tick value of any size or precision costs no more than an ordinary one
    assert sorted(index.crossed("BTC", ABOVE_MID, D("1E+999999"))) == [1, 2]
    assert list(index.crossed("BTC", ABOVE_MID, D("1E-999999"))) == []


def test_given_one_rule_with_a_fine_level_when_added_then_the_others_keys_do_not_change() -> None:
    # Given a re-arm book of ordinary levels (thresholds to the cent, margin 0.5 %)
    ordinary = [
        rule(i, AlertKind.PRICE_ABOVE, f"{100 + i}.25", armed=False, mode=Mode.RECURRING)
        for i in range(1, 50)
    ]
    index = ThresholdIndex.build(ordinary, Purpose.REARM)
    book = index._books["BTC"][ABOVE_MID]
    keys_before, scale = list(book.levels), book.exp

    # When a rule whose re-arm level has 14 decimals joins (99.99999999 * (1 - 0.000001))
    fine = rule(99, AlertKind.PRICE_ABOVE, "99.99999999", armed=False, mode=Mode.RECURRING,
                rearm_margin=D("0.000001"))  # fmt: skip
    index.add(fine)

    # Then the book keeps its scale and every other key; only the fine rule keeps a Decimal
    assert book.exp == scale == PRICE_DECIMALS
    assert [k for k, i in zip(book.levels, book.ids, strict=True) if i != 99] == keys_before
    assert book.fine == {99: rearm_level(fine)} and rearm_level(fine) == D("99.99989999000001")
    # and it is compared exactly: re-arms strictly below its level, not at it
    assert 99 not in index.crossed("BTC", ABOVE_MID, rearm_level(fine))
    assert 99 in index.crossed("BTC", ABOVE_MID, D("99.99989999"))
    assert 99 not in index.crossed("BTC", ABOVE_MID, D("99.999899990000011"))


def test_given_an_index_when_alerts_are_removed_or_replaced_then_queries_follow() -> None:
    index = ThresholdIndex.build(
        [rule(i, AlertKind.PRICE_ABOVE, str(100 + i)) for i in range(1, 11)]
    )

    assert index.remove(3) and not index.remove(3)
    assert index.remove_many([1, 2, 99, 4]) == 3
    index.add(rule(5, AlertKind.PRICE_ABOVE, "1"))  # replaces the old 5 at 105

    assert sorted(index.crossed("BTC", ABOVE_MID, D("107"))) == [5, 6, 7]
    assert len(index) == 6 and 5 in index and 3 not in index


def test_given_purposes_when_rules_are_added_then_only_those_that_belong_are_kept() -> None:
    armed = rule(1, AlertKind.PRICE_ABOVE, "100")
    spent_once = rule(2, AlertKind.PRICE_ABOVE, "100", armed=False)
    spent_recurring = rule(3, AlertKind.PRICE_ABOVE, "100", armed=False, mode=Mode.RECURRING)
    rules = [armed, spent_once, spent_recurring]

    fire = ThresholdIndex.build(rules)
    rearm = ThresholdIndex.build(rules, Purpose.REARM)

    assert [i for i in (1, 2, 3) if i in fire] == [1]
    assert [i for i in (1, 2, 3) if i in rearm] == [3]
    assert fire.add(replace(armed, armed=False)) is False and 1 not in fire


def test_given_a_fired_recurring_alert_when_indexed_for_rearm_then_it_crosses_past_the_margin() -> (
    None
):
    spent = rule(1, AlertKind.PRICE_ABOVE, "100", armed=False, mode=Mode.RECURRING)
    index = ThresholdIndex.build([spent], Purpose.REARM)

    assert list(index.crossed("BTC", ABOVE_MID, D("99.5"))) == []  # strictly below 99.5
    assert list(index.crossed("BTC", ABOVE_MID, D("99.49"))) == [1]


def test_given_other_kinds_when_indexed_then_they_wait_in_per_coin_direct_lists() -> None:
    liq = rule(1, AlertKind.LIQUIDATION_DISTANCE_BELOW, "5", wallet=WALLET)
    stale = rule(2, AlertKind.STALE_DATA, "60", coin="ETH", stream=Stream.MIDS)
    move = rule(3, AlertKind.PRICE_MOVE_PCT, "5", window_s=60)
    index = ThresholdIndex.build([liq, stale, move, rule(4, AlertKind.PRICE_ABOVE, "1000")])
    quote = Quote(mid=D("1"), mark=D("1"), funding=D("0"))

    assert sorted(index.direct("BTC")) == [1, 3]
    assert sorted(index.direct_ids()) == [1, 2, 3]
    assert sorted(index.candidates_for_tick({"BTC": quote})) == [1, 3]
    assert index.candidates_for_tick({"BTC": quote}, direct=False) == []
    assert index.remove(3) and sorted(index.direct("BTC")) == [1]
    assert index_key(liq) is None and index_key(move) is None


def test_given_many_alerts_when_built_then_memory_is_compact_per_alert() -> None:
    rules = [
        rule(i + 1, AlertKind.PRICE_ABOVE, f"{1000 + i % 997}.{i % 100}") for i in range(20_000)
    ]

    index = ThresholdIndex.build(rules)

    assert len(index) == 20_000
    # Two int64 arrays (16 B) plus the id -> book map (dict slot and the id int).
    assert 16 * 20_000 < index.memory_bytes() < 150 * 20_000


# --- property: index == naive filter ------------------------------------------------------

COINS = ("BTC", "ETH", "kPEPE")
KINDS = (
    AlertKind.PRICE_ABOVE,
    AlertKind.PRICE_BELOW,
    AlertKind.FUNDING_ABOVE,
    AlertKind.FUNDING_BELOW,
)


def decimals_text(draw: st.DrawFn, funding: bool, finer: int = 0) -> str:
    # Thresholds take the decimals their kind allows; tick values (``finer``) more.
    places = draw(st.integers(0, (FUNDING_DECIMALS if funding else PRICE_DECIMALS) + finer))
    if funding:
        value = draw(st.decimals(min_value=D("-0.04"), max_value=D("0.04"), places=places))
    else:
        low = D(1).scaleb(-places) if places else D(1)
        value = draw(st.decimals(min_value=low, max_value=D("200"), places=places))
    return str(value)


@st.composite
def rule_sets(draw: st.DrawFn) -> list[AlertRule]:
    count = draw(st.integers(0, 60))
    out = []
    for alert_id in range(1, count + 1):
        kind = draw(st.sampled_from(KINDS))
        price_kind = kind in (AlertKind.PRICE_ABOVE, AlertKind.PRICE_BELOW)
        extra: dict[str, Any] = {}
        if price_kind:
            extra["price_source"] = draw(st.sampled_from(PriceSource))
        out.append(
            AlertRule(
                id=alert_id,
                user_id=1,
                kind=kind,
                coin=draw(st.sampled_from(COINS)),
                threshold=D(decimals_text(draw, funding=not price_kind)),
                armed=draw(st.booleans()),
                mode=draw(st.sampled_from(Mode)),
                rearm_margin=draw(
                    st.decimals(min_value=0, max_value=D("0.5"), places=draw(st.integers(0, 6)))
                ),
                **extra,
            )
        )
    return out


@st.composite
def quote_sets(draw: st.DrawFn, rules: list[AlertRule]) -> dict[str, Quote]:
    # Values drawn partly from the thresholds themselves, so equality is exercised.
    levels = [r.threshold for r in rules]

    def value(funding: bool) -> Decimal | None:
        choice = draw(st.integers(0, 3))
        if choice == 0:
            return None
        if choice == 1 and levels:
            return draw(st.sampled_from(levels))
        return D(decimals_text(draw, funding, finer=2))

    return {
        coin: Quote(mid=value(False), mark=value(False), funding=value(True))
        for coin in draw(st.lists(st.sampled_from(COINS), unique=True))
    }


def field_value(quote: Quote, r: AlertRule) -> Decimal | None:
    if r.kind in (AlertKind.FUNDING_ABOVE, AlertKind.FUNDING_BELOW):
        return quote.funding
    return quote.mid if r.price_source is PriceSource.MID else quote.mark


def naive(rules: list[AlertRule], quotes: dict[str, Quote], purpose: Purpose) -> list[int]:
    hits = []
    for r in rules:
        quote = quotes.get(r.coin)
        value = field_value(quote, r) if quote is not None else None
        if value is None:
            continue
        if purpose is Purpose.FIRE:
            above = comparison(r.kind) == "ge"
            if r.armed and (value >= r.threshold if above else value <= r.threshold):
                hits.append(r.id)
        elif (
            not r.armed
            and r.mode is Mode.RECURRING
            and rearm_satisfied(r.kind, value, rearm_level(r))
        ):
            hits.append(r.id)
    return sorted(hits)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), purpose=st.sampled_from(Purpose))
def test_property_candidates_equal_a_naive_filter_for_build_and_incremental_adds(
    data: st.DataObject, purpose: Purpose
) -> None:
    rules = data.draw(rule_sets())
    quotes = data.draw(quote_sets(rules))
    built = ThresholdIndex.build(rules, purpose)
    grown = ThresholdIndex(purpose)
    for r in reversed(rules):
        grown.add(r)

    expected = naive(rules, quotes, purpose)

    assert sorted(built.candidates_for_tick(quotes)) == expected
    assert sorted(grown.candidates_for_tick(quotes)) == expected


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_property_after_removing_some_alerts_the_rest_still_match_naive(
    data: st.DataObject,
) -> None:
    rules = data.draw(rule_sets())
    quotes = data.draw(quote_sets(rules))
    gone = (
        set(data.draw(st.lists(st.sampled_from([r.id for r in rules]), unique=True)))
        if rules
        else set()
    )
    index = ThresholdIndex.build(rules)

    index.remove_many(gone)

    kept = [r for r in rules if r.id not in gone]
    assert sorted(index.candidates_for_tick(quotes)) == naive(kept, quotes, Purpose.FIRE)
    assert len(index) == sum(1 for r in kept if r.armed)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_property_index_candidates_equal_what_evaluate_fires(data: st.DataObject) -> None:
    # Given armed rules with no snooze/cooldown, and a market state holding the tick
    rules = [replace(r, armed=True) for r in data.draw(rule_sets())]
    quotes = data.draw(quote_sets(rules))
    state = MarketState(max_age_ms=1_000)
    for coin, q in quotes.items():
        if q.mid is not None:
            state.apply(mid(coin, 5_000, str(q.mid)))
        if q.mark is not None and q.funding is not None:
            state.apply(ctx(coin, 5_000, mark=str(q.mark), funding=str(q.funding)))

    # When the index proposes candidates from the state's quotes
    candidates = set(ThresholdIndex.build(rules).candidates_for_tick(state.quotes(5_000)))

    # Then they are exactly the rules evaluate() fires
    fires = {r.id for r in rules if evaluate(r, state, 5_000).outcome is Outcome.FIRE}
    assert candidates == fires


@pytest.mark.parametrize("purpose", list(Purpose))
def test_given_duplicate_ids_when_built_then_the_last_rule_wins(purpose: Purpose) -> None:
    first = rule(
        1, AlertKind.PRICE_ABOVE, "100", mode=Mode.RECURRING, armed=purpose is Purpose.FIRE
    )
    second = replace(first, threshold=D("200"))

    index = ThresholdIndex.build([first, second], purpose)

    assert len(index) == 1
    probe = D("150") if purpose is Purpose.FIRE else D("190")
    assert list(index.crossed("BTC", ABOVE_MID, probe)) == ([] if purpose is Purpose.FIRE else [1])


@pytest.mark.parametrize(
    "gone",
    [
        set(range(40, 61)),  # adjacent levels: one slice
        {3, 17, 58, 90},  # a few scattered: one del each
        set(range(1, 100, 3)),  # many scattered: a rebuild
        {5},  # one
    ],
)
def test_given_a_book_when_ids_are_deleted_then_the_rest_stay_in_level_order(
    gone: set[int],
) -> None:
    # Given a book of 100 levels (id i at level i, some of them fine)
    book = index_module._Book("px", 2, low_side=False, strict=False)
    book.fill([(Decimal(i) + (Decimal("0.001") if i % 7 == 0 else 0), i) for i in range(100)])
    kept = [i for i in range(100) if i not in gone]
    # When some are deleted, Then the others remain, in order, fine ones with their level
    book.delete(set(gone))
    assert list(book.ids) == kept and len(book.levels) == len(kept)
    assert list(book.levels) == sorted(book.levels)
    assert set(book.fine) == {i for i in kept if i % 7 == 0}
    assert list(book.matching(Decimal(95))) == [i for i in kept if i >= 95]
