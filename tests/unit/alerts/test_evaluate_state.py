"""Pure parts of evaluation's shared state and book: grouping a batch, the mirrored history's
window (identical to MarketState's), the book's planning and placement."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.alerts.book import AlertBook, _parse_changes
from domain.alerts.definition import AlertKind, parse_rule
from domain.alerts.market_state import MarketState
from domain.alerts.shared_state import (
    COARSE,
    FINE,
    HistoryMirror,
    SharedView,
    _Buckets,
    group_latest,
    tier_for,
    tiers_for,
)
from domain.alerts.view import MarketView, Series, Stream
from tests.unit.alerts.builders import WALLET, ctx, mid, position

T0 = 1_787_000_000_000


def rule(alert_id: int, **fields: object):
    return parse_rule({"id": alert_id, "user_id": 1, "coin": "BTC", **fields})


def test_group_latest_keeps_the_newest_per_coin_and_points_only_for_history_coins() -> None:
    # Given a batch with two BTC mids (later one last, then an equal time), one ETH mid
    events = [mid("BTC", T0 + 5, "2"), mid("BTC", T0 + 1, "1"), mid("ETH", T0, "9"),
              mid("BTC", T0 + 5, "3")]  # fmt: skip

    # When grouped with history wanted for BTC only
    items = group_latest(events, {"BTC": 60_000})

    # Then BTC's newest is the last of the equal times, its points are in time order; ETH
    # has no points
    assert items["BTC"].latest == mid("BTC", T0 + 5, "3")
    assert items["BTC"].points == [(T0 + 1, Decimal(1)), (T0 + 5, Decimal(2)), (T0 + 5, Decimal(3))]
    assert items["ETH"].points == []


def test_positions_group_per_wallet_and_coin() -> None:
    items = group_latest(
        [position("BTC", T0, liq="1"), position("BTC", T0 + 1, liq="2"),
         position("BTC", T0, liq="3", user="0x" + "cd" * 20)],
        {},
    )  # fmt: skip
    assert set(items) == {f"{WALLET}|BTC", f"0x{'cd' * 20}|BTC"}
    assert items[f"{WALLET}|BTC"].latest == position("BTC", T0 + 1, liq="2")


def bucketize(points: list[tuple[int, Decimal]], bucket_ms: int) -> list[bytes]:
    """What the Lua script stores: one member per bucket, ``start|low|high``."""
    buckets: dict[int, tuple[Decimal, Decimal]] = {}
    for t, x in points:
        start = t - t % bucket_ms
        low, high = buckets.get(start, (x, x))
        buckets[start] = (min(low, x), max(high, x))
    return [f"{s}|{lo}|{hi}".encode() for s, (lo, hi) in sorted(buckets.items())]


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 4_000), st.decimals("0.01", "1000", places=2)),
        min_size=1,
        max_size=60,
    ),
    window_s=st.integers(1, 120),
)
def test_mirrored_window_equals_market_state_window(
    steps: list[tuple[int, Decimal]], window_s: int
) -> None:
    # Given a series of mids at increasing times, in a MarketState and in shared buckets
    points: list[tuple[int, Decimal]] = []
    t = T0
    for gap, px in steps:
        t += gap
        points.append((t, px))
    state = MarketState(max_age_ms=10**9, history_ms=3_600_000, bucket_ms=FINE.bucket_ms)
    for time_ms, px in points:
        state.apply(mid("BTC", time_ms, str(px)))
    buckets = _Buckets()
    buckets.replace_from(0, bucketize(points, FINE.bucket_ms))

    # When the window ending now is asked of both
    now = t + 500
    expected = state.window("BTC", Series.MID, window_s * 1000, now)

    # Then they agree exactly
    assert expected is not None
    assert buckets.range(points[-1][1], now - window_s * 1000) == expected


def test_mirror_sync_replaces_only_from_the_last_bucket_on() -> None:
    # Given mirrored buckets, the last of which has since changed
    buckets = _Buckets()
    buckets.replace_from(0, [b"1000|1|2", b"2000|3|3"])

    # When synced from the last bucket on
    buckets.replace_from(2000, [b"2000|3|5", b"3000|4|4"])
    buckets.trim(1500)

    # Then the changed bucket is replaced, the new one appended, the old one trimmed
    assert buckets.starts == [2000, 3000]
    assert buckets.highs == [Decimal(5), Decimal(4)]


def test_a_window_never_mirrored_is_not_covered() -> None:
    view = SharedView(HistoryMirror(), max_age_ms=10_000, position_max_age_ms=10_000, started_ms=0)
    view.apply(mid("BTC", T0, "10"))
    window = view.window("BTC", Series.MID, 60_000, T0 + 1)
    assert window is not None and window.covered is False and window.low == window.high == 10


def test_tiers_fine_up_to_an_hour_then_coarse() -> None:
    assert tiers_for(3_600_000) == (FINE,) and tier_for(3_600_000) is FINE
    assert tiers_for(3_600_001) == (FINE, COARSE) and tier_for(86_400_000) is COARSE


def test_shared_seen_times_drive_silence_without_inventing_values() -> None:
    # Given a view that knows only when BTC mids were last seen by any worker
    view = SharedView(HistoryMirror(), max_age_ms=10_000, position_max_age_ms=10_000, started_ms=T0)
    view.set_seen(Stream.MIDS, {"BTC": T0 + 1_000})

    # Then silence counts from that time, and there is still no BTC price
    assert view.silence_ms("BTC", Stream.MIDS, T0 + 6_000) == 5_000
    assert view.silence_ms("ETH", Stream.MIDS, T0 + 6_000) == 6_000
    assert view.mid("BTC", T0 + 1_001) is None


def test_book_places_rules_by_state_and_plans_what_to_fetch() -> None:
    # Given a book with a threshold rule, a window rule, a liquidation rule
    book = AlertBook()
    armed = rule(1, kind="price_above", threshold="100")
    window = rule(2, kind="price_move_pct", threshold="5", window_s=300)
    liquidation = rule(3, kind="liquidation_distance_below", threshold="5", wallet=WALLET)
    for r in (armed, window, liquidation):
        book.put(r)

    # Then each is armed in FIRE, and the plan names the window and the wallet
    assert all(i in book.fire for i in (1, 2, 3))
    assert book.history_windows(Series.MID) == {"BTC": 300_000}
    assert book.wallets("BTC") == {WALLET}
    assert book.direct_candidates(["BTC"], frozenset({AlertKind.PRICE_MOVE_PCT})) == ([2], [])

    # When the threshold rule is seen disarmed (recurring) in the database
    disarmed = rule(1, kind="price_above", threshold="100", mode="recurring", armed=False)
    assert book.misplaced(disarmed)
    book.put(disarmed)

    # Then it moved from FIRE to REARM; dropping the window rule clears its plan
    assert 1 not in book.fire and 1 in book.rearm and not book.misplaced(disarmed)
    book.drop(2)
    assert book.history_windows(Series.MID) == {}


def test_change_log_members_name_every_changed_id() -> None:
    assert _parse_changes([b"7:1,2", b"8:9"]) == {1, 2, 9}


def test_contexts_feed_the_view_like_market_state() -> None:
    view = SharedView(HistoryMirror(), max_age_ms=1_000, position_max_age_ms=1_000, started_ms=0)
    view.apply(ctx("BTC", T0, mark="50", funding="0.0001"))
    assert view.mark("BTC", T0 + 1_000) == 50
    assert view.mark("BTC", T0 + 1_001) is None  # stale is unknown


def test_both_the_local_and_the_shared_view_are_what_rules_read() -> None:
    # The rules take a MarketView; mypy checks the list below, isinstance the methods.
    views: list[MarketView] = [
        MarketState(max_age_ms=1_000),
        SharedView(HistoryMirror(), max_age_ms=1_000, position_max_age_ms=1_000, started_ms=T0),
    ]
    assert all(isinstance(view, MarketView) for view in views)
