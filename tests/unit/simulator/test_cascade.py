"""Cascade mode, pure: the rate ramps to the peak, holds and comes back; prices move by the
asked percentage and stay; the blocks follow both; bad options are refused by name."""

from __future__ import annotations

from decimal import Decimal

import pytest

from workers.simulator.cascade import Cascade, CascadeBlocks
from workers.simulator.config import SimulatorConfig
from workers.simulator.market import Market
from workers.simulator.universe import Universe

SHAPE = Cascade(at_s=10, ramp_s=20, hold_s=60, peak_rate=25_000, move_pct=-10)


def test_the_rate_ramps_holds_and_returns_and_the_level_moves_once() -> None:
    rates = [SHAPE.rate_at(t, 100) for t in (0, 10, 20, 30, 60, 89.9, 100, 110, 200)]
    assert rates[:2] == [100, 100]
    assert rates[2] == pytest.approx(12_550)  # half way up the ramp
    assert rates[3:6] == [25_000, 25_000, 25_000]
    assert rates[6] == pytest.approx(12_550) and rates[7:] == [100, 100]
    levels = [SHAPE.level_at(t) for t in (0, 10, 50, 90, 500)]
    assert levels == [1.0, 1.0, pytest.approx(0.95), pytest.approx(0.9), pytest.approx(0.9)]


def test_blocks_follow_the_shape_and_prices_fall_by_a_tenth() -> None:
    # Given a market of three coins in cascade mode, blocks every 100 ms, a short cascade
    universe = Universe.build(["BTC", "ETH", "SOL"], [])
    market = Market(universe, seed=3, trades_per_block=10)
    shape = Cascade(at_s=1, ramp_s=2, hold_s=3, peak_rate=5_000, move_pct=-10)
    blocks = CascadeBlocks(market, 100.0, origin_ms=0, cascade=shape, base_rate=100)
    start = {coin: market.mid(coin) for coin in ("BTC", "ETH", "SOL")}

    # When ten seconds of blocks are made
    made = blocks.due(10_000, 10_000)

    # Then a block holds rate x 100 ms trades: 10 before, 500 at the peak, 10 after
    sizes = {b.time: len(b.trades) for b in made}
    assert sizes[0] == 10 and sizes[3_500] == 500 and sizes[9_900] == 10
    assert sum(sizes.values()) == pytest.approx(100 * 10 + (5_000 - 100) * (3 + 2), rel=0.02)
    # and every coin's mid fell by about a tenth, and stays there
    for coin, before in start.items():
        after = market.mid(coin)
        assert before is not None and after is not None
        assert after / before == pytest.approx(Decimal("0.9"), abs=Decimal("0.02"))


def test_bad_cascade_options_are_refused_by_name() -> None:
    for bad, name in [
        (Cascade(ramp_s=0), "cascade-ramp"),
        (Cascade(peak_rate=0), "cascade-peak"),
        (Cascade(move_pct=-95), "cascade-move"),
        (Cascade(at_s=-1), "cascade-at"),
        (Cascade(hold_s=-1), "cascade-hold"),
    ]:
        with pytest.raises(ValueError, match=name):
            SimulatorConfig(cascade=bad).validate()
