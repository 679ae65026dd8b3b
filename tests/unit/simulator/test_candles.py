"""Candles folded from the simulator's own trades: exact per bucket, bounded, any interval."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.simulator.candles import (
    CANDLES_KEPT,
    INTERVALS,
    MINUTE_MS,
    MinuteBars,
    aggregate,
    bucket,
)
from workers.simulator.groundtruth import GroundTruthWriter, ReplayBlocks
from workers.simulator.market import Market
from workers.simulator.universe import Universe

T0 = 1_787_050_800_000  # an hour boundary (11:00 UTC)


def expected(trades: Iterable[dict[str, Any]], interval: str) -> list[dict[str, Any]]:
    """Bars computed the slow way, as a client would from the trades (Decimal, by bucket)."""
    bars: dict[int, dict[str, Any]] = {}
    for trade in trades:
        start, end = bucket(interval, trade["time"])
        px, sz = Decimal(trade["px"]), Decimal(trade["sz"])
        bar = bars.get(start)
        if bar is None:
            bars[start] = {"t": start, "T": end, "o": px, "h": px, "l": px, "c": px,
                           "v": sz, "n": 1}  # fmt: skip
        else:
            bar["h"], bar["l"], bar["c"] = max(bar["h"], px), min(bar["l"], px), px
            bar["v"] += sz
            bar["n"] += 1
    return [bars[t] for t in sorted(bars)]


def as_numbers(candles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"t": c["t"], "T": c["T"], "n": c["n"], **{k: Decimal(c[k]) for k in "ohlcv"}}
        for c in candles
    ]


def generated(minutes: int, blocks_per_minute: int = 30) -> tuple[Market, list[dict[str, Any]]]:
    market = Market(Universe.build(["BTC", "ETH", "SOL"]), seed=7, trades_per_block=9)
    trades: list[dict[str, Any]] = []
    spacing = MINUTE_MS // blocks_per_minute
    for index in range(minutes * blocks_per_minute):
        trades.extend(market.make_block(T0 - 7 * MINUTE_MS + index * spacing).trades)
    return market, trades


@pytest.mark.parametrize("interval", ["1m", "3m", "5m", "15m", "1h", "1d"])
def test_generated_candles_equal_the_trades_folded_by_bucket(interval: str) -> None:
    # Given 20 minutes of generated trades, straddling an hour boundary
    market, trades = generated(minutes=20)
    for coin in ("BTC", "ETH", "SOL"):
        bars = market.candles(coin)
        assert bars is not None
        # When the whole range is asked for
        answer = bars.snapshot(interval, 0, T0 + 10**9)
        # Then every bar equals the slow fold of that bucket's trades, forming bar included
        assert as_numbers(answer) == expected((t for t in trades if t["coin"] == coin), interval)
        assert all(c["s"] == coin and c["i"] == interval for c in answer)


def test_candle_strings_have_the_wire_shape() -> None:
    market, trades = generated(minutes=2)
    bars = market.candles("BTC")
    assert bars is not None
    first = bars.snapshot("1m", 0, T0 + 10**9)[0]
    assert list(first) == ["t", "T", "s", "i", "o", "c", "h", "l", "v", "n"]
    assert first["T"] == first["t"] + MINUTE_MS - 1 and isinstance(first["n"], int)
    opening = next(t for t in trades if t["coin"] == "BTC")
    assert first["o"] == opening["px"]  # the trade's own spelling, e.g. "117000.0"
    assert all(isinstance(first[k], str) for k in "ochlv")


def test_range_selects_bars_overlapping_it() -> None:
    market, _ = generated(minutes=10)
    bars = market.candles("ETH")
    assert bars is not None
    everything = bars.snapshot("1m", 0, T0 + 10**9)
    middle = everything[4]
    # A range inside one minute returns that minute; the ends are inclusive
    assert bars.snapshot("1m", middle["t"] + 5, middle["t"] + 6) == [middle]
    assert bars.snapshot("1m", middle["T"], middle["T"] + 1) == everything[4:6]
    assert bars.snapshot("1m", everything[-1]["T"] + 1, T0 + 10**9) == []
    assert bars.snapshot("1m", 0, everything[0]["t"] - 1) == []


def test_unknown_coin_and_delisted_coin() -> None:
    market = Market(Universe.build(["BTC"], ["MATIC"]), seed=1, trades_per_block=5)
    market.make_block(T0)
    assert market.candles("DOGE") is None and market.candles("MATIC") is None


# --- the fold itself -------------------------------------------------------------------

runs = st.lists(
    st.tuples(
        st.integers(0, 3 * MINUTE_MS),  # time step to the next run
        st.integers(1, 10_000),  # first price
        st.integers(-50, 50),  # walk to the last price
        st.integers(1, 1_000),  # size
        st.integers(1, 4),  # trades
    ),
    min_size=1,
    max_size=200,
)


@given(runs)
def test_fold_matches_a_slow_fold_for_any_runs(steps: list[tuple[int, int, int, int, int]]) -> None:
    bars = MinuteBars("X", 0, 0)
    trades: list[dict[str, Any]] = []
    time_ms = T0
    for step, first, walk, size, count in steps:
        time_ms += step
        last = max(1, first + walk) if count > 1 else first
        bars.fold(time_ms, first, last, size, count)
        # The run as trades: a one-way walk from first to last, the size on the first trade
        pxs = [first] * (count - 1) + [last]
        for index, px in enumerate(pxs):
            trades.append({"time": time_ms, "px": str(px), "sz": str(size if index == 0 else 0)})
    for interval in ("1m", "5m", "1h"):
        got = as_numbers(bars.snapshot(interval, 0, time_ms))
        assert got == expected(trades, interval)


def test_time_going_back_folds_into_the_forming_bar() -> None:
    bars = MinuteBars("X", 0, 0)
    bars.fold(T0 + 61_000, 10, 10, 1, 1)
    bars.fold(T0 + 1_000, 12, 12, 1, 1)  # older than the forming bar: no bar is reopened
    assert bars.minutes() == [(T0 + MINUTE_MS, 10, 12, 10, 12, 2, 2)]


def test_history_is_bounded_and_larger_bars_are_never_served_short() -> None:
    # Given a history of 10 minutes and 100 minutes of trades, one per minute
    bars = MinuteBars("X", 0, 0, kept=10)
    for minute in range(100):
        bars.fold(T0 + minute * MINUTE_MS, 100 + minute, 100 + minute, 1, 1)
    # Then 10 bars are kept, the forming one included
    minutes = bars.minutes()
    assert len(minutes) == 10 and minutes[0][0] == T0 + 90 * MINUTE_MS
    assert bars.complete_from == T0 + 90 * MINUTE_MS
    # And a 5m bar is served only when all its minutes are still known
    five = bars.snapshot("5m", 0, T0 + 10**9)
    assert [c["t"] for c in five] == [T0 + 90 * MINUTE_MS, T0 + 95 * MINUTE_MS]
    assert all(c["n"] == 5 for c in five)
    # And the hour that began before the oldest kept minute is left out, not served short
    assert bars.snapshot("1h", 0, T0 + 10**9) == []


def test_default_history_holds_five_thousand_minutes() -> None:
    bars = MinuteBars("X", 0, 0)
    for minute in range(CANDLES_KEPT + 300):
        bars.fold(minute * MINUTE_MS, 1, 1, 1, 1)
    assert len(bars.minutes()) == CANDLES_KEPT
    assert len(bars.snapshot("1m", 0, 10**12)) == CANDLES_KEPT
    assert len(bars.closed) == CANDLES_KEPT - 1


def test_a_history_never_truncated_serves_the_bar_the_run_started_in() -> None:
    bars = MinuteBars("X", 0, 0)
    bars.fold(T0 + 30 * MINUTE_MS, 5, 7, 3, 2)
    day = bars.snapshot("1d", 0, T0 + 10**9)
    assert len(day) == 1 and day[0]["n"] == 2 and day[0]["t"] == T0 - 11 * 3_600_000


@pytest.mark.parametrize(
    ("when", "opens", "closes"),
    [
        (datetime(2026, 2, 14, 13, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC),
         datetime(2026, 3, 1, tzinfo=UTC)),
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC),
         datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_month_bars_follow_the_calendar(when: datetime, opens: datetime, closes: datetime) -> None:
    t = int(when.timestamp() * 1000)
    assert bucket("1M", t) == (int(opens.timestamp() * 1000), int(closes.timestamp() * 1000) - 1)


def test_every_interval_is_epoch_aligned_or_calendar() -> None:
    t = T0 + 123_456_789
    for interval, minutes in INTERVALS.items():
        start, end = bucket(interval, t)
        assert start <= t <= end
        if minutes:
            assert start % (minutes * MINUTE_MS) == 0 and end - start + 1 == minutes * MINUTE_MS
    assert aggregate([], "1h") == []


def test_replayed_trades_fold_into_the_same_candles(tmp_path: Path) -> None:
    # Given a capture of generated trades, replayed
    _, trades = generated(minutes=3, blocks_per_minute=10)
    path = tmp_path / "gt.jsonl"
    writer = GroundTruthWriter(path)
    writer.start(1, seed=7)
    writer.trade_frame(orjson.dumps(trades), len(trades))
    writer.close(2)
    replay = ReplayBlocks(path)
    replay.due(10**9, limit=10**6)
    # Then the replay's candles are the trades folded by bucket
    for coin in ("BTC", "ETH", "SOL"):
        bars = replay.candles(coin)
        assert bars is not None
        got = as_numbers(bars.snapshot("1m", 0, T0 + 10**9))
        assert got == expected((t for t in trades if t["coin"] == coin), "1m")
