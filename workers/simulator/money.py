"""Exact decimal strings in Hyperliquid's wire style.

Hyperliquid prints numbers as plain decimal strings with at least one fractional digit
("117341.0", "4321.7", "0.00425"). Prices and sizes are kept as integer units of a known
decimal scale in the hot path (cheap, exact) and as ``Decimal`` elsewhere; both become
strings only here, so every number the simulator sends has one spelling.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

ZERO = Decimal(0)


def units_str(units: int, decimals: int) -> str:
    """``units`` * 10^-``decimals`` as a wire string: 43217, 1 → "4321.7"; 117341, 0 → "117341.0"."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals) if decimals else (abs(units), 0)
    if not decimals or not frac:
        return f"{sign}{whole}.0"
    digits = f"{frac:0{decimals}d}".rstrip("0")
    return f"{sign}{whole}.{digits}"


def dec_str(value: Decimal) -> str:
    """A Decimal as a wire string: no exponent, no trailing zeros, at least one fractional digit."""
    if value.is_zero():
        return "0.0"
    text = format(value.normalize(), "f")
    return text if "." in text else f"{text}.0"


def quantize(value: Decimal, places: int) -> Decimal:
    """Round half-even to ``places`` fractional digits (bankers' rounding, as ledgers do)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def to_units(value: Decimal, decimals: int) -> int:
    """A Decimal price or size as integer units of 10^-``decimals`` (rounded half-even)."""
    return int(quantize(value, decimals).scaleb(decimals))
