"""Pure bar folding: OHLC by (time, tid) order, aggressor volumes, order independence."""

from __future__ import annotations

import random
from decimal import Decimal as D

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
