"""Perp asset contexts (``activeAssetCtx`` / ``metaAndAssetCtxs``) derived from the market.

A context is a full-state snapshot (reference §2.3): funding is an **hourly** rate, open
interest is in coins, and every number is a string. Mark and mid come from the trade
source's book; premium and open interest take a small random walk of their own (a separate
random stream, so contexts never perturb the trade sequence); day volumes are a seeded
baseline plus what the source has actually traded. Delisted coins answer with the shape
Hyperliquid gives them: zero volume and open interest, ``premium``/``midPx``/``impactPxs``
null.

Funding history (``fundingHistory``, reference §7.6): :meth:`AssetContexts.settle_funding`
closes a funding hour, recording each listed coin's rate and premium at that moment (the
same rate the ledger charges the simulated wallets) as one row; each coin keeps its
:data:`FUNDING_KEPT` most recent rows. :meth:`AssetContexts.funding_history` answers a time
range, inclusive, oldest first, at most :data:`MAX_FUNDING_ROWS` rows (page on with the last
row's time as the next start).
"""

from __future__ import annotations

import random
from collections import deque
from decimal import Decimal
from itertools import islice
from typing import Any

from workers.simulator.market import MarketView
from workers.simulator.money import dec_str, quantize
from workers.simulator.universe import CoinSpec

BASE_FUNDING = Decimal("0.0000125")  # Hyperliquid's interest component, per hour
FUNDING_CAP = Decimal("0.04")  # hourly cap
_PREMIUM_STEP = Decimal("0.00002")
_PREMIUM_LIMIT = Decimal("0.001")
_PREMIUM_PLACES = 10
FUNDING_KEPT = 2_000  # hourly rows per coin: about 83 days
MAX_FUNDING_ROWS = 500  # rows per fundingHistory answer, as on Hyperliquid


class _CoinCtx:
    __slots__ = ("day_base", "day_ntl", "oi", "premium")

    def __init__(self, oi: Decimal, day_base: Decimal, day_ntl: Decimal) -> None:
        self.premium = Decimal(0)
        self.oi = oi
        self.day_base = day_base
        self.day_ntl = day_ntl


