"""Pure bar folding: OHLC by (time, tid) order, aggressor volumes, order independence."""

from __future__ import annotations

import random
from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from models.repositories.bars import MINUTE_MS, fold

T0 = 1_787_052_600_000  # a minute boundary


def test_given_trades_in_one_minute_when_folded_then_ohlcv_and_delta() -> None:
    trades = [
        ("ETH", T0 + 10, 2, D("101"), D("1"), "B"),
        ("ETH", T0 + 10, 1, D("100"), D("2"), "A"),
        ("ETH", T0 + 59_999, 5, D("99.5"), D("0.5"), "B"),
        ("ETH", T0 + 30_000, 3, D("103"), D("1.5"), "A"),
    ]
    (bar,) = fold(trades)
    assert (bar.open, bar.high, bar.low, bar.close) == (D("100"), D("103"), D("99.5"), D("99.5"))
    assert bar.volume == D("5")
    assert (bar.buy_volume, bar.sell_volume, bar.volume_delta) == (D("1.5"), D("3.5"), D("-2"))
    assert bar.trade_count == 4


def test_given_any_order_and_split_when_merged_then_same_bars() -> None:
    rng = random.Random(7)
    trades = [
        (
            "BTC",
            T0 + rng.randrange(3 * MINUTE_MS),
            tid,
            D(rng.randrange(100, 200)),
            D(rng.randrange(1, 9)),
            rng.choice("AB"),
        )
        for tid in range(300)
    ]
    whole = {(b.coin, b.minute): b.as_row() for b in fold(trades)}
    rng.shuffle(trades)
    first, second = fold(trades[:137]), fold(trades[137:])
    merged = {(b.coin, b.minute): b for b in first}
    for b in second:
        if (b.coin, b.minute) in merged:
            merged[(b.coin, b.minute)].merge(b)
        else:
            merged[(b.coin, b.minute)] = b
    assert {k: v.as_row() for k, v in merged.items()} == whole
    assert len(whole) == 3


def _reference_fold(trades: list[tuple[str, int, int, D, D, str]]) -> dict[tuple[str, int], dict]:
    """One delta per trade merged in input order: the definition fold() must agree with."""
    from models.repositories.bars import BarDelta

    bars: dict[tuple[str, int], BarDelta] = {}
    for coin, time, tid, px, sz, side in trades:
        minute = time - time % MINUTE_MS
        key = (time, tid)
        buy, sell = (sz, D(0)) if side == "B" else (D(0), sz)
        delta = BarDelta(coin, minute, px, px, px, px, key, key, sz, buy, sell, 1)
        if (coin, minute) in bars:
            bars[(coin, minute)].merge(delta)
        else:
            bars[(coin, minute)] = delta
    return {k: v.as_row() for k, v in bars.items()}


def test_given_random_trades_of_many_coins_when_folded_then_equal_to_per_trade_merging() -> None:
    rng = random.Random(11)
    for _ in range(50):
        trades = [
            (
                rng.choice(["BTC", "ETH", "kPEPE", "@107"]),
                T0 + rng.randrange(-3 * MINUTE_MS, 4 * MINUTE_MS) * rng.choice([1, -1_000_000]),
                tid,
                D(rng.randrange(1, 10_000)).scaleb(-rng.randrange(0, 6)),
                D(rng.randrange(1, 1_000)).scaleb(-rng.randrange(0, 9)),
                rng.choice("AB"),
            )
            for tid in rng.sample(range(1 << 50), rng.randrange(1, 400))
        ]
        assert {(b.coin, b.minute): b.as_row() for b in fold(trades)} == _reference_fold(trades)


def _walk(trades: list[tuple]) -> list[tuple]:
    """The reference fold: sort by key, walk each (coin, minute) run."""
    bars: dict[tuple[str, int], list] = {}
    for coin, time, tid, px, sz, side in sorted(trades):
        key = (coin, time - time % MINUTE_MS)
        if key not in bars:
            bars[key] = [px, px, px, px, (time, tid), (time, tid), D(0), D(0), D(0), 0]
        bar = bars[key]
        bar[1], bar[2], bar[3], bar[5] = max(bar[1], px), min(bar[2], px), px, (time, tid)
        bar[6] += sz
        bar[7 if side == "B" else 8] += sz
        bar[9] += 1
    return sorted((*key, *bar) for key, bar in bars.items())


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["BTC", "ETH", "kPEPE"]),
            st.integers(T0 - MINUTE_MS, T0 + 3 * MINUTE_MS),
            st.integers(1, 40),
            st.decimals(D("0.0001"), D("99999"), places=4),
            st.decimals(D("0.00001"), D("50"), places=5),
            st.sampled_from("AB"),
            st.just("0x" + "ab" * 32),  # what a Trade carries after the six: ignored
        ),
        max_size=60,
        unique_by=lambda t: (t[0], t[1], t[2]),
    )
)
def test_given_any_trades_in_any_order_when_folded_then_the_sorted_walks_bars(
    trades: list[tuple],
) -> None:
    folded = sorted(
        (
            b.coin, b.minute, b.open, b.high, b.low, b.close, b.open_key, b.close_key,
            b.volume, b.buy_volume, b.sell_volume, b.trade_count,
        )
        for b in fold(trades)
    )  # fmt: skip
    assert folded == _walk([t[:6] for t in trades])
