"""Log a recurring problem once with a sample, then at most once a period with a count.

A feed that turns bad can produce thousands of identical warnings a second; the metric
counts every one, the log keeps the first sample and a periodic tally.
"""

from __future__ import annotations

import logging

from runtime.clock import Clock


class LogThrottle:
    """Not thread-safe: one instance per thread that logs through it."""

    def __init__(self, logger: logging.Logger, clock: Clock, period_s: float = 60.0) -> None:
        self._log = logger
        self._clock = clock
        self._period_s = period_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, key: str, message: str, *args: object) -> bool:
        """Log unless ``key`` was logged within the period; True if it was logged."""
        now = self._clock.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._period_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message = f"{message} (+{suppressed} more like it since the last report)"
        self._log.log(level, message, *args)
        return True
