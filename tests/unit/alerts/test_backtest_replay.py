"""The replay, pure: holds from stored gaps, expiry, order, kinds it cannot replay, and the
claim semantics of once, recurring and event rules."""

from __future__ import annotations

from decimal import Decimal

from domain.alerts.backtest import Gap, Replay, messages
from domain.alerts.definition import AlertKind, AlertRule, Mode, PriceSource
from domain.alerts.hold import HoldPolicy
from domain.alerts.view import Stream
from domain.notify.budgets import BUDGETS
from domain.notify.grouping import Windows
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


def test_what_a_channel_would_have_received_follows_its_windows_and_budget() -> None:
    # Given a recurring whale alert firing on six trades: three within a second, three
    # spread over the following minute
    whale = _rule(1, AlertKind.WHALE_TRADE, "1000", mode=Mode.RECURRING)
    replay = _replay(whale)
    offsets = [0, 200, 400, 20_000, 40_000, 60_000]
    replay.feed_all([_trade(T + o, "1") for o in offsets])
    fired = replay.report.fired
    assert len(fired) == 6

    # When offered to a webhook without windows, to Slack (1 a second), and to a channel
    # with a 30 s group interval
    alone = messages(fired, Windows(), "webhook")
    slack = messages(fired, Windows(budget=BUDGETS["slack"]), "slack")
    grouped = messages(fired, Windows(group_interval_ms=30_000), "webhook")

    # Then: six messages; Slack one, a digest of two a second later, then three alone;
    # grouped: the first alone, a digest at 30 s of the rest of the burst and the 20 s one,
    # the 40 s one at 60 s (due before the 60 s firing arrives, which then waits for 90 s);
    # and every firing is in exactly one message
    assert [len(m.firings) for m in alone] == [1] * 6
    assert [(m.at - T, len(m.firings)) for m in slack] == [
        (0, 1), (1_000, 2), (20_000, 1), (40_000, 1), (60_000, 1),
    ]  # fmt: skip
    assert [(m.at - T, len(m.firings)) for m in grouped] == [
        (0, 1), (30_000, 3), (60_000, 1), (90_000, 1),
    ]  # fmt: skip
    assert grouped[1].digest and grouped[1].text.startswith("3 notifications since ")
    for sent in (alone, slack, grouped):
        assert sorted(f.event_time for m in sent for f in m.firings) == [T + o for o in offsets]
    assert grouped[1].to_dict()["alert_ids"] == [1, 1, 1]
