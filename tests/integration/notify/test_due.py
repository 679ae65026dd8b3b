"""Digests due (tasks/notify/due.py) on the real Redis: one message per tick whatever the
channels due then; a run flushes each due channel once and forgets it, unless it was
scheduled again meanwhile; a flush that fails gives the rest back."""

from __future__ import annotations

import pytest
import redis

from runtime import keys
from tasks.notify.due import CLAIM_MS, PAGE, TICK_MS, run_due, schedule

pytestmark = pytest.mark.integration

NOW = 1_787_052_600_000  # a multiple of TICK_MS


@pytest.fixture(autouse=True)
def _empty(redis_client: redis.Redis) -> None:
    redis_client.delete(keys.NOTIFY_DUE.name())
    for key in redis_client.scan_iter(keys.NOTIFY_DUE_TICK.name(tick_ms="*")):
        redis_client.delete(key)


def _due(client: redis.Redis) -> dict[int, int]:
    return {
        int(c): int(s) for c, s in client.zrange(keys.NOTIFY_DUE.name(), 0, -1, withscores=True)
    }


def test_given_many_channels_due_in_one_tick_when_scheduled_then_one_message(
    redis_client: redis.Redis,
) -> None:
    ticks: list[float] = []
    # Given three channels due within one tick, one due later, and one scheduled twice
    schedule(redis_client, 1, 30.0, NOW, ticks.append)
    schedule(redis_client, 2, 30.05, NOW, ticks.append)
    schedule(redis_client, 3, 30.1, NOW + 50, ticks.append)
    schedule(redis_client, 4, 31.0, NOW, ticks.append)
    schedule(redis_client, 1, 40.0, NOW, ticks.append)  # later: the earlier due time stays
    # Then one message per tick (TICK_MS: 30.05 and 30.15 share the one ending at 30.2),
    # none for a later time that changes nothing; each channel once, at its earliest
    assert ticks == [30.0, 30.2, 31.0]
    assert _due(redis_client) == {
        1: NOW + 30_000,
        2: NOW + 30_050,
        3: NOW + 30_150,
        4: NOW + 31_000,
    }
    # And a sooner time wins over a later one
    schedule(redis_client, 4, 5.0, NOW, ticks.append)
    assert _due(redis_client)[4] == NOW + 5_000 and ticks[-1] == 5.0


def test_given_channels_due_and_not_when_run_then_the_due_are_flushed_once_and_forgotten(
    redis_client: redis.Redis,
) -> None:
    for channel, delay in ((1, 1.0), (2, 2.0), (3, 60.0)):
        schedule(redis_client, channel, delay, NOW, lambda _: None)
    flushed: list[int] = []

    def flush(channel_id: int) -> None:
        flushed.append(channel_id)
        if channel_id == 2:  # its next digest, scheduled by a delivery while it ran
            schedule(redis_client, 2, 30.0, NOW + 2_000, lambda _: None)

    ran, more = run_due(redis_client, NOW + 2_000, flush)
    assert (ran, more) == (2, False) and sorted(flushed) == [1, 2]
    # 1 is done; 2 is due again at its new time (not lost to the removal); 3 not yet due
    assert _due(redis_client) == {2: NOW + 32_000, 3: NOW + 60_000}
    assert run_due(redis_client, NOW + 2_000, flush) == (0, False)


def test_given_a_flush_that_fails_when_run_then_the_rest_are_given_back_due_now(
    redis_client: redis.Redis,
) -> None:
    for channel in (1, 2, 3):
        schedule(redis_client, channel, 1.0, NOW, lambda _: None)

    def flush(channel_id: int) -> None:
        if channel_id == 2:
            raise ConnectionError("database away")

    with pytest.raises(ConnectionError):
        run_due(redis_client, NOW + 1_000, flush)
    # The one flushed is gone; the failed one and the one after it are due now, for the
    # task's retry, not held until the claim lapses
    due = _due(redis_client)
    assert 1 not in due and due == {c: NOW + 1_000 for c in due} and len(due) == 2


def test_given_a_run_that_died_when_its_claim_lapses_then_a_later_run_takes_its_channels(
    redis_client: redis.Redis,
) -> None:
    schedule(redis_client, 7, 1.0, NOW, lambda _: None)
    # A run claimed it and died without a word (killed worker): the claim holds it
    redis_client.zadd(keys.NOTIFY_DUE.name(), {"7": NOW + 1_000 + CLAIM_MS}, xx=True)
    flushed: list[int] = []
    assert run_due(redis_client, NOW + 2_000, flushed.append) == (0, False)
    assert run_due(redis_client, NOW + 1_000 + CLAIM_MS, flushed.append) == (1, False)
    assert flushed == [7] and _due(redis_client) == {}
    assert TICK_MS > 0


def test_given_more_than_a_page_due_when_run_then_the_next_run_is_sent_before_flushing(
    redis_client: redis.Redis,
) -> None:
    for channel in range(1, PAGE + 3):
        schedule(redis_client, channel, 1.0, NOW, lambda _: None)
    events: list[str] = []
    ran, full = run_due(
        redis_client, NOW + 1_000, lambda c: events.append(f"flush {c}"),
        lambda: events.append("next"),
    )  # fmt: skip
    assert (ran, full) == (PAGE, True) and events[0] == "next" and len(events) == PAGE + 1
    assert run_due(redis_client, NOW + 1_000, lambda c: None, lambda: events.append("x")) == (
        2,
        False,
    )
    assert "x" not in events and _due(redis_client) == {}
