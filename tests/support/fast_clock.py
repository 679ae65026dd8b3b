"""A clock that runs faster than the process clock, to compress minutes of schedule into
seconds of test or bench. Everyone that must agree on time (the simulator's accounting, the
REST budget's minute windows, the poller's cadences) is handed the same one."""

from __future__ import annotations

import time


class FastClock:
    """Wall and monotonic time running ``speed`` times faster than the process clock, from
    the moment it is made."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._mono0 = time.monotonic()
        self._wall0 = time.time()

    def monotonic(self) -> float:
        return self._mono0 + (time.monotonic() - self._mono0) * self.speed

    def time(self) -> float:
        return self._wall0 + (time.time() - self._wall0) * self.speed

    def time_ms(self) -> int:
        return int(self.time() * 1000)
