"""The coins the simulated exchange lists, and the ``meta`` answer built from them.

A coin is named exactly as it will appear on the wire (names are case-sensitive, as on
Hyperliquid). Prices follow Hyperliquid's rule of at most five significant figures and at
most ``6 - szDecimals`` decimals, so a coin's price scale is fixed by its base price.
Delisted coins stay in ``meta`` with ``isDelisted: true`` (their index must not move) and
never trade. A coin listed mid-run (``--list-later``) is appended at the end; one delisted
mid-run (:meth:`Universe.delist`) keeps its index. There is one perp dex (the default one) and no spot pair: ``spotMeta`` lists
only the USDC token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

# name → (base price, szDecimals, maxLeverage). Unknown names get a derived spec.
KNOWN_COINS: dict[str, tuple[str, int, int]] = {
    "BTC": ("117000", 5, 40),
    "ETH": ("4320", 4, 25),
    "SOL": ("186", 2, 20),
    "XRP": ("2.9", 0, 20),
    "DOGE": ("0.22", 0, 10),
    "HYPE": ("44", 2, 10),
    "AVAX": ("24", 2, 10),
    "ARB": ("0.42", 1, 10),
    "kPEPE": ("0.011", 0, 10),
    "MATIC": ("0.38", 1, 20),
}
DEFAULT_COINS: tuple[str, ...] = ("BTC", "ETH", "SOL")
DEFAULT_DELISTED: tuple[str, ...] = ("MATIC",)

# Busier coins trade more often; the weight is a sweep's chance relative to others.
ACTIVITY_WEIGHT: dict[str, int] = {"BTC": 4, "ETH": 3, "SOL": 2}

_NAME = re.compile(r"^[A-Za-z0-9:/@#._-]{1,40}$")


class UniverseError(ValueError):
    """A coin list the simulator cannot serve; the message names the bad entry."""


@dataclass(frozen=True, slots=True)
class CoinSpec:
    """One perp: wire name, reference price, price and size scales, leverage cap."""

    name: str
    base_px: Decimal
    sz_decimals: int
    px_decimals: int
    max_leverage: int
    delisted: bool = False

    def meta_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "szDecimals": self.sz_decimals,
            "maxLeverage": self.max_leverage,
            "marginTableId": self.max_leverage,
        }
        if self.delisted:
            entry["isDelisted"] = True
        return entry


def px_decimals_for(base_px: Decimal, sz_decimals: int) -> int:
    """Decimals allowed by five significant figures and the ``6 - szDecimals`` cap."""
    magnitude = base_px.adjusted()  # floor(log10(px)) for px > 0
    return max(0, min(6 - sz_decimals, 4 - magnitude))


def coin_spec(token: str, delisted: bool = False) -> CoinSpec:
    """Parse ``NAME`` or ``NAME=PRICE`` into a spec (known table first, else derived)."""
    name, _, price_text = token.strip().partition("=")
    if not _NAME.match(name):
        raise UniverseError(f"coin name {name!r} is not a Hyperliquid coin name")
    known = KNOWN_COINS.get(name)
    try:
        base = Decimal(price_text) if price_text else Decimal(known[0] if known else "10")
    except InvalidOperation:
        raise UniverseError(f"coin {name}: price {price_text!r} is not a decimal") from None
    if not base.is_finite() or base <= 0:
        raise UniverseError(f"coin {name}: price must be positive, got {price_text!r}")
    if known:
        sz_decimals, max_leverage = known[1], known[2]
    else:
        sz_decimals = min(5, max(0, base.adjusted()))
        max_leverage = 10
    px_dec = px_decimals_for(base, sz_decimals)
    base = base.quantize(Decimal(1).scaleb(-px_dec))
    if base <= 0:
        raise UniverseError(f"coin {name}: price {price_text!r} rounds to zero")
    return CoinSpec(name, base, sz_decimals, px_dec, max_leverage, delisted)


class Universe:
    """The ordered perp universe: listed coins first, then delisted ones."""

    def __init__(self, specs: tuple[CoinSpec, ...]) -> None:
        names = [s.name for s in specs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise UniverseError(f"coin listed twice: {twice}")
        self.specs = specs
        self.listed = tuple(s for s in specs if not s.delisted)
        if not self.listed:
            raise UniverseError("at least one listed (not delisted) coin is needed")
        self._by_name = {s.name: s for s in specs}

    @classmethod
    def build(
        cls, coins: list[str] | tuple[str, ...], delisted: list[str] | tuple[str, ...] = ()
    ) -> Universe:
        listed = [coin_spec(token) for token in coins]
        listed_names = {s.name for s in listed}
        gone = [coin_spec(token, delisted=True) for token in delisted]
        return cls(tuple(listed + [s for s in gone if s.name not in listed_names]))

    def get(self, name: str) -> CoinSpec | None:
        """Exact, case-sensitive lookup, as the exchange does it."""
        return self._by_name.get(name)

    def add(self, spec: CoinSpec) -> None:
        """List a new coin mid-run: appended, as the exchange appends new assets, so no
        existing index moves."""
        if spec.name in self._by_name:
            raise UniverseError(f"coin listed twice: {[spec.name]}")
        self.specs = (*self.specs, spec)
        if not spec.delisted:
            self.listed = (*self.listed, spec)
        self._by_name[spec.name] = spec

    def delist(self, name: str) -> CoinSpec:
        """Mark a listed coin delisted mid-run: it keeps its index, with ``isDelisted``."""
        spec = self._by_name.get(name)
        if spec is None or spec.delisted:
            raise UniverseError(f"coin {name!r} is not listed")
        if len(self.listed) == 1:
            raise UniverseError("at least one listed (not delisted) coin is needed")
        gone = replace(spec, delisted=True)
        self.specs = tuple(gone if s.name == name else s for s in self.specs)
        self.listed = tuple(s for s in self.listed if s.name != name)
        self._by_name[name] = gone
        return gone

    def meta(self) -> dict[str, Any]:
        """The ``{"type":"meta"}`` answer: universe in index order plus margin tables."""
        tables = sorted({s.max_leverage for s in self.specs})
        return {
            "universe": [s.meta_entry() for s in self.specs],
            "marginTables": [
                [
                    lev,
                    {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": lev}]},
                ]
                for lev in tables
            ],
        }


# The spot side: the simulator lists no spot pairs, only the collateral token every perp
# settles in (Hyperliquid's token 0), in the shape clients parse at start-up.
USDC_TOKEN: dict[str, Any] = {
    "name": "USDC",
    "szDecimals": 8,
    "weiDecimals": 8,
    "index": 0,
    "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054",
    "isCanonical": True,
    "evmContract": None,
    "fullName": None,
}


def spot_meta() -> dict[str, Any]:
    """The ``spotMeta`` answer: the USDC token and no spot pairs."""
    return {"universe": [], "tokens": [dict(USDC_TOKEN)]}


def activity_weight(name: str) -> int:
    return ACTIVITY_WEIGHT.get(name, 1)
