"""A token bucket: how the ingester stays inside the exchange's per-minute budgets.

Used for (re)subscribe bursts (2,000 messages a minute per IP, reference §1.6) and REST
weight (1,200 a minute). ``capacity`` is the burst; ``rate`` the refill per second. In any
window of ``w`` seconds at most ``capacity + rate * w`` tokens are taken, so
:func:`per_minute` splits a per-minute budget into a quarter burst and three quarters
steady refill: a full minute can never exceed the budget, and a reconnect still gets a
quick first burst.
"""

from __future__ import annotations

import threading

from runtime.clock import Clock


class TokenBucket:
    """Thread-safe: the ingester's sockets, each on its own thread, share one bucket because
    the exchange counts messages across them. Never blocks; callers wait ``wait_s()``."""

    def __init__(self, rate_per_s: float, capacity: float, clock: Clock) -> None:
        if rate_per_s <= 0 or capacity < 1:
            raise ValueError("rate must be positive and capacity at least 1")
        self.rate = rate_per_s
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._at = clock.monotonic()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def try_take(self, n: float = 1.0) -> bool:
        """Take ``n`` tokens if available now."""
        with self._lock:
            self._refill()
            if self._tokens >= n:
                self._tokens -= n
                return True
            return False

    def wait_s(self, n: float = 1.0) -> float:
        """Seconds until ``n`` tokens will be available (0 if they are)."""
        with self._lock:
            self._refill()
            missing = n - self._tokens
        return 0.0 if missing <= 0 else missing / self.rate


def per_minute(budget: int, clock: Clock) -> TokenBucket:
    """A bucket that never lets more than ``budget`` through in any 60-second window."""
    burst = max(1.0, budget / 4)
    # A budget of 1 leaves no room for refill inside the minute; refill it over an hour.
    rate = (budget - burst) / 60 if budget > burst else budget / 3600
    return TokenBucket(rate_per_s=rate, capacity=burst, clock=clock)
