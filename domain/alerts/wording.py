"""How a fired alert is worded for humans: one sentence per verdict, funding annualised.

Numbers are exact (no float, no exponent); percentages to two places. The sentence names
the coin, what was measured, the value, the threshold and the kind; the channels format it
(``domain.notify.channels``), and the notification payload carries it as ``message``
(``domain.alerts.firing``). The event kinds describe their event: the wallet (shortened,
``0x5b2e…a291``), side, size, price and notional (USD to the cent; a price implied by a
position snapshot to six significant digits, as exchange prices have at most five).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Final

from domain.alerts.definition import (
    EVENT_KINDS,
    FUNDING_KINDS,
    PRICE_KINDS,
    WINDOW_KINDS,
    AlertKind,
    AlertRule,
    Comparison,
    comparison,
)
from domain.alerts.judgement import Verdict
from domain.alerts.occurrence import Occurrence, PositionChange

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


_ZERO: Final = Decimal(0)
_PRICE_DIGITS: Final = Context(prec=6, rounding=ROUND_HALF_EVEN)


def short_wallet(address: str | None) -> str:
    """``0x5b2e9c…a291`` → ``0x5b2e…a291``: enough to recognise, short enough to read."""
    if not address:
        return "an unnamed wallet"
    return f"{address[:6]}…{address[-4:]}" if len(address) > 12 else address


def _usd(value: Decimal) -> str:
    # format() rounds exactly, whatever the context's precision (a huge notional too).
    return f"{value:.2f} USD"


def _price(value: Decimal) -> str:
    return _num(_PRICE_DIGITS.plus(value))


def _position_phrase(o: Occurrence) -> str:
    before, after = abs(o.size_before or _ZERO), abs(o.size_after or _ZERO)
    side, coin = o.side, o.coin
    if o.change is PositionChange.OPEN:
        return f"opened a {coin} {side} of {_num(o.size)}"
    if o.change is PositionChange.CLOSE:
        return f"closed its {coin} {side} of {_num(o.size)}"
    if o.change is PositionChange.FLIP:
        old_side = "short" if side == "long" else "long"
        return f"flipped its {coin} {old_side} of {_num(before)} to a {side} of {_num(after)}"
    verb = "increased" if o.change is PositionChange.INCREASE else "reduced"
    return f"{verb} its {coin} {side} by {_num(o.size)} to {_num(after)}"


def _event_text(rule: AlertRule, o: Occurrence, wording: str) -> str:
    value = f"{_usd(o.notional)}, {wording} {_num(rule.threshold)} USD"
    who = short_wallet(o.wallet)
    if rule.kind is AlertKind.WHALE_TRADE:
        verb = "bought" if o.side == "buy" else "sold"
        return f"{o.coin} whale trade: {who} {verb} {_num(o.size)} at {_num(o.price)} = {value}"
    if rule.kind is AlertKind.WALLET_POSITION_CHANGE:
        return f"wallet {who} {_position_phrase(o)} at {_price(o.price)} = {value}"
    how = f" ({o.method})" if o.method else ""
    return (
        f"wallet {who} was liquidated{how}: its {o.coin} {o.side} of {_num(o.size)} closed at "
        f"{_price(o.price)} = {value}"
    )


_WORDING: Final[dict[Comparison, str]] = {"ge": "at or above", "le": "at or below", "lt": "below"}


def message(rule: AlertRule, verdict: Verdict) -> str:
    """One human sentence for a fired (or held) alert: coin, what was measured, the value,
    the threshold and the kind; funding also annualised. Needs ``verdict.value``."""
    if verdict.value is None:
        raise ValueError("a message needs a measured value; this verdict is unknown")
    v, t, kind, coin = verdict.value, rule.threshold, rule.kind, rule.coin
    wording = _WORDING[comparison(kind)]
    if kind in EVENT_KINDS:
        if verdict.occurrence is None:
            raise ValueError(f"a {kind} message needs the occurrence it was judged on")
        text = _event_text(rule, verdict.occurrence, wording)
    elif kind in PRICE_KINDS:
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
