"""Grouping: when a channel's notification goes out on its own, and when it waits for a
digest. Alertmanager's three windows, per subscriber channel, plus the channel kind's rate
budget (``domain.notify.budgets``).

- ``group_wait``: the first notification of a new group (a channel with nothing sent
  within its group interval) waits this long, collecting what follows into one message.
  0 (the default) sends it at once, so a single firing is never delayed.
- ``group_interval``: after a message, whatever arrives before the interval ends waits,
  and goes out as one digest when it ends. 0: every notification on its own.
- ``repeat_interval``: an alert already delivered on the channel less than this long ago
  does not go out on its own again; it waits, and goes out in the channel's next digest —
  the next time anything else of the channel may go, or when its repeat interval ends.
- The budget: a notification the bucket cannot pay for waits for the digest, which goes
  out when a token is there. Nothing is dropped, nothing is sent into a 429.

The state is in Redis (``keys.NOTIFY_GROUP``, ``keys.NOTIFY_WAITING``,
``keys.NOTIFY_MENTIONED``), changed by one Lua script per decision, so any number of
workers agree. The database stays the truth: a waiting notification is a ``pending`` row;
the digest task (``tasks.notify.digest``) folds the waiting rows into a digest row in one
transaction. If Redis forgets, the outbox sweeper re-enqueues the pending rows and they
are admitted again — a message may then go out alone that would have been in a digest,
never lost.

Times are integer ms passed in by the caller (no clock here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import redis

from domain.notify.budgets import Budget
from runtime import keys

# A digest due this long ago and still not run lost its message: the next admission
# schedules it again.
FLUSH_GRACE_MS: Final = 5_000
STATE_TTL_MS: Final = 86_400_000

# KEYS: group, waiting, mentioned. ARGV: now, group_wait, group_interval, repeat_interval
# (ms), burst (0: no budget), refill per ms, notification id, alert id ('' for none),
# grace, ttl. Returns {1} send now, or {0, due ms, 1 if the digest must be scheduled}.
_ADMIT: Final = """
local now = tonumber(ARGV[1])
local gw, gi, ri = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local burst, rate = tonumber(ARGV[5]), tonumber(ARGV[6])
local nid, aid, grace, ttl = ARGV[7], ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10])
local g = redis.call('HMGET', KEYS[1], 'until', 'flush', 'tokens', 'ts')
local untl = tonumber(g[1]) or 0
local flush = tonumber(g[2])
local tokens = tonumber(g[3])
local ts = tonumber(g[4]) or now
if burst > 0 then
  if tokens == nil then tokens = burst end
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
else
  tokens = 0
end
local function save()
  redis.call('HSET', KEYS[1], 'until', untl, 'tokens', tokens, 'ts', now)
  if flush then redis.call('HSET', KEYS[1], 'flush', flush) end
  redis.call('PEXPIRE', KEYS[1], ttl)
end
local function wait(at)
  redis.call('ZADD', KEYS[2], tonumber(nid), nid)
  redis.call('PEXPIRE', KEYS[2], ttl)
  local schedule = 0
  if flush == nil or at < flush or now > flush + grace then
    flush = at
    schedule = 1
  end
  save()
  return {0, flush, schedule}
end
if ri > 0 and aid ~= '' then
  local last = tonumber(redis.call('HGET', KEYS[3], aid))
  if last and now < last + ri then return wait(math.max(last + ri, untl, now)) end
end
if now < untl then return wait(untl) end
if redis.call('ZCARD', KEYS[2]) > 0 then
  -- Others wait (for a repeat interval or the budget): this one goes with them, in a
  -- digest due as soon as the budget allows.
  if burst > 0 and tokens < 1 then return wait(now + math.ceil((1 - tokens) / rate)) end
  return wait(now)
end
if gw > 0 then
  untl = now + gw
  return wait(untl)
end
if burst > 0 and tokens < 1 then
  return wait(now + math.ceil((1 - tokens) / rate))
end
if burst > 0 then tokens = tokens - 1 end
untl = now + gi
save()
if aid ~= '' then
  redis.call('HSET', KEYS[3], aid, now)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
return {1}
"""

# KEYS: group, waiting. ARGV: now, group_interval, burst, refill per ms, ttl.
# Returns {1, member ids...} to send the digest now (a token taken, a new interval begun),
# {0, due ms} when the budget is empty (the digest must be scheduled again), {2, due ms}
# when it is not due yet (its scheduled run comes), {3} when nothing waits.
_FLUSH: Final = """
local now, gi = tonumber(ARGV[1]), tonumber(ARGV[2])
local burst, rate, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local g = redis.call('HMGET', KEYS[1], 'until', 'flush', 'tokens', 'ts')
local flush = tonumber(g[2])
local tokens = tonumber(g[3])
local ts = tonumber(g[4]) or now
if redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('HDEL', KEYS[1], 'flush')
  return {3}
