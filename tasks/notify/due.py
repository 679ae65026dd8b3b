"""Digests due: one Redis sorted set of the channels whose digest is due and when, run by
``hyperwatch.notify.flush_due`` — one message per tick of time (``TICK_MS``), not one
Celery message per channel and digest.

Why: in a cascade every subscriber channel schedules a digest per group interval — 10,000
channels at a 30 s interval is 10,000 countdown messages held in the notify workers'
memory. ``worker_eta_task_limit`` caps what a worker holds, after which it stops fetching
and the bursts' deliveries wait behind the digests; each message also costs its own trace
and task events (a fifth of a notify worker's time in the cascade bench's profile).

- :func:`schedule` (``Deliverer.schedule_flush`` in the workers): the channel enters the
  set at its due time — an earlier time wins over a later one — and the first to schedule
  anything for that time's tick sends the tick's message (``NOTIFY_DUE_TICK``, set once).
- :func:`run_due`: claims the channels due by now (each moved to ``now + CLAIM_MS`` in one
  script, so a concurrent tick skips them), flushes each (``tasks.notify.digest.flush``:
  idempotent — not due yet, or nothing waiting, does nothing), then removes each from the
  set unless it was scheduled again meanwhile. A full page sends the next run first, so
  the pages of a busy tick run side by side on the workers' threads.
- A worker killed mid-tick leaves its claimed channels in the set: when the claim lapses,
  the next tick runs them. A lost tick message leaves them for the next tick; with no
  tick at all (no notification scheduled anything since), the outbox sweeper re-enqueues
  their waiting rows, whose admission schedules their digest again — as for a lost
  digest message before.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Final

import redis

from runtime import keys

log = logging.getLogger(__name__)

FLUSH_DUE_TASK: Final = "hyperwatch.notify.flush_due"
# Digests due within one tick share its message: up to this much later than due.
TICK_MS: Final = 200
# A claimed channel is run by the claiming tick; after this, by any later one.
CLAIM_MS: Final = 60_000
# Channels one run claims: a full page sends the next run at once, before flushing its
# own, so a busy tick spreads over the notify workers' threads and processes.
PAGE: Final = 16

# KEYS: due, the tick's key. ARGV: due ms, channel, the tick key's ttl. 1 when the caller
# sends the tick's message: the channel's due time was set (added, or moved sooner) and
# no message is on its way for its tick yet.
_SCHEDULE: Final = """
if redis.call('ZADD', KEYS[1], 'LT', 'CH', ARGV[1], ARGV[2]) == 0 then return 0 end
if redis.call('SET', KEYS[2], 1, 'NX', 'PX', ARGV[3]) then return 1 end
return 0
"""
# KEYS: due. ARGV: now, claim until, page. The channels due by now, moved to the claim's end.
_CLAIM: Final = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, channel in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], channel)
end
return due
"""
# KEYS: due. ARGV: claim until, '' (remove) or a due time (give back), channel...
# Each channel still at its claim (not scheduled again meanwhile) is removed or given back.
_UNCLAIM: Final = """
local n = 0
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) == ARGV[1] then
    if ARGV[2] == '' then
      redis.call('ZREM', KEYS[1], ARGV[i])
    else
      redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[i])
    end
    n = n + 1
  end
end
return n
"""


def schedule(
    client: redis.Redis,
    channel_id: int,
    delay_s: float,
    now_ms: int,
    send_tick: Callable[[float], None],
) -> None:
    """The channel's digest is due in ``delay_s``: into the set (an earlier due time wins),
    and the tick's message sent with ``send_tick(countdown_s)`` unless one is on its way."""
    due_ms = now_ms + max(0, math.ceil(delay_s * 1000))
    tick_ms = -(-due_ms // TICK_MS) * TICK_MS
    first = client.eval(
        _SCHEDULE, 2, keys.NOTIFY_DUE.name(), keys.NOTIFY_DUE_TICK.name(tick_ms=tick_ms),
        due_ms, channel_id, tick_ms - now_ms + 60_000,
    )  # fmt: skip
    if first:
        send_tick(max(0.0, (tick_ms - now_ms) / 1000))


def run_due(
    client: redis.Redis,
    now_ms: int,
    flush: Callable[[int], object],
    more: Callable[[], None] = lambda: None,
) -> tuple[int, bool]:
    """Flush a page of the channels due by ``now_ms``: (channels run, the page was full).
    A full page calls ``more()`` (send the next run) before flushing any."""
    claim_until = now_ms + CLAIM_MS
    channels = [
        int(c) for c in client.eval(_CLAIM, 1, keys.NOTIFY_DUE.name(), now_ms, claim_until, PAGE)
    ]
    if len(channels) == PAGE:
        more()
    done: list[int] = []
    key = keys.NOTIFY_DUE.name()
    try:
        for channel_id in channels:
            flush(channel_id)
            done.append(channel_id)
    finally:
        if done:
            client.eval(_UNCLAIM, 1, key, claim_until, "", *map(str, done))
        # A flush that raised (a transient error: the task is retried) gives the rest back,
        # due now, for the retry to find.
        left = [str(c) for c in channels[len(done) :]]
        if left:
            client.eval(_UNCLAIM, 1, key, claim_until, now_ms, *left)
    return len(channels), len(channels) == PAGE
