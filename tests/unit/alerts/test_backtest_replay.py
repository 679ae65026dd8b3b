"""The replay, pure: holds from stored gaps, expiry, order, kinds it cannot replay, and the
claim semantics of once, recurring and event rules."""

from __future__ import annotations

from decimal import Decimal

from domain.alerts.backtest import Gap, Replay
from domain.alerts.definition import AlertKind, AlertRule, Mode, PriceSource
from domain.alerts.hold import HoldPolicy
from domain.alerts.view import Stream
from events import Trade
from tests.unit.alerts.builders import ctx, mid

T = 1_760_130_000_000
POLICY = HoldPolicy(mids_ms=10_000, contexts_ms=30_000, positions_ms=75_000)


def _rule(rule_id: int, kind: AlertKind, threshold: str, **fields: object) -> AlertRule:
    base: dict[str, object] = {"coin": "BTC", "threshold": Decimal(threshold), **fields}
    return AlertRule(id=rule_id, user_id=1, kind=kind, **base)  # type: ignore[arg-type]


def _replay(*rules: AlertRule, gaps: tuple[Gap, ...] = ()) -> Replay:
    return Replay(rules, max_age_ms=30_000, position_max_age_ms=120_000, policy=POLICY, gaps=gaps)


def _trade(t: int, notional_btc: str) -> Trade:
    return Trade("BTC", t, t, Decimal("100000"), Decimal(notional_btc), "B", "0x" + "1" * 64)


def test_a_stored_gap_holds_state_and_event_rules_while_it_was_open() -> None:
    # Given a price alert and a whale alert, and a BTC gap open from T+10 s to T+20 s
    price = _rule(1, AlertKind.PRICE_ABOVE, "100", mode=Mode.RECURRING)
    whale = _rule(2, AlertKind.WHALE_TRADE, "1000", mode=Mode.RECURRING)
    replay = _replay(price, whale, gaps=(Gap("BTC", T + 10_000, T + 20_000),))

    # When the price is above and a whale trades inside the gap, then again after it
    replay.feed_all([mid("BTC", T + 12_000, "101"), _trade(T + 13_000, "1")])
    held = replay.report.held
    replay.feed_all([mid("BTC", T + 21_000, "101"), _trade(T + 22_000, "1")])

    # Then nothing fired inside the gap; both fired on the first data after it
    assert held == 2
    assert [(f.alert_id, f.event_time) for f in replay.report.fired] == [
        (1, T + 21_000),
        (2, T + 22_000),
    ]


def test_claims_expiry_order_and_kinds_that_cannot_be_replayed() -> None:
    once = _rule(1, AlertKind.PRICE_ABOVE, "100")
    recurring = _rule(2, AlertKind.PRICE_ABOVE, "100", mode=Mode.RECURRING)
    expired = _rule(3, AlertKind.PRICE_ABOVE, "100", expires_at=T)
    mark = _rule(4, AlertKind.PRICE_ABOVE, "100", price_source=PriceSource.MARK)
    stale = _rule(5, AlertKind.STALE_DATA, "60", stream=Stream.MIDS)
    replay = _replay(once, recurring, expired, mark, stale)

    # When the mid crosses, stays, falls past the re-arm margin, crosses again; an older
    # mid arrives late; the mark (a context) crosses once
    replay.feed_all(
        [
            mid("BTC", T + 1_000, "101"),
            mid("BTC", T + 2_000, "102"),
            mid("BTC", T + 1_500, "150"),  # older than what the view holds: skipped
            mid("BTC", T + 3_000, "99"),
            mid("BTC", T + 4_000, "101"),
            ctx("BTC", T + 5_000, mark="100"),
        ]
    )

    # Then the once rule fired once, the recurring one twice (re-armed in between), the
    # expired one never, the mark rule on the context; stale_data is not replayed
    fired = [(f.alert_id, f.event_time) for f in replay.report.fired]
    assert fired == [(1, T + 1_000), (2, T + 1_000), (2, T + 4_000), (4, T + 5_000)]
    assert replay.report.rearmed == 1 and replay.report.not_replayed == [5]
    assert replay.report.events == 6
    assert replay.report.fired[0].to_dict()["message"] == replay.report.fired[0].message
