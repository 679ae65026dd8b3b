"""What alert rules read: the :class:`MarketView` protocol and its vocabulary.

The judgement (``domain.alerts.judgement``) takes any ``MarketView``; two implement it —
the in-memory :class:`~domain.alerts.market_state.MarketState` and, in the alert workers,
the view shared through Redis (:class:`~domain.alerts.shared_state.SharedView`). Every read
takes an explicit ``now_ms`` and answers ``None`` (unknown) rather than a stale or made-up
value; nothing here reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

from events import Position


class Stream(StrEnum):
    """A market feed whose silence a ``stale_data`` alert watches. Values match ``events.KIND_OF``."""

    MIDS = "mids"
    ASSET_CONTEXTS = "asset_contexts"


class Series(StrEnum):
    """A value whose recent history is kept for percentage-change alerts."""

    MID = "mid"
    OPEN_INTEREST = "open_interest"


@dataclass(frozen=True, slots=True)
class WindowRange:
    """The latest value and the low/high seen within a window ending now.

    ``covered`` is True when the history reaches back to the window's start; when False the
    low/high only bound the part of the window that was observed, so a move found in them is
    real but the absence of one proves nothing.
    """

    latest: Decimal
    low: Decimal
    high: Decimal
    covered: bool


@runtime_checkable
class MarketView(Protocol):
    """The market as one rule sees it at ``now_ms``; ``None`` means unknown (missing or stale)."""

    def mid(self, coin: str, now_ms: int) -> Decimal | None:
        """The fresh mid price."""
        ...

    def mark(self, coin: str, now_ms: int) -> Decimal | None:
        """The fresh mark price (from the asset context)."""
        ...

    def funding(self, coin: str, now_ms: int) -> Decimal | None:
        """The fresh hourly funding rate exactly as Hyperliquid sends it."""
        ...

    def position(self, wallet: str, coin: str, now_ms: int) -> Position | None:
        """The wallet's fresh position in ``coin``, flat ones included (szi 0)."""
        ...

    def window(self, coin: str, series: Series, window_ms: int, now_ms: int) -> WindowRange | None:
        """Low/high of ``series`` over ``[now_ms - window_ms, now_ms]`` ending at the fresh
        latest value; None when the latest value is unknown."""
        ...

    def silence_ms(self, coin: str, stream: Stream, now_ms: int) -> int:
        """How long ``stream`` has been silent for ``coin`` (never negative)."""
        ...
