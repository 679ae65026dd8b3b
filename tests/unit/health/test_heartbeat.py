"""Worker heartbeat: the file decides liveness; the event-loop watch; Redis never blocks it."""

from __future__ import annotations

import os
from pathlib import Path

import redis

from runtime.clock import ManualClock
from runtime.heartbeat import FileAge, Heartbeat, LoopWatch, file_age, heartbeat_path, worker_key
from runtime.redis_clients import quick_redis
from tests.support.services import free_port


def dead_redis() -> redis.Redis:
    # Nothing listens on a fresh free port: every command fails fast with ConnectionError.
    return quick_redis(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)


def test_given_node_names_when_mapped_to_paths_then_one_safe_file_per_node(tmp_path: Path) -> None:
    assert heartbeat_path(tmp_path, "celery@host-1.local") == (
        tmp_path / "heartbeats" / "celery@host-1.local"
    )
    assert heartbeat_path(tmp_path, "w/../x@h").name == "w_.._x@h"


def test_given_a_file_when_aged_then_fresh_only_within_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "hb"
    path.write_text("x")
    os.utime(path, (500.0, 500.0))
    age = file_age(path, ManualClock(wall_ms=530_000))
    assert age == FileAge(path, 30.0)
    assert age.fresh(30.0) and not age.fresh(29.9)
    assert not file_age(tmp_path / "missing", ManualClock()).fresh(1e9)


def test_given_loop_turned_recently_when_watched_then_alive_else_stalled() -> None:
    clock = ManualClock()
    watch = LoopWatch(clock)
    clock.advance(59)
    assert watch.alive(connected=True, stale_s=60)
    clock.advance(2)
    assert not watch.alive(connected=True, stale_s=60)  # wedged main loop: withhold
    watch.turned()
    assert watch.alive(connected=True, stale_s=60)


def test_given_no_broker_connection_when_watched_then_alive_while_reconnecting() -> None:
    # The loop does not turn while the consumer reconnects; a restart would not help.
    clock = ManualClock()
    watch = LoopWatch(clock)
    clock.advance(3600)
    assert watch.alive(connected=False, stale_s=60)


def test_given_redis_down_when_beating_then_the_file_is_still_touched(tmp_path: Path) -> None:
    clock = ManualClock(wall_ms=1_787_000_000_000)
    hb = Heartbeat("w1@h", tmp_path, dead_redis(), ttl_s=60, clock=clock, memory=lambda: 1)
    hb.beat()
    assert file_age(hb.path, clock).age_s == 0.0
    clock.advance(10)
    hb.beat()  # logged, not raised
    assert file_age(hb.path, clock).age_s == 0.0


def test_given_stalled_loop_when_beating_then_the_file_ages(tmp_path: Path) -> None:
    clock = ManualClock(wall_ms=1_787_000_000_000)
    hb = Heartbeat("w1@h", tmp_path, dead_redis(), ttl_s=60, clock=clock, memory=lambda: 1)
    hb.beat()
    clock.advance(90)
    hb.beat(alive=False)
    assert file_age(hb.path, clock).age_s == 90.0


def test_worker_key_is_scannable_by_the_health_pattern() -> None:
    from fnmatch import fnmatch

    from runtime.heartbeat import KEY_PATTERN

    assert fnmatch(worker_key("celery@host"), KEY_PATTERN)
