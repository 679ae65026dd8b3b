"""The one retry schedule, as data: how many attempts, how far apart, and a server's own wait.

Every backoff in the system is a :class:`RetryPolicy`: task retries (``tasks.retry``),
notification deliveries (``domain.notify.retry_policy``), the ingester's reconnects
(``workers.ingester.backoff``), its broker publisher and its coin-universe look-up. *What*
is retried is not decided here: each domain classifies its own failures (an exception for
a task, an HTTP status for a delivery) and asks the policy only whether another attempt is
allowed and how long to wait before it.

Contract:

- Attempts are numbered from 1 (the first try). ``max_attempts`` counts them all, so a
  policy allows ``max_attempts - 1`` retries (:attr:`RetryPolicy.max_retries`); None means
  no limit (a dependency that is away is waited for, not given up on).
- :meth:`RetryPolicy.backoff_s` is the un-jittered wait after failed attempt ``n``:
  ``min(cap_s, base_s * 2**(n-1))``.
- :meth:`RetryPolicy.next_delay` is the server's wait when one was given (``retry_after``:
  ``Retry-After``, Telegram's ``retry_after``), clamped to ``[0, cap]``; otherwise the
  backoff shortened by up to ``jitter`` of itself at random — uniform in
  ``[b * (1 - jitter), b]``. ``jitter`` 0.5 is *equal* jitter (half fixed, half random: a
  burst of failures spreads out but never comes back at once); 0 is deterministic. A
  ``ceiling_s`` lowers the cap for one call (a task's countdown must stay far below the
  broker's visibility timeout).
- Pure: no clock, no sleeping; randomness through an injectable ``random.Random``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# 2.0**1023 is the largest power of two a float holds; base_s times it is at worst inf,
# which the cap then clamps, so absurd attempt numbers never overflow.
_MAX_EXPONENT = 1023


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts, and the backoff between them (see module)."""

    max_attempts: int | None = None
    base_s: float = 1.0
    cap_s: float = 60.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (or None: no limit)")
        if not 0 < self.base_s <= self.cap_s:
            raise ValueError("base_s must be positive and at most cap_s")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    @property
    def max_retries(self) -> int | None:
        """Retries after the first attempt; None when unlimited."""
        return None if self.max_attempts is None else self.max_attempts - 1

    def exhausted(self, attempt: int) -> bool:
        """True when failed attempt ``attempt`` was the last one allowed."""
        return self.max_attempts is not None and attempt >= self.max_attempts

    def backoff_s(self, attempt: int, ceiling_s: float | None = None) -> float:
        """The un-jittered wait after failed attempt number ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError("attempt numbers start at 1")
        delay = min(self.cap_s, self.base_s * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
        return delay if ceiling_s is None else min(delay, ceiling_s)

    def next_delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        rng: random.Random | None = None,
        ceiling_s: float | None = None,
    ) -> float:
        """Seconds to wait after failed attempt ``attempt``: the server's ``retry_after``
        (within ``[0, cap]``) when given, else the jittered backoff."""
        if retry_after is not None:
            cap = self.cap_s if ceiling_s is None else min(self.cap_s, ceiling_s)
            return min(max(0.0, retry_after), cap)
        delay = self.backoff_s(attempt, ceiling_s)
        if self.jitter == 0:
            return delay
        return (rng or random).uniform(delay * (1 - self.jitter), delay)

    def worst_case_total_s(self) -> float:
        """Longest time from the first failure to giving up (every wait at its longest);
        infinite when attempts are unlimited."""
        if self.max_attempts is None:
            return float("inf")
        return sum(self.backoff_s(n) for n in range(1, self.max_attempts))
