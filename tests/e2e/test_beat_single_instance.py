"""Two real ``celery -A tasks beat`` processes: one schedules, the other stands by and takes
over when the first dies — each job is sent once per period throughout.

Every message a beat sends lands in the private Redis; its headers name the sending process
(``origin`` = ``gen<pid>@host``) and its ``expires`` (= send time + period, see
beat_schedule.py), so the queue itself is the record of who sent what when.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tasks.maintenance.beat_guard import LOCK_KEY
from tests.integration.celery.support import CELERY, service_env, wait_until

pytestmark = pytest.mark.e2e

HYPERWATCH = str(Path(sys.executable).with_name("hyperwatch"))
PERIOD_S = 1.0
LOCK_TIMEOUT_S = 3.0


class BeatProcess:
    def __init__(self, workdir: Path, env: dict[str, str], name: str) -> None:
        self.env = env
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [CELERY, "-A", "tasks", "beat", "--loglevel=INFO"],
            cwd=workdir,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


@pytest.fixture()
def spawn_beat(tmp_path: Path, redis_url: str) -> Iterator[Callable[[str], BeatProcess]]:
    env = service_env(
        redis_url=redis_url,
        database_url=f"sqlite:///{tmp_path / 'hw.db'}",
        data_dir=tmp_path / "var",
        # poll-positions runs every half POSITION_POLL_HOT_S: once a PERIOD_S
        position_poll_hot_s=2 * PERIOD_S,
        position_poll_interval_s=2 * PERIOD_S,
        beat_lock_timeout_s=LOCK_TIMEOUT_S,
        log_level="INFO",
    )
    started: list[BeatProcess] = []

    def spawn(name: str) -> BeatProcess:
        beat = BeatProcess(tmp_path, env, name)
        started.append(beat)
        return beat

    yield spawn
    for beat in started:
        beat.stop()


def sends(cache: redis.Redis) -> list[tuple[int, dt.datetime]]:
    """(sender pid, send time) of every poll-positions message, oldest first."""
    out = []
    for raw in cache.lrange("maintenance", 0, -1):
        headers: dict[str, Any] = json.loads(raw)["headers"]
        if headers["task"] != "hyperwatch.maintenance.poll_positions":
            continue
        pid = int(headers["origin"].split("@")[0].removeprefix("gen"))
        sent = dt.datetime.fromisoformat(headers["expires"]) - dt.timedelta(seconds=PERIOD_S)
        out.append((pid, sent))
    # kombu LPUSHes and consumers BRPOP: the list's tail is the oldest message.
    return sorted(out, key=lambda s: s[1])


def gaps(times: list[dt.datetime]) -> list[float]:
    return [(b - a).total_seconds() for a, b in itertools.pairwise(times)]


@pytest.mark.heavy  # beat periods in real time, 15 s: runs in make test-heavy
def test_given_two_beats_started_together_when_the_leader_dies_then_each_job_runs_once_per_period(
    spawn_beat: Callable[[str], BeatProcess], redis_url: str
) -> None:
    cache = redis.Redis.from_url(redis_url)
    # Given two beats started together
    first, second = spawn_beat("beat-a"), spawn_beat("beat-b")
    wait_until(lambda: len(sends(cache)) >= 5, 20, what="5 sends")
    # Then only one of them sends, once per period
    before = sends(cache)
    (leader_pid,) = {pid for pid, _ in before}
    leader, standby = (first, second) if leader_pid == first.pid else (second, first)
    assert "another beat holds the schedule lock; standing by" in standby.log()
    assert all(0.8 <= g <= 1.6 for g in gaps([t for _, t in before])), gaps([t for _, t in before])

    # When the leader is killed without a chance to release its lock
    leader.process.send_signal(signal.SIGKILL)
    leader.process.wait(10)
    last_of_leader = sends(cache)[-1][1]
    wait_until(
        lambda: len([s for s in sends(cache) if s[0] == standby.pid]) >= 3,
        LOCK_TIMEOUT_S + 10,
        what="the standby's sends",
    )
    # Then the standby takes over within the lock timeout, without a double send at takeover
    after = [t for pid, t in sends(cache) if pid == standby.pid]
    takeover_gap = (after[0] - last_of_leader).total_seconds()
    assert PERIOD_S * 0.8 <= takeover_gap <= LOCK_TIMEOUT_S + 2.5, takeover_gap
    assert all(0.8 <= g <= 1.6 for g in gaps(after)), gaps(after)
    assert {pid for pid, _ in sends(cache)} == {leader.pid, standby.pid}

    # The liveness probe reads the beat's heartbeat file, touched on every tick
    assert probe_beat(standby.env, standby.workdir).returncode == 0

    # And a clean stop releases the lock for the next beat at once
    standby.process.send_signal(signal.SIGTERM)
    assert standby.process.wait(15) == 0, standby.log()
    assert cache.get(LOCK_KEY) is None
    cache.close()
    # With no beat ticking, the probe fails once the file is older than allowed
    time.sleep(1.2)
    stopped = probe_beat(standby.env, standby.workdir, "--max-age", "1")
    assert stopped.returncode == 2 and "old (limit 1 s)" in stopped.stderr


def probe_beat(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HYPERWATCH, "health", "beat", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
