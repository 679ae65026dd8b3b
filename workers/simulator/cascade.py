"""Cascade mode: the shape of a liquidation cascade, laid over the generated market.

On 10 October 2025 Hyperliquid saw 63,637 liquidations in twelve minutes, 22,558 fill
events in the peak second, and prices falling by a tenth and more. :class:`Cascade` is that
shape in five numbers, as functions of block time since the feed started (pure, no clock):

- **rate**: the base ``--rate`` until ``at_s``; a linear ramp over ``ramp_s`` to
  ``peak_rate`` trades per second; held for ``hold_s``; back to the base over ``ramp_s``.
- **level**: every coin's reference price moves with it, by ``move_pct`` (negative: down)
  from the start of the ramp to the end of the hold, and stays there: the walk follows
  the moved reference (``Market.set_level``), as a book does when liquidations eat
  through it.

:class:`CascadeBlocks` is the block source of ``hyperwatch simulate --cascade-at S``: one
block every ``block_ms`` like :class:`~workers.simulator.schedule.GeneratedBlocks`, each
sized to the rate at its time and made after the level is set. Same seed and options →
the same blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.simulator.market import Block, Market
from workers.simulator.schedule import GeneratedBlocks


@dataclass(frozen=True, slots=True)
class Cascade:
    at_s: float = 10.0
    ramp_s: float = 20.0
    hold_s: float = 60.0
    peak_rate: float = 25_000.0
    move_pct: float = -10.0

    def validate(self) -> None:
        """Raise ValueError("cascade-…: what it expects") on the first bad value."""
        checks = [
            (self.at_s >= 0, "cascade-at: seconds ≥ 0"),
            (self.ramp_s > 0, "cascade-ramp: seconds > 0"),
            (self.hold_s >= 0, "cascade-hold: seconds ≥ 0"),
            (self.peak_rate > 0, "cascade-peak: trades per second > 0"),
            (-90.0 <= self.move_pct <= 900.0, "cascade-move: percent between -90 and 900"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def rate_at(self, t_s: float, base_rate: float) -> float:
        """Trades per second at ``t_s`` seconds of block time."""
        into = t_s - self.at_s
        peak = max(self.peak_rate, base_rate)
        if into < 0:
            return base_rate
        if into < self.ramp_s:
            return base_rate + (peak - base_rate) * into / self.ramp_s
        into -= self.ramp_s
        if into < self.hold_s:
            return peak
        into -= self.hold_s
        if into < self.ramp_s:
            return peak - (peak - base_rate) * into / self.ramp_s
        return base_rate

    def level_at(self, t_s: float) -> float:
        """Every coin's reference price at ``t_s``, as a factor of its base price."""
        span = self.ramp_s + self.hold_s
        done = min(1.0, max(0.0, (t_s - self.at_s) / span))
        return 1.0 + self.move_pct / 100.0 * done


class CascadeBlocks(GeneratedBlocks):
    """Generated blocks whose size and price level follow a :class:`Cascade`."""

    def __init__(
        self, market: Market, block_ms: float, origin_ms: int, cascade: Cascade, base_rate: float
    ) -> None:
        super().__init__(market, block_ms, origin_ms)
        self.cascade = cascade
        self.base_rate = base_rate

    def _make(self, index: int, time_ms: int) -> Block:
        t_s = index * self.block_ms / 1000.0
        rate = self.cascade.rate_at(t_s, self.base_rate)
        self.market.trades_per_block = max(1, round(rate * self.block_ms / 1000.0))
        self.market.set_level(self.cascade.level_at(t_s))
        return self.market.make_block(time_ms)
