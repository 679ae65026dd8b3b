"""Closed positions made explicit: a flat position is a ``Position`` with ``szi`` 0.

A clearinghouse state lists open positions only; a position that closed simply stops
appearing. Downstream (alerts on size or PnL) must learn that it is now flat, not keep the
last open state forever, so for every coin that was open in the user's previous *complete*
state and is absent now, a zero-size position is emitted. A state with rejected entries is
not complete: an absent coin might just be unparseable, and calling it flat would be
inventing data (missing is unknown, never zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol

from events import Position

_ZERO = Decimal(0)


class FlatTracker:
    """Per user, the coins open in the last complete state. One owner thread."""

    def __init__(self) -> None:
        self._open: dict[str, dict[str, Position]] = {}

    def complete_state(
        self, user: str, time_ms: int, positions: Sequence[Position]
    ) -> list[Position]:
        """``positions`` plus a flat one for every coin that closed since the last state."""
        now = {p.coin: p for p in positions if p.szi != _ZERO}
        before = self._open.get(user, {})
        flats = [flat_position(p, time_ms) for coin, p in before.items() if coin not in now]
        self._open[user] = now
        return [*positions, *flats]


class _PositionLike(Protocol):
    @property
    def user(self) -> str: ...
    @property
    def coin(self) -> str: ...
    @property
    def leverage_type(self) -> str: ...
    @property
    def leverage_value(self) -> int: ...


def flat_position(last: _PositionLike, time_ms: int) -> Position:
    """The zero-size position that records a close: a coin gone from a complete
    clearinghouse state. ``last`` is the previous position (an event or a stored row)."""
    return Position(
        user=last.user,
        coin=last.coin,
        time=time_ms,
        szi=_ZERO,
        entry_px=None,
        position_value=_ZERO,
        unrealized_pnl=_ZERO,
        return_on_equity=_ZERO,
        liquidation_px=None,
        leverage_type=last.leverage_type,
        leverage_value=last.leverage_value,
        margin_used=_ZERO,
    )