class AssetContexts:
    """Context state per coin; :meth:`step` once per push interval, :meth:`ctx` to read."""

    def __init__(self, market: MarketView, seed: int, funding_kept: int = FUNDING_KEPT) -> None:
        self.market = market
        self._rng = random.Random(seed ^ 0x5EED_C7C7)
        self._funding_kept = funding_kept
        self._state: dict[str, _CoinCtx] = {}
        # (time, rate, premium) per settled hour, oldest first.
        self._funding: dict[str, deque[tuple[int, Decimal, Decimal]]] = {}
        for spec in market.universe.listed:
            self.add_coin(spec)

    def add_coin(self, spec: CoinSpec) -> None:
        """Context state for a listed coin (at start, or listed mid-run)."""
        # Roughly $200M of open interest and $1B a day, whatever the coin's price.
        oi = quantize(
            Decimal(200_000_000) / spec.base_px * Decimal(self._rng.randint(50, 150)) / 100,
            spec.sz_decimals,
        )
        day_ntl = Decimal(self._rng.randint(500_000_000, 1_500_000_000))
        self._state[spec.name] = _CoinCtx(
            oi, quantize(day_ntl / spec.base_px, spec.sz_decimals), day_ntl
        )
        self._funding[spec.name] = deque(maxlen=self._funding_kept)

    def step(self) -> None:
        """Advance premium and open interest by one random step for every listed coin."""
        rnd = self._rng.randint
        for name, state in self._state.items():
            spec = self.market.universe.get(name)
            assert spec is not None
            premium = state.premium + _PREMIUM_STEP * rnd(-2, 2)
            state.premium = max(-_PREMIUM_LIMIT, min(_PREMIUM_LIMIT, premium))
            oi = state.oi * (1 + Decimal(rnd(-10, 10)) / 10_000)
            state.oi = max(Decimal(0), quantize(oi, spec.sz_decimals))

    def funding(self, coin: str) -> Decimal:
        """Current hourly funding rate (interest plus premium share), capped."""
        state = self._state.get(coin)
        if state is None:
            return Decimal(0)
        rate = BASE_FUNDING + state.premium / 8
        return quantize(max(-FUNDING_CAP, min(FUNDING_CAP, rate)), _PREMIUM_PLACES)

    def settle_funding(self, time_ms: int) -> dict[str, Decimal]:
        """Close a funding hour at ``time_ms``: one history row per listed coin; the rates."""
        rates: dict[str, Decimal] = {}
        for name, state in self._state.items():
            rate = rates[name] = self.funding(name)
            self._funding[name].append((time_ms, rate, quantize(state.premium, _PREMIUM_PLACES)))
        return rates

    def funding_history(
        self, coin: str, start: int, end: int, limit: int = MAX_FUNDING_ROWS
    ) -> list[dict[str, Any]]:
        """``fundingHistory`` rows of ``coin`` with ``start <= time <= end``, oldest first."""
        rows = self._funding.get(coin, ())
        chosen = islice((row for row in rows if start <= row[0] <= end), limit)
        return [
            {"coin": coin, "fundingRate": dec_str(rate), "premium": dec_str(premium), "time": t}
            for t, rate, premium in chosen
        ]

    def oracle_px(self, coin: str) -> Decimal | None:
        spec = self.market.universe.get(coin)
        mid = self.market.mid(coin)
        state = self._state.get(coin)
        if spec is None or mid is None or state is None:
            return spec.base_px if spec else None
        return quantize(mid * (1 - state.premium), spec.px_decimals + 1)

    def ctx(self, coin: str) -> dict[str, Any] | None:
        """The ctx object for ``coin`` (None for a coin not in the universe)."""
        spec = self.market.universe.get(coin)
        if spec is None:
            return None
        state = self._state.get(coin)
        mid = self.market.mid(coin)
        touch = self.market.best_bid_ask(coin)
        if spec.delisted or state is None or mid is None or touch is None:
            return self._dead(spec)
        base_vlm, ntl_vlm = self.market.volumes(coin)
        oracle = self.oracle_px(coin)
        assert oracle is not None
        return {
            "funding": dec_str(self.funding(coin)),
            "openInterest": dec_str(state.oi),
            "prevDayPx": dec_str(spec.base_px),
            "dayNtlVlm": dec_str(state.day_ntl + quantize(ntl_vlm, 6)),
            "premium": dec_str(quantize(state.premium, _PREMIUM_PLACES)),
            "oraclePx": dec_str(oracle),
            "markPx": dec_str(quantize(mid, spec.px_decimals)),
            "midPx": dec_str(mid),
            "impactPxs": [dec_str(touch[0]), dec_str(touch[1])],
            "dayBaseVlm": dec_str(state.day_base + base_vlm),
        }

    @staticmethod
    def _dead(spec: CoinSpec) -> dict[str, Any]:
        return {
            "funding": "0.0",
            "openInterest": "0.0",
            "prevDayPx": dec_str(spec.base_px),
            "dayNtlVlm": "0.0",
            "premium": None,
            "oraclePx": dec_str(spec.base_px),
            "markPx": dec_str(spec.base_px),
            "midPx": None,
            "impactPxs": None,
            "dayBaseVlm": "0.0",
        }

    def marks(self) -> dict[str, Decimal]:
        """Mark price per listed coin that has a book (what the ledger values positions at)."""
        out: dict[str, Decimal] = {}
        for spec in self.market.universe.listed:
            mid = self.market.mid(spec.name)
            if mid is not None:
                out[spec.name] = quantize(mid, spec.px_decimals)
        return out

    def mids(self) -> dict[str, str]:
        """``{coin: mid}`` of every listed coin with a book, for ``allMids``."""
        out: dict[str, str] = {}
        for spec in self.market.universe.listed:
            mid = self.market.mid(spec.name)
            if mid is not None:
                out[spec.name] = dec_str(mid)
        return out
