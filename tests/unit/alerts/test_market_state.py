"""MarketState: monotonic updates, staleness as unknown, bounded windows, positions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.alerts.market_state import MarketState, Quote
from domain.alerts.view import Series, Stream
from tests.unit.alerts.builders import WALLET, ctx, mid, position


def state(**kwargs: int) -> MarketState:
    kwargs.setdefault("max_age_ms", 5_000)
    return MarketState(**kwargs)


def test_given_a_newer_mid_when_an_older_one_arrives_then_it_is_skipped() -> None:
    s = state()
    assert s.apply(mid("BTC", 2_000, "101"))

    applied = s.apply(mid("BTC", 1_000, "99"))

    assert applied is False
    assert s.mid("BTC", 2_000) == Decimal("101")


def test_given_a_mid_when_one_with_the_same_time_arrives_then_it_is_applied() -> None:
    s = state()
    s.apply(mid("BTC", 2_000, "101"))

    assert s.apply(mid("BTC", 2_000, "102"))
    assert s.mid("BTC", 2_000) == Decimal("102")


def test_given_streams_when_one_is_older_then_the_guard_is_per_coin_and_stream() -> None:
    s = state()
    s.apply(mid("BTC", 5_000, "101"))

    # An older context for BTC, and an older mid for ETH, are news for their own streams.
    assert s.apply(ctx("BTC", 1_000))
    assert s.apply(mid("ETH", 1_000, "5"))
    assert s.apply_all([mid("BTC", 4_000, "1"), mid("BTC", 6_000, "2")]) == 1


def test_given_a_mid_when_it_is_older_than_max_age_then_it_reads_as_unknown() -> None:
    s = state(max_age_ms=5_000)
    s.apply(mid("BTC", 1_000, "100"))

    assert s.mid("BTC", 6_000) == Decimal("100")
    assert s.mid("BTC", 6_001) is None
    assert s.mid("ETH", 6_000) is None


def test_given_a_context_when_read_then_mark_funding_and_oi_share_its_freshness() -> None:
    s = state(max_age_ms=1_000)
    s.apply(ctx("ETH", 10_000, mark="4321.5", funding="-0.00001", oi="31877.4"))

    assert s.mark("ETH", 10_500) == Decimal("4321.5")
    assert s.funding("ETH", 10_500) == Decimal("-0.00001")
    assert s.open_interest("ETH", 10_500) == Decimal("31877.4")
    assert (s.mark("ETH", 11_001), s.funding("ETH", 11_001), s.open_interest("ETH", 11_001)) == (
        None,
        None,
        None,
    )


def test_given_positions_when_read_then_wallet_case_is_ignored_and_staleness_has_its_own_age() -> (
    None
):
    s = state(max_age_ms=1_000, position_max_age_ms=60_000)
    s.apply(position("SOL", 1_000, user=WALLET.upper().replace("0X", "0x")))

    assert s.position(WALLET, "SOL", 50_000) is not None
    assert s.position(WALLET, "SOL", 61_001) is None
    assert s.position(WALLET, "ETH", 1_000) is None
    assert not s.apply(position("SOL", 999))


def test_given_no_event_when_silence_is_asked_then_it_counts_from_the_start_of_watching() -> None:
    s = state(started_ms=10_000)

    assert s.last_seen("BTC", Stream.MIDS) is None
    assert s.silence_ms("BTC", Stream.MIDS, 25_000) == 15_000
    s.apply(ctx("BTC", 20_000))
    assert s.silence_ms("BTC", Stream.ASSET_CONTEXTS, 25_000) == 5_000
    assert s.silence_ms("BTC", Stream.ASSET_CONTEXTS, 19_000) == 0


def test_given_a_history_when_a_window_is_asked_then_low_high_cover_only_that_window() -> None:
    s = state(max_age_ms=10_000, history_ms=600_000, bucket_ms=1_000)
    for t, px in [(0, "100"), (60_000, "90"), (120_000, "120"), (180_000, "110")]:
        s.apply(mid("BTC", t, px))

    wide = s.window("BTC", Series.MID, 180_000, 180_000)
    narrow = s.window("BTC", Series.MID, 100_000, 180_000)

    assert wide is not None and narrow is not None
    assert (wide.latest, wide.low, wide.high, wide.covered) == (
        Decimal("110"),
        Decimal("90"),
        Decimal("120"),
        True,
    )
    assert (narrow.low, narrow.high, narrow.covered) == (Decimal("110"), Decimal("120"), True)


def test_given_a_short_history_when_a_longer_window_is_asked_then_it_is_not_covered() -> None:
    s = state(max_age_ms=10_000)
    s.apply(mid("BTC", 100_000, "100"))
    s.apply(mid("BTC", 110_000, "101"))

    window = s.window("BTC", Series.MID, 60_000, 110_000)

    assert window is not None
    assert window.covered is False
    assert window.low == Decimal("100")


def test_given_values_in_one_bucket_when_recorded_then_the_bucket_keeps_low_and_high() -> None:
    s = state(max_age_ms=10_000, bucket_ms=1_000)
    for t, px in [(5_000, "100"), (5_100, "80"), (5_200, "130"), (5_300, "100")]:
        s.apply(mid("BTC", t, px))

    window = s.window("BTC", Series.MID, 1_000, 5_300)

    assert window is not None
    assert (window.low, window.high) == (Decimal("80"), Decimal("130"))


def test_given_a_bounded_history_when_time_passes_then_old_buckets_are_evicted() -> None:
    s = state(max_age_ms=10_000, history_ms=60_000, bucket_ms=1_000)
    s.apply(ctx("BTC", 0, oi="1"))
    for t in range(1_000, 200_001, 1_000):
        s.apply(ctx("BTC", t, oi="1000"))

    # The spike at t=0 is long gone; a window as long as the history is still covered.
    window = s.window("BTC", Series.OPEN_INTEREST, 60_000, 200_000)
    assert window is not None
    assert (window.low, window.covered) == (Decimal("1000"), True)
    assert len(s._history[("BTC", Series.OPEN_INTEREST)]._buckets) <= 62


def test_given_history_disabled_when_a_window_is_asked_then_only_latest_is_known() -> None:
    s = state(history_ms=0)
    s.apply(mid("BTC", 0, "100"))

    window = s.window("BTC", Series.MID, 60_000, 1_000)

    assert window is not None
    assert (window.low, window.high, window.covered) == (Decimal("100"), Decimal("100"), False)
    assert s.window("BTC", Series.MID, 60_000, 10_000) is None  # stale latest: unknown


def test_given_several_coins_when_quotes_are_asked_then_only_fresh_values_appear() -> None:
    s = state(max_age_ms=1_000)
    s.apply(mid("BTC", 10_000, "100"))
    s.apply(ctx("BTC", 9_500, mark="99"))
    s.apply(mid("ETH", 1_000, "5"))

    quotes = s.quotes(10_600)

    assert quotes == {"BTC": Quote(mid=Decimal("100"), mark=None, funding=None)}
    assert s.coins() == {"BTC", "ETH"}


@pytest.mark.parametrize(
    "kwargs",
    [{"max_age_ms": 0}, {"max_age_ms": 1, "bucket_ms": 0}, {"max_age_ms": 1, "history_ms": -1}],
)
def test_given_nonsense_sizes_when_constructed_then_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        MarketState(**kwargs)
