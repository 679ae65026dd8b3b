"""Requests per minute per API key, shared by every ``hyperwatch api`` process through Redis.

A fixed window per epoch minute (``keys.API_RATE``): each request increments its key's
counter for the current minute; above the tier's limit it is refused until the minute
ends, and ``Retry-After`` says how many seconds that is. A fixed window lets a client send
up to twice its rate across a minute boundary; that is the accepted price of one
round trip (INCR and EXPIRE pipelined) per request and no clock shared between processes
beyond Redis keys named by the minute.

Redis unreachable → :class:`LimiterUnavailable`: the API answers 503 rather than serving
without a limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import redis

from runtime import keys
from runtime.clock import SYSTEM_CLOCK, Clock

WINDOW_MS: Final = 60_000
KEY_TTL_S: Final = 120  # the window and the next one: a late request still finds its count


class LimiterUnavailable(Exception):
    """Redis did not answer; ``str()`` says why."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    # Seconds until the window ends (whole, at least 1): the Retry-After of a refusal.
    reset_s: int


def decide(count: int, limit: int, now_ms: int) -> Decision:
    """The decision for the ``count``-th request of the window holding ``now_ms``. Pure."""
    left_ms = WINDOW_MS - now_ms % WINDOW_MS
    return Decision(
        allowed=count <= limit,
        limit=limit,
        remaining=max(limit - count, 0),
        reset_s=max(1, math.ceil(left_ms / 1000)),
    )


class RateLimiter:
    def __init__(self, client: redis.Redis, clock: Clock = SYSTEM_CLOCK) -> None:
        self._client = client
        self._clock = clock

    def take(self, key_id: int, limit: int) -> Decision:
        """Count one request of ``key_id`` and decide it (a refused one counts too, so a
        client hammering through a refusal does not get its next minute early)."""
        now_ms = self._clock.time_ms()
        name = keys.API_RATE.name(key_id=key_id, minute=now_ms // WINDOW_MS)
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.incr(name)
            pipe.expire(name, KEY_TTL_S)
            count, _ = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise LimiterUnavailable(f"rate limiter unavailable: {type(exc).__name__}") from None
        return decide(int(count), limit, now_ms)
