"""Worker confirmations round-trip through a real Redis."""

from __future__ import annotations

import redis

from runtime.confirmations import confirmed, done_key, mark_done


def test_given_marked_batches_when_asked_then_exactly_those_are_confirmed(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        mark_done(client, "ing-1", 1, 1_000)
        mark_done(client, "ing-1", 3, 1_001)
        mark_done(client, "ing-1", 3, 1_002)  # a redelivered batch confirms again: harmless
        mark_done(client, "ing-2", 2, 1_000)
        assert confirmed(client, "ing-1", [1, 2, 3]) == {1, 3}
        assert confirmed(client, "ing-2", [1, 2]) == {2}
        assert client.ttl(done_key("ing-1")) > 0
    finally:
        client.close()
