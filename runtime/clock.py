"""Time as a dependency, so batching windows, backoff and watchdogs are tested without sleeping.

``monotonic()`` measures intervals (never goes back); ``time_ms()`` stamps events and records
(wall clock, may jump). Pure logic takes a :class:`Clock`; only the service builds the real one.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time_ms(self) -> int: ...


class SystemClock:
    """The process clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when told to; both readings advance together."""

    def __init__(self, start_s: float = 1000.0, wall_ms: int = 1_787_052_600_000) -> None:
        self._mono = start_s
        self._wall_ms = wall_ms

    def monotonic(self) -> float:
        return self._mono

    def time_ms(self) -> int:
        return self._wall_ms

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._mono += seconds
        self._wall_ms += round(seconds * 1000)
