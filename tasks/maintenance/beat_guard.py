"""Exactly one beat schedules: a Redis lock held by the scheduling beat, renewed every tick.

Why this and not celery-redbeat: RedBeat keeps the *schedule itself* in Redis. Ours is
code (``beat_schedule.py``), so that buys nothing and costs something: when Redis restarts
without its data the entries vanish and beat schedules nothing until it is restarted
(sibson/redbeat#224, #263), and its lock defaults to 25 minutes. What beats must share is
only *who* schedules and *when each entry last ran*; this scheduler keeps exactly that:

- ``keys.BEAT_LOCK`` — the leader's owner id, expiring after ``BEAT_LOCK_TIMEOUT_S``, renewed
  on every tick by a compare-and-expire script (so only the owner extends it);
- ``keys.BEAT_LAST_RUN`` — entry name → epoch seconds of its last send.

A second beat started beside the first is a warm standby: it retries the lock every few
seconds and sends nothing. When the leader stops cleanly it deletes the lock and the
standby takes over within one retry; when the leader dies, within the lock timeout. A new
leader first loads ``last_run``, so it continues the cadence instead of running everything
at once or restarting every period. While Redis is unreachable no beat can prove it holds
the lock, so none sends (the broker is that Redis: a send would fail anyway). A leader
whose lock vanished (Redis lost its data) notices at the next renewal and competes again.

Liveness: every tick (leader or standby) touches ``<DATA_DIR>/heartbeats/beat@<host>``, so
``hyperwatch health beat`` works as the beat's exec liveness probe — without Redis, like
the worker's (a standby ticks too, and stays alive while it waits).

Limit: a leader frozen for longer than the lock timeout (SIGSTOP, a publish hung past the
timeout) can overlap its successor for one tick; the jobs are idempotent and every entry
carries ``expires``, which bounds what a backlog can repeat.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from typing import Any

import redis
from celery.beat import ScheduleEntry, Scheduler

from runtime import keys
from runtime.heartbeat import heartbeat_path
from runtime.redis_clients import cache_redis

log = logging.getLogger(__name__)

LOCK_KEY = keys.BEAT_LOCK.name()
LAST_RUN_KEY = keys.BEAT_LAST_RUN.name()

# KEYS[1] lock, ARGV[1] owner, ARGV[2] ttl ms: extend only a lock we still own.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
# Delete only our own lock: a successor's must survive our late shutdown.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class ScheduleLock:
    """A Redis lock with an owner token and a TTL. Raises redis errors to the caller."""

    def __init__(self, client: redis.Redis, ttl_s: float, owner: str, key: str = LOCK_KEY) -> None:
        self._client = client
        self._ttl_ms = int(ttl_s * 1000)
        self.owner = owner
        self.key = key
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def hold(self) -> bool:
        """Renew the lock if we own it, else try to take it. True when we hold it now."""
        if self._renew(keys=[self.key], args=[self.owner, self._ttl_ms]) == 1:
            return True
        return bool(self._client.set(self.key, self.owner, nx=True, px=self._ttl_ms))

    def release(self) -> bool:
        return self._release(keys=[self.key], args=[self.owner]) == 1

    def holder(self) -> str | None:
        value = self._client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value


class SingleBeatScheduler(Scheduler):
    """celery.beat.Scheduler that only sends while it holds :data:`LOCK_KEY`.

    Keeps no local schedule file: the schedule is code, the shared state is in Redis.
    """

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        settings = app.settings
        self._lock_timeout_s: float = settings.beat_lock_timeout_s
        self._client = cache_redis(settings)
        self._lock = ScheduleLock(self._client, self._lock_timeout_s, owner_id())
        self._leading = False
        self._redis_ok = True
        self._standby_logged = False
        self.heartbeat_file = heartbeat_path(settings.data_dir, f"beat@{socket.gethostname()}")
        self._heartbeat_ok = True
        super().__init__(app, *args, **kwargs)
        # Renew well inside the timeout even when nothing is due for an hour.
        self.max_interval = min(self.max_interval, self._lock_timeout_s / 3)  # type: ignore[has-type]
        self.standby_poll_s = min(2.0, self._lock_timeout_s / 3)

    @property
    def leading(self) -> bool:
        return self._leading

    def install_default_entries(self, data: Any) -> None:
        # Celery would add `celery.backend_cleanup`; results are off (task_ignore_result),
        # so there is no result backend to clean and the entry would only add noise.
        return None

    def tick(self, *args: Any, **kwargs: Any) -> float:
        self._touch()
        if not self._lead():
            return self.standby_poll_s
        return float(super().tick(*args, **kwargs))

    def reserve(self, entry: ScheduleEntry) -> ScheduleEntry:
        new_entry: ScheduleEntry = super().reserve(entry)
        try:
            self._client.hset(LAST_RUN_KEY, entry.name, new_entry.last_run_at.timestamp())
        except (redis.RedisError, OSError) as exc:
            log.warning("beat: last run of %s not recorded: %s", entry.name, exc)
        return new_entry

    def close(self) -> None:
        try:
            if self._leading and self._lock.release():
                log.info("beat: released the schedule lock")
        except (redis.RedisError, OSError) as exc:
            log.warning("beat: schedule lock not released (expires by itself): %s", exc)
        self._leading = False
        super().close()
        self._client.close()

    def _touch(self) -> None:
        try:
            self.heartbeat_file.parent.mkdir(parents=True, exist_ok=True)
            self.heartbeat_file.touch()
        except OSError as exc:
            if self._heartbeat_ok:
                log.error("beat: heartbeat file %s not touched: %s", self.heartbeat_file, exc)
            self._heartbeat_ok = False
            return
        self._heartbeat_ok = True

    # --- leadership ------------------------------------------------------------------------
    def _lead(self) -> bool:
        try:
            held = self._lock.hold()
        except (redis.RedisError, OSError) as exc:
            if self._redis_ok:
                log.error("beat: Redis unreachable, not scheduling until it is back: %s", exc)
            self._redis_ok = False
            self._leading = False
            return False
        if not self._redis_ok:
            log.info("beat: Redis reachable again")
        self._redis_ok = True
        if held and not self._leading:
            self._take_over()
        elif not held and self._leading:
            log.warning("beat: schedule lock lost; standing by")
        elif not held and not self._standby_logged:
            log.info("beat: another beat holds the schedule lock; standing by")
            self._standby_logged = True
        self._leading = held
        return held

    def _take_over(self) -> None:
        log.info("beat: holding the schedule lock as %s", self._lock.owner)
        self._standby_logged = False
        try:
            runs = self._client.hgetall(LAST_RUN_KEY)
        except (redis.RedisError, OSError) as exc:
            log.warning("beat: last runs not loaded, keeping local ones: %s", exc)
            runs = {}
        for raw_name, raw_ts in runs.items():
            name = raw_name.decode() if isinstance(raw_name, bytes) else raw_name
            entry = self.schedule.get(name)
            if entry is None:
                continue
            shared = dt.datetime.fromtimestamp(float(raw_ts), dt.UTC)
            # Keep whichever is newer: this beat may have led before Redis lost its data.
            if entry.last_run_at is None or shared > _aware(entry.last_run_at):
                entry.last_run_at = shared
        self._heap = None  # rebuild the due-order from the loaded times


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
