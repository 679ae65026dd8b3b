"""How a fired alert is worded for humans: one sentence per verdict, funding annualised.

Numbers are exact (no float, no exponent); percentages to two places. The sentence names
the coin, what was measured, the value, the threshold and the kind; the channels format it
(``domain.notify.channels``), and the notification payload carries it as ``message``
(``domain.alerts.firing``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from domain.alerts.definition import (
    FUNDING_KINDS,
    PRICE_KINDS,
    WINDOW_KINDS,
    AlertKind,
    AlertRule,
    Comparison,
    comparison,
)
from domain.alerts.judgement import Verdict

HOURS_PER_YEAR: Final = Decimal(24 * 365)
_HUNDRED: Final = Decimal(100)


def annualised(rate: Decimal) -> Decimal:
    """An hourly funding rate as a yearly fraction (rate x 24 x 365), for humans only."""
    return rate * HOURS_PER_YEAR


def _num(value: Decimal) -> str:
    """Exact, without exponent or trailing zeros: 117342.50 -> 117342.5, 1E+2 -> 100."""
    return format(value.normalize(), "f")


def _pct(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):f} %"


def _per_year(rate: Decimal) -> str:
    return f"{(annualised(rate) * _HUNDRED).quantize(Decimal('0.01')):f} % a year"


def _span(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


_WORDING: Final[dict[Comparison, str]] = {"ge": "at or above", "le": "at or below", "lt": "below"}


def message(rule: AlertRule, verdict: Verdict) -> str:
    """One human sentence for a fired (or held) alert: coin, what was measured, the value,
    the threshold and the kind; funding also annualised. Needs ``verdict.value``."""
    if verdict.value is None:
        raise ValueError("a message needs a measured value; this verdict is unknown")
    v, t, kind, coin = verdict.value, rule.threshold, rule.kind, rule.coin
    wording = _WORDING[comparison(kind)]
    if kind in PRICE_KINDS:
        text = f"{coin} {rule.price_source} price {_num(v)} is {wording} {_num(t)}"
    elif kind in FUNDING_KINDS:
        text = (
            f"{coin} funding {_num(v)} an hour ({_per_year(v)}) is {wording} "
            f"{_num(t)} an hour ({_per_year(t)})"
        )
    elif kind in WINDOW_KINDS:
        what = "mid price" if kind is AlertKind.PRICE_MOVE_PCT else "open interest"
        text = (
            f"{coin} {what} moved {verdict.detail} {_pct(v)} within {_span(rule.window_s or 0)}, "
            f"{wording} {_num(t)} %"
        )
    elif kind is AlertKind.LIQUIDATION_DISTANCE_BELOW:
        text = (
            f"wallet {rule.wallet} {coin} position is {_pct(v)} from liquidation "
            f"({verdict.detail}), {wording} {_num(t)} %"
        )
    else:
        text = f"no {rule.stream} data for {coin} for {_num(v)} s, {wording} {_num(t)} s"
    return f"{text} [{kind}]"
