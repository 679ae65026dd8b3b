"""``l2Book``: a plausible order book around the simulated touch (reference §2.4, §7.8).

The simulator does not keep resting orders; its market has only a top of book. The book
answered here is drawn around that touch: best bid and ask are the market's own (so the
mid is the ``allMids`` mid), then up to :data:`LEVELS` levels per side one or two steps
apart, each with a size worth roughly $1k to $200k and an order count ``n``. The draw is
seeded by coin and second, so two requests within one second see the same book, and it
uses its own random stream: asking for books never changes the trades.

``nSigFigs`` (2 to 5) widens the step to that many significant figures of the price, times
``mantissa`` (1, 2 or 5, with ``nSigFigs`` 5 only); bids round down and asks up to it. A
coin with no book (delisted) answers ``{"levels": [[], []]}``.
"""

from __future__ import annotations

import random
import zlib
from decimal import Decimal
from typing import Any

from workers.simulator.money import to_units, units_str
from workers.simulator.universe import CoinSpec

LEVELS = 20
SIG_FIGS = (2, 3, 4, 5)
MANTISSAS = (1, 2, 5)


def step_ticks(bid_ticks: int, n_sig_figs: int | None, mantissa: int | None) -> int:
    """Level spacing in price ticks: one tick at full precision, else the sig-fig bucket."""
    if n_sig_figs is None:
        return 1
    digits = len(str(max(1, bid_ticks)))
    step = 10 ** (digits - n_sig_figs) if digits > n_sig_figs else 1
    return step * (mantissa or 1)


def l2_book(
    spec: CoinSpec,
    touch: tuple[Decimal, Decimal] | None,
    time_ms: int,
    n_sig_figs: int | None = None,
    mantissa: int | None = None,
) -> dict[str, Any]:
    """The ``l2Book`` answer for ``spec`` at ``time_ms`` around ``touch`` (bid, ask)."""
    if touch is None or spec.delisted:
        return {"coin": spec.name, "time": time_ms, "levels": [[], []]}
    px_dec, sz_dec = spec.px_decimals, spec.sz_decimals
    bid, ask = to_units(touch[0], px_dec), to_units(touch[1], px_dec)
    step = step_ticks(bid, n_sig_figs, mantissa)
    rng = random.Random(zlib.crc32(f"{spec.name}:{time_ms // 1000}".encode()))
    # About $1k of the coin, in size units; a level holds 1 to 200 of those.
    lot = max(1, to_units(Decimal(1000) / spec.base_px, sz_dec))
    widen = min(step, 50)

    def side(first: int, direction: int) -> list[dict[str, Any]]:
        levels: list[dict[str, Any]] = []
        px = first
        while len(levels) < LEVELS and px > 0:
            units = lot * rng.randint(1, 200) * widen
            levels.append(
                {
                    "px": units_str(px, px_dec),
                    "sz": units_str(units, sz_dec),
                    "n": rng.randint(1, 30),
                }
            )
            px += direction * step * (1 if rng.random() < 0.8 else 2)
        return levels

    bids = side(bid - bid % step, -1)
    asks = side(ask + (-ask) % step, 1)
    return {"coin": spec.name, "time": time_ms, "levels": [bids, asks]}
