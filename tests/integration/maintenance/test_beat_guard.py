"""The single-beat guard in process, against the private Redis: lock, standby, takeover."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from runtime.heartbeat import file_age
from settings import load_settings
from tasks.maintenance.beat_guard import (
    LAST_RUN_KEY,
    LOCK_KEY,
    ScheduleLock,
    SingleBeatScheduler,
)
from tests.integration.celery.support import queue_depth


@pytest.fixture()
def cache(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_given_one_owner_when_another_asks_then_only_the_owner_holds_and_renews(
    cache: redis.Redis,
) -> None:
    first, second = ScheduleLock(cache, 5, "one"), ScheduleLock(cache, 5, "two")
    assert first.hold() and not second.hold()
    assert first.hold()  # renewal by the owner
    assert first.holder() == "one"
    assert not second.release()  # a non-owner cannot delete it
    assert first.release() and second.hold()


def test_given_an_owner_that_stops_renewing_when_the_ttl_passes_then_another_takes_it(
    cache: redis.Redis,
) -> None:
    dead, standby = ScheduleLock(cache, 0.2, "dead"), ScheduleLock(cache, 0.2, "standby")
    assert dead.hold()
    time.sleep(0.3)
    assert standby.hold() and not dead.hold()


@pytest.fixture()
def beats(redis_url: str, make_app: Any, tmp_path: Any) -> Iterator[list[SingleBeatScheduler]]:
    settings = load_settings(redis_url=redis_url, beat_lock_timeout_s=3, data_dir=tmp_path)
    app = make_app(settings)
    app.conf.beat_schedule = {
        "every-half-second": {
            "task": "hyperwatch.maintenance.create_partitions",
            "schedule": dt.timedelta(seconds=0.5),
            "options": {"queue": "maintenance", "expires": 1},
        }
    }
    made = [SingleBeatScheduler(app), SingleBeatScheduler(app)]
    yield made
    for beat in made:
        beat.close()


def run(beats: list[SingleBeatScheduler], seconds: float) -> None:
    """Both beats tick as `celery beat` would, for ``seconds``."""
    due = [0.0 for _ in beats]
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        for i, beat in enumerate(beats):
            if now >= due[i]:
                due[i] = now + beat.tick()
        time.sleep(0.01)


def test_given_two_beats_when_both_tick_then_one_sends_each_period_and_the_other_stands_by(
    beats: list[SingleBeatScheduler], cache: redis.Redis
) -> None:
    run(beats, 1.75)
    leaders = [b for b in beats if b.leading]
    assert len(leaders) == 1
    # First run is one period after start: 3 sends in 1.75 s from one beat, not 6 from two.
    assert queue_depth(cache, "maintenance") == 3
    assert cache.get(LOCK_KEY) == leaders[0]._lock.owner.encode()
    # Both tick, so both are alive for their liveness probe, the standby included
    assert all(file_age(b.heartbeat_file).fresh(1.0) for b in beats)


def test_given_the_leader_stops_when_the_standby_takes_over_then_the_cadence_continues(
    beats: list[SingleBeatScheduler], cache: redis.Redis
) -> None:
    run(beats, 1.25)
    leader, standby = sorted(beats, key=lambda b: not b.leading)
    sent_by_leader = queue_depth(cache, "maintenance")
    last_run = float(cache.hget(LAST_RUN_KEY, "every-half-second") or "nan")
    # When the leader shuts down cleanly (releases the lock)
    leader.close()
    standby.tick()
    # Then the standby leads at once, with the leader's last run, not its own start time
    assert standby.leading
    entry = standby.schedule["every-half-second"]
    assert entry.last_run_at.timestamp() == pytest.approx(last_run, abs=0.001)
    run([standby], 1.1)
    total = queue_depth(cache, "maintenance")
    assert 2 <= total - sent_by_leader <= 3  # about one send per period, no burst


def test_given_redis_unreachable_when_ticking_then_no_beat_sends(
    beats: list[SingleBeatScheduler], redis_server: Any, cache: redis.Redis
) -> None:
    run(beats, 0.6)
    redis_server.stop()
    try:
        assert beats[0].tick() == beats[0].standby_poll_s
        assert not beats[0].leading and not beats[1].leading
    finally:
        redis_server.start()
