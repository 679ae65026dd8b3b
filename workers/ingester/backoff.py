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
cannot exceed the exchange's 30 connects a minute. That cap is per IP, so the sockets of
one process share one :class:`ConnectWindow` (each keeps its own backoff streak), and a
socket takes its slot with :meth:`ReconnectPolicy.try_attempt`, which checks and records in
one step so two sockets cannot both take the last one. Nothing here sleeps; the caller waits
``delay_s()``.
"""

from __future__ import annotations

import random
import threading
from collections import deque

from runtime.clock import Clock
from runtime.retry import RetryPolicy

WINDOW_S = 60.0


class ConnectWindow:
    """Connect times of the last minute, across every socket of the process. Thread-safe."""

    def __init__(self, max_per_minute: int, clock: Clock) -> None:
        if max_per_minute < 1:
            raise ValueError("max_per_minute must be at least 1")
        self.max_per_minute = max_per_minute
        self._clock = clock
        self._connects: deque[float] = deque()
        self._lock = threading.Lock()

    def _wait_locked(self, now: float) -> float:
        while self._connects and now - self._connects[0] >= WINDOW_S:
            self._connects.popleft()
        if len(self._connects) < self.max_per_minute:
            return 0.0
        return self._connects[0] + WINDOW_S - now

    def wait_s(self) -> float:
        """Seconds until one more connect fits in the window."""
        with self._lock:
            return self._wait_locked(self._clock.monotonic())

    def record(self) -> None:
        """A connect attempt now (counted whether or not there was room)."""
        with self._lock:
            self._connects.append(self._clock.monotonic())

    def try_take(self) -> float:
        """Record an attempt now if one fits (0.0), else the seconds to wait (nothing recorded)."""
        with self._lock:
            now = self._clock.monotonic()
            wait = self._wait_locked(now)
            if wait <= 0:
                self._connects.append(now)
            return wait


class ReconnectPolicy:
    """Owned by one connection loop; only its :class:`ConnectWindow` may be shared."""

    def __init__(
        self,
        min_s: float,
        max_s: float,
        max_per_minute: int,
        clock: Clock,
        rng: random.Random | None = None,
        window: ConnectWindow | None = None,
    ) -> None:
        if not 0 < min_s <= max_s or max_per_minute < 1:
            raise ValueError("need 0 < min_s <= max_s and max_per_minute >= 1")
        self.min_s = min_s
        self.max_s = max_s
        self.schedule = RetryPolicy(max_attempts=None, base_s=min_s, cap_s=max_s, jitter=0.5)
        self.window = window or ConnectWindow(max_per_minute, clock)
        self.max_per_minute = self.window.max_per_minute
        self._clock = clock
        self._rng = rng or random.Random()
        self._failures = 0
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
        return self.window.wait_s()

    def delay_s(self) -> float:
        """How long to wait before the next attempt: the larger of backoff and the cap."""
        return max(self.backoff_s(), self.limit_wait_s())

    def on_attempt(self) -> None:
        """A connection attempt is being made now (it counts against the cap either way)."""
        self.window.record()
        self._connected_at = None
        self._healthy = False

    def try_attempt(self) -> float:
        """Take a slot in the shared window and begin an attempt (0.0), or the seconds to
        wait before asking again (no attempt begun)."""
        wait = self.window.try_take()
        if wait <= 0:
            self._connected_at = None
            self._healthy = False
        return wait

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
