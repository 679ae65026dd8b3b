"""Time as a dependency, so batching windows, backoff, watchdogs and retention are tested
without sleeping.

A :class:`Clock` is the one way code is handed the time. ``monotonic()`` measures intervals
(never goes back); ``time()`` (seconds, a float) and ``time_ms()`` (whole milliseconds) read
the wall clock, which stamps events and records and may jump; :func:`utc_now` is the wall
clock as an aware datetime. Production code takes a ``Clock`` defaulting to
:data:`SYSTEM_CLOCK`; tests pass a :class:`ManualClock` and move it. Pure functions take the
*reading* instead (``now_ms: int``), never a clock.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Final, Protocol, Self


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    def time_ms(self) -> int: ...


class SystemClock:
    """The process clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def time_ms(self) -> int:
        return time.time_ns() // 1_000_000


SYSTEM_CLOCK: Final = SystemClock()


def utc_now(clock: Clock) -> dt.datetime:
    """The wall clock as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(clock.time(), dt.UTC)


class ManualClock:
    """A clock that moves only when told to; both readings advance together. The wall
    clock has millisecond resolution."""

    def __init__(self, start_s: float = 1000.0, wall_ms: int = 1_787_052_600_000) -> None:
        self._mono = start_s
        self._wall_ms = wall_ms

    @classmethod
    def at(cls, when: dt.datetime, start_s: float = 1000.0) -> Self:
        """A clock whose wall time is ``when`` (an aware datetime)."""
        if when.tzinfo is None:
            raise ValueError("a wall time needs a time zone")
        return cls(start_s, round(when.timestamp() * 1000))

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall_ms / 1000

    def time_ms(self) -> int:
        return self._wall_ms

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._mono += seconds
        self._wall_ms += round(seconds * 1000)


class SetClock:
    """A clock showing whatever time it was last set to (in ns): a replay runs the ingester's
    pipeline on the recorded receive times. Both readings are that time."""

    def __init__(self, ns: int = 0) -> None:
        self.ns = ns

    def monotonic(self) -> float:
        return self.ns / 1e9

    def time(self) -> float:
        return self.ns / 1e9

    def time_ms(self) -> int:
        return self.ns // 1_000_000
