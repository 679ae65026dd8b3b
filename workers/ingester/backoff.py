"""When to (re)connect: jittered exponential backoff inside a connections-per-minute cap.

The exchange allows 30 new connections a minute per IP (reference §1.6) and drops sockets
"periodically and without announcement" (§1.8). The delay after the ``n``-th failure of a
streak is the system's one retry schedule (:class:`runtime.retry.RetryPolicy`, base
``min_s``, cap ``max_s``, jitter 0.5): drawn uniformly from ``[b/2, b]`` with
``b = min(max_s, min_s * 2**(n-1))`` — equal jitter, so a fleet does not reconnect in
lockstep yet never retries instantly. A connection that proved healthy — every subscription
acknowledged and data flowing (``on_healthy``) — ends the streak at once, as does one that
lived at least ``max_s``: the next drop is treated as the first and reconnects within
``min_s``. The exchange drops sockets every few seconds in bad periods, and a streak that
only a 30-second life could reset made each reconnect wait longer than the one before (up
to ``max_s``), losing half the trades in between. Independently, a sliding 60-second window
of connect times makes the caller wait when the cap is reached, so a flapping socket still
cannot exceed the exchange's 30 connects a minute. Nothing here sleeps; the caller waits
``delay_s()``.
"""

from __future__ import annotations

import random
from collections import deque

from runtime.clock import Clock
from runtime.retry import RetryPolicy

WINDOW_S = 60.0


class ReconnectPolicy:
    """Not thread-safe: owned by the connection loop."""

    def __init__(
        self,
        min_s: float,
        max_s: float,
        max_per_minute: int,
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < min_s <= max_s or max_per_minute < 1:
            raise ValueError("need 0 < min_s <= max_s and max_per_minute >= 1")
        self.min_s = min_s
        self.max_s = max_s
        self.schedule = RetryPolicy(max_attempts=None, base_s=min_s, cap_s=max_s, jitter=0.5)
        self.max_per_minute = max_per_minute
        self._clock = clock
        self._rng = rng or random.Random()
        self._failures = 0
        self._connects: deque[float] = deque()
        self._connected_at: float | None = None
        self._healthy = False

    @property
    def failures(self) -> int:
        return self._failures

    def backoff_s(self) -> float:
        """The jittered delay owed to the current failure streak (0 before any failure)."""
        if self._failures == 0:
            return 0.0
        return self.schedule.next_delay(self._failures, rng=self._rng)

    def limit_wait_s(self) -> float:
        """Seconds until one more connect fits in the per-minute window."""
        now = self._clock.monotonic()
        while self._connects and now - self._connects[0] >= WINDOW_S:
            self._connects.popleft()
        if len(self._connects) < self.max_per_minute:
            return 0.0
        return self._connects[0] + WINDOW_S - now

    def delay_s(self) -> float:
        """How long to wait before the next attempt: the larger of backoff and the cap."""
        return max(self.backoff_s(), self.limit_wait_s())

    def on_attempt(self) -> None:
        """A connection attempt is being made now (it counts against the cap either way)."""
        self._connects.append(self._clock.monotonic())
        self._connected_at = None
        self._healthy = False

    def on_connected(self) -> None:
        self._connected_at = self._clock.monotonic()

    def on_healthy(self) -> None:
        """The connection is subscribed and delivering data: the failure streak is over."""
        self._healthy = True

    def on_closed(self) -> None:
        """The attempt failed or the socket ended; a healthy or long life ends the streak."""
        lived = (
            self._clock.monotonic() - self._connected_at if self._connected_at is not None else 0.0
        )
        self._failures = 1 if self._healthy or lived >= self.max_s else self._failures + 1
        self._connected_at = None
        self._healthy = False
