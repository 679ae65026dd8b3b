"""Candles folded from the trades the simulator generates (``candleSnapshot``, reference §7.7).

Contract:

* :meth:`MinuteBars.fold` takes one *run* of trades of one coin at one time whose prices move
  one way (a taker's sweep, or a single trade): its first and last price (integer units of
  ``px_decimals``), its total size (units of ``sz_decimals``) and its trade count. It costs
  a handful of integer comparisons, whatever the history holds: this runs on the hot path.
* A bar is keyed by its open time ``t`` (the minute, epoch-aligned); its ``o`` is the first
  trade's price, ``c`` the last, ``h``/``l`` the extremes, ``v`` the summed size and ``n``
  the trade count, exactly as a client would compute them from the trades. Minutes with no
  trade have no bar. Times never go back: a run older than the forming bar folds into it.
* Memory is bounded: the most recent :data:`CANDLES_KEPT` 1m bars, the forming one included
  (Hyperliquid serves its 5,000 most recent candles per interval).
* Larger intervals (:data:`INTERVALS`) are aggregated from the kept 1m bars when asked. A bar
  whose interval began before the oldest kept minute (once older minutes have been dropped)
  is left out rather than served short: every bar served is exact.
* :meth:`MinuteBars.snapshot` answers ``candleSnapshot``: the bars of one interval whose span
  overlaps ``[start, end]`` (``t <= end`` and ``T >= start``), oldest first, the forming bar
  included, as wire dicts ``{"t","T","s","i","o","c","h","l","v","n"}`` with strings for
  prices and volume (§2.6).

Intervals ``1m`` .. ``1d``, ``3d`` and ``1w`` are epoch-aligned (a day opens at 00:00 UTC; a
week at Thursday 00:00 UTC, as 1970-01-01 was); ``1M`` is the calendar month in UTC.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from workers.simulator.money import units_str

MINUTE_MS = 60_000
CANDLES_KEPT = 5_000  # 1m bars per coin, the forming one included
MAX_CANDLES = 5_000  # bars in one answer

# Interval → length in minutes; "1M" (calendar month) is handled apart.
INTERVALS: dict[str, int] = {
    "1m": 1,
    "3m": 3,
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "1h": 60,
    "2h": 120,
    "4h": 240,
    "8h": 480,
    "12h": 720,
    "1d": 1_440,
    "3d": 4_320,
    "1w": 10_080,
    "1M": 0,
}

Bar = tuple[int, int, int, int, int, int, int]  # (t, o, h, l, c, v, n)


def _month_bounds(t: int) -> tuple[int, int]:
    """(open, next open) in ms of the UTC calendar month holding ``t``."""
    day = datetime.fromtimestamp(t / 1000, UTC)
    start = datetime(day.year, day.month, 1, tzinfo=UTC)
    after = datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp()) * 1000, int(after.timestamp()) * 1000


def bucket(interval: str, t: int) -> tuple[int, int]:
    """(open time, close time ``T`` = next open - 1) of the ``interval`` bar holding ``t``."""
    if interval == "1M":
        start, after = _month_bounds(t)
        return start, after - 1
    length = INTERVALS[interval] * MINUTE_MS
    start = t - t % length
    return start, start + length - 1


def aggregate(bars: Iterable[Bar], interval: str, complete_from: int = 0) -> list[Bar]:
    """1m bars (oldest first) folded into ``interval`` bars; bars opening before
    ``complete_from`` are dropped (their first minutes are no longer known)."""
    out: list[Bar] = []
    current: Bar | None = None
    current_end = -1
    for bar in bars:
        if current is not None and bar[0] <= current_end:
            t, o, h, low, _, v, n = current
            current = (t, o, max(h, bar[2]), min(low, bar[3]), bar[4], v + bar[5], n + bar[6])
            continue
        if current is not None:
            out.append(current)
        start, current_end = bucket(interval, bar[0])
        current = (start, bar[1], bar[2], bar[3], bar[4], bar[5], bar[6])
    if current is not None:
        out.append(current)
    return [bar for bar in out if bar[0] >= complete_from]


class MinuteBars:
    """One coin's 1m bars: the forming bar in slots, closed bars in a bounded deque."""

    __slots__ = (
        "c",
        "closed",
        "coin",
        "complete_from",
        "end",
        "h",
        "l",
        "n",
        "o",
        "px_decimals",
        "sz_decimals",
        "t",
        "v",
    )

    def __init__(
        self, coin: str, px_decimals: int, sz_decimals: int, kept: int = CANDLES_KEPT
    ) -> None:
        if kept < 1:
            raise ValueError("kept must be at least 1")
        self.coin = coin
        self.px_decimals = px_decimals
        self.sz_decimals = sz_decimals
        self.closed: deque[Bar] = deque(maxlen=kept - 1)
        self.complete_from = 0  # every minute from here on is kept
        self.t = -1  # the forming bar's minute; -1 before the first trade
        self.end = 0  # the next minute's open: a run at or after it rolls the bar
        self.o = self.h = self.l = self.c = self.v = self.n = 0

    def fold(self, time_ms: int, first: int, last: int, size: int, count: int) -> None:
        """Fold a one-way run of ``count`` trades at ``time_ms`` into the forming bar."""
        if time_ms >= self.end:
            self._roll(time_ms - time_ms % MINUTE_MS, first)
        if last > first:
            if last > self.h:
                self.h = last
            if first < self.l:
                self.l = first
        else:
            if first > self.h:
                self.h = first
            if last < self.l:
                self.l = last
        self.c = last
        self.v += size
        self.n += count

    def _roll(self, minute: int, first: int) -> None:
        if self.n:
            closed = self.closed
            if len(closed) == closed.maxlen:
                # The oldest minute leaves the history: anything that began in it is partial.
                self.complete_from = (closed[0][0] if closed else self.t) + MINUTE_MS
            if closed.maxlen:
                closed.append((self.t, self.o, self.h, self.l, self.c, self.v, self.n))
        self.t = minute
        self.end = minute + MINUTE_MS
        self.o = self.h = self.l = self.c = first
        self.v = self.n = 0

    def minutes(self) -> list[Bar]:
        """Every kept 1m bar, oldest first, the forming one last."""
        bars = list(self.closed)
        if self.n:
            bars.append((self.t, self.o, self.h, self.l, self.c, self.v, self.n))
        return bars

    def bars(self, interval: str, start: int, end: int) -> list[Bar]:
        """``interval`` bars overlapping ``[start, end]``, oldest first, at most
        :data:`MAX_CANDLES`. ``interval`` must be a key of :data:`INTERVALS`."""
        minutes = self.minutes()
        if interval == "1m":
            chosen = minutes
        else:
            # Only the minutes that can fall in an overlapping bar need folding.
            low, _ = bucket(interval, max(0, start))
            chosen = aggregate((m for m in minutes if m[0] >= low), interval, self.complete_from)
        out = [bar for bar in chosen if bar[0] <= end and bucket(interval, bar[0])[1] >= start]
        return out[:MAX_CANDLES]

    def snapshot(self, interval: str, start: int, end: int) -> list[dict[str, Any]]:
        """The ``candleSnapshot`` answer for this coin."""
        px, sz = self.px_decimals, self.sz_decimals
        return [
            {
                "t": t,
                "T": bucket(interval, t)[1],
                "s": self.coin,
                "i": interval,
                "o": units_str(o, px),
                "c": units_str(c, px),
                "h": units_str(h, px),
                "l": units_str(low, px),
                "v": units_str(v, sz),
                "n": n,
            }
            for t, o, h, low, c, v, n in self.bars(interval, start, end)
        ]
