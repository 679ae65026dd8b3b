"""The per-key rate limiter on a real Redis, its clock moved by hand: a window's count is
shared by every limiter (every API process) and a new minute starts a new count."""

from __future__ import annotations

import pytest
import redis

from runtime import keys
from runtime.clock import ManualClock
from runtime.rate_limit import KEY_TTL_S, LimiterUnavailable, RateLimiter
from runtime.redis_clients import quick_redis
from tests.support.services import free_port

pytestmark = pytest.mark.integration


def test_two_limiters_share_a_keys_minute_and_the_next_minute_starts_afresh(redis_url: str) -> None:
    # Given two API processes' limiters on one Redis, 10 s into a minute
    client = redis.Redis.from_url(redis_url)
    clock = ManualClock(wall_ms=1_800_000_000_000 - 1_800_000_000_000 % 60_000 + 10_000)
    first, second = RateLimiter(client, clock), RateLimiter(client, clock)

    # When key 7 makes 3 requests through each, with a limit of 5
    decisions = [limiter.take(7, 5) for limiter in (first, second) for _ in range(3)]

    # Then the first 5 pass and the 6th waits the 50 s left; key 8 is not affected
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert decisions[-1].reset_s == 50 and decisions[-1].remaining == 0
    assert first.take(8, 5).allowed
    name = keys.API_RATE.name(key_id=7, minute=clock.time_ms() // 60_000)
    assert 0 < client.ttl(name) <= KEY_TTL_S

    # And a minute later key 7 starts again
    clock.advance(60.0)
    assert second.take(7, 5).remaining == 4
    client.close()


def test_an_unreachable_redis_is_unavailable_not_unlimited() -> None:
    client = quick_redis(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)  # as the API's
    with pytest.raises(LimiterUnavailable, match="rate limiter unavailable"):
        RateLimiter(client).take(1, 5)