end
if flush and now < flush then return {2, flush} end
if burst > 0 then
  if tokens == nil then tokens = burst end
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
  if tokens < 1 then
    flush = now + math.ceil((1 - tokens) / rate)
    redis.call('HSET', KEYS[1], 'flush', flush, 'tokens', tokens, 'ts', now)
    return {0, flush}
  end
  tokens = tokens - 1
else
  tokens = 0
end
redis.call('HSET', KEYS[1], 'until', now + gi, 'tokens', tokens, 'ts', now)
redis.call('HDEL', KEYS[1], 'flush')
redis.call('PEXPIRE', KEYS[1], ttl)
local out = {1}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do out[#out + 1] = id end
return out
"""


@dataclass(frozen=True, slots=True)
class Windows:
    """A channel's grouping windows (ms) and its kind's budget (None: unlimited)."""

    group_wait_ms: int = 0
    group_interval_ms: int = 0
    repeat_interval_ms: int = 0
    budget: Budget | None = None

    @property
    def always_alone(self) -> bool:
        """Nothing can make a notification wait: no window, no budget (skip Redis)."""
        return not (
            self.group_wait_ms or self.group_interval_ms or self.repeat_interval_ms or self.budget
        )


@dataclass(frozen=True, slots=True)
class Admission:
    send: bool
    due_ms: int = 0  # when the digest it waits for is due
    schedule: bool = False  # this decision set that time: the caller schedules the digest


@dataclass(frozen=True, slots=True)
class FlushDecision:
    go: bool
    members: tuple[int, ...] = ()
    due_ms: int | None = None  # when to try again (None: nothing to do)
    reschedule: bool = False  # the budget moved it: the caller schedules the new time


def _keys(channel_id: int) -> list[str]:
    return [
        keys.NOTIFY_GROUP.name(channel_id=channel_id),
        keys.NOTIFY_WAITING.name(channel_id=channel_id),
        keys.NOTIFY_MENTIONED.name(channel_id=channel_id),
    ]


def _rate(windows: Windows) -> tuple[int, float]:
    budget = windows.budget
    return (budget.burst, budget.per_second / 1000) if budget else (0, 0.0)


def _admission(out: Sequence[int]) -> Admission:
    if int(out[0]) == 1:
        return Admission(send=True)
    return Admission(send=False, due_ms=int(out[1]), schedule=bool(int(out[2])))


class Gate:
    """The grouping decisions of one Redis (see module)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._admit = client.register_script(_ADMIT)
        self._flush = client.register_script(_FLUSH)

    def admit(
        self,
        channel_id: int,
        windows: Windows,
        notification_id: int,
        alert_id: int | None,
        now_ms: int,
    ) -> Admission:
        """May this notification go out alone now? If not, it waits for the digest."""
        if windows.always_alone:
            return Admission(send=True)
        burst, rate = _rate(windows)
        args = [
            now_ms, windows.group_wait_ms, windows.group_interval_ms,
            windows.repeat_interval_ms, burst, repr(rate), notification_id,
            "" if alert_id is None else alert_id, FLUSH_GRACE_MS, STATE_TTL_MS,
        ]  # fmt: skip
        return _admission(self._admit(keys=_keys(channel_id), args=args))

    def admit_many(
        self, requests: Sequence[tuple[int, Windows, int, int | None]], now_ms: int
    ) -> list[Admission]:
        """:meth:`admit` for many (channel id, windows, notification id, alert id) in one
        round trip: the scripts run in order, as the same calls one by one would."""
        out: list[Admission | None] = []
        pipe = self._client.pipeline(transaction=False)
        for channel_id, windows, notification_id, alert_id in requests:
            if windows.always_alone:
                out.append(Admission(send=True))
                continue
            burst, rate = _rate(windows)
            args = [
                now_ms, windows.group_wait_ms, windows.group_interval_ms,
                windows.repeat_interval_ms, burst, repr(rate), notification_id,
                "" if alert_id is None else alert_id, FLUSH_GRACE_MS, STATE_TTL_MS,
            ]  # fmt: skip
            self._admit(keys=_keys(channel_id), args=args, client=pipe)
            out.append(None)
        replies = iter(pipe.execute() if len(pipe) else [])
        return [a if a is not None else _admission(next(replies)) for a in out]

    def flush(self, channel_id: int, windows: Windows, now_ms: int) -> FlushDecision:
        """Whether the channel's digest goes now, and with which waiting notifications."""
        burst, rate = _rate(windows)
        args = [now_ms, windows.group_interval_ms, burst, repr(rate), STATE_TTL_MS]
        out = self._flush(keys=_keys(channel_id)[:2], args=args)
        code = int(out[0])
        if code == 1:
            return FlushDecision(go=True, members=tuple(int(m) for m in out[1:]))
        if code == 3:
            return FlushDecision(go=False)
        return FlushDecision(go=False, due_ms=int(out[1]), reschedule=code == 0)

    def settled(
        self, channel_id: int, members: Sequence[int], alert_ids: Sequence[int], now_ms: int
    ) -> None:
        """The digest of ``members`` is committed: they stop waiting; its alerts were
        delivered now (what the repeat interval counts from)."""
        _, waiting, mentioned = _keys(channel_id)
        pipe = self._client.pipeline(transaction=True)
        if members:
            pipe.zrem(waiting, *members)
        if alert_ids:
            pipe.hset(mentioned, mapping={str(a): now_ms for a in alert_ids})
            pipe.pexpire(mentioned, STATE_TTL_MS)
        pipe.execute()


class GroupModel:
    """The same decisions as :class:`Gate` for one channel, in memory: what a backtest
    uses to say what would have been sent (``domain.alerts.backtest``). A test holds it to
    the Lua scripts decision for decision."""

    def __init__(self, windows: Windows) -> None:
        self.windows = windows
        self.until = 0
        self.flush_at: int | None = None
        self.tokens: float | None = None
        self.ts: int | None = None
        self.waiting: list[int] = []
        self.mentioned: dict[int, int] = {}

    def _refill(self, now_ms: int) -> float:
        budget = self.windows.budget
        if budget is None:
            return 0.0
        rate = budget.per_second / 1000
        tokens = float(budget.burst) if self.tokens is None else self.tokens
        ts = now_ms if self.ts is None else self.ts
        return min(float(budget.burst), tokens + max(0, now_ms - ts) * rate)

    def _token_wait(self, tokens: float) -> int:
        # As the script computes it: the same doubles, so the same millisecond.
        budget = self.windows.budget
        assert budget is not None
        return math.ceil((1 - tokens) / (budget.per_second / 1000))

    def _wait(self, notification_id: int, at: int, now_ms: int, tokens: float) -> Admission:
        if notification_id not in self.waiting:
            self.waiting.append(notification_id)
        schedule = (
            self.flush_at is None or at < self.flush_at or now_ms > self.flush_at + FLUSH_GRACE_MS
        )
        if schedule:
            self.flush_at = at
        self.tokens, self.ts = tokens, now_ms
        return Admission(send=False, due_ms=self.flush_at or at, schedule=schedule)

    def admit(self, notification_id: int, alert_id: int | None, now_ms: int) -> Admission:
        w = self.windows
        if w.always_alone:
            return Admission(send=True)
        tokens = self._refill(now_ms)
        if w.repeat_interval_ms and alert_id is not None:
            last = self.mentioned.get(alert_id)
            if last is not None and now_ms < last + w.repeat_interval_ms:
                at = max(last + w.repeat_interval_ms, self.until, now_ms)
                return self._wait(notification_id, at, now_ms, tokens)
        if now_ms < self.until:
            return self._wait(notification_id, self.until, now_ms, tokens)
        if self.waiting:
            if w.budget is not None and tokens < 1:
                return self._wait(
                    notification_id, now_ms + self._token_wait(tokens), now_ms, tokens
                )
            return self._wait(notification_id, now_ms, now_ms, tokens)
        if w.group_wait_ms:
            self.until = now_ms + w.group_wait_ms
            return self._wait(notification_id, self.until, now_ms, tokens)
        if w.budget is not None and tokens < 1:
            return self._wait(notification_id, now_ms + self._token_wait(tokens), now_ms, tokens)
        if w.budget is not None:
            tokens -= 1
        self.until = now_ms + w.group_interval_ms
        self.tokens, self.ts = tokens, now_ms
        if alert_id is not None:
            self.mentioned[alert_id] = now_ms
        return Admission(send=True)

    def flush(self, now_ms: int) -> FlushDecision:
        if not self.waiting:
            self.flush_at = None
            return FlushDecision(go=False)
        if self.flush_at is not None and now_ms < self.flush_at:
            return FlushDecision(go=False, due_ms=self.flush_at)
        tokens = 0.0
        if self.windows.budget is not None:
            tokens = self._refill(now_ms)
            if tokens < 1:
                self.flush_at = now_ms + self._token_wait(tokens)
                self.tokens, self.ts = tokens, now_ms
                return FlushDecision(go=False, due_ms=self.flush_at, reschedule=True)
            tokens -= 1
        self.until = now_ms + self.windows.group_interval_ms
        self.tokens, self.ts = tokens, now_ms
        self.flush_at = None
        members = tuple(sorted(self.waiting))
        return FlushDecision(go=True, members=members)

    def settled(self, members: Sequence[int], alert_ids: Sequence[int], now_ms: int) -> None:
        self.waiting = [m for m in self.waiting if m not in set(members)]
        for alert_id in alert_ids:
            self.mentioned[alert_id] = now_ms
