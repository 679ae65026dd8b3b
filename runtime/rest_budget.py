"""One Hyperliquid REST weight budget, shared by every process through Redis, with priorities.

The exchange allows 1,200 weight a minute per IP, ``exchange`` calls included (reference
§7.1). Every hyperwatch process that calls ``/info`` — gap healing, the position poller,
coin look-ups — takes weight from one per-minute window in Redis (``keys.REST_WEIGHT``,
limit ``REST_WEIGHT_PER_MINUTE``), so together they stay below it however many run.

Priorities: a caller may fill the window only up to its priority's share of the limit, so
routine polling can never starve the work that makes the record complete. Healing may use
all of it; position polling 80 %; everything else 60 %.
"""

from __future__ import annotations

import enum
from typing import Final

import redis

from runtime import keys
from runtime.clock import SYSTEM_CLOCK, Clock


class Priority(enum.IntEnum):
    HEAL = 0  # filling gaps: the record's completeness depends on it
    POSITIONS = 1  # wallets beyond the WebSocket limit (near-liquidation wallets first)
    ROUTINE = 2  # look-ups that can wait a minute


SHARE: Final[dict[Priority, float]] = {
    Priority.HEAL: 1.0,
    Priority.POSITIONS: 0.8,
    Priority.ROUTINE: 0.6,
}
BASE_WEIGHT: Final = 20  # most /info types (reference §7.1)
LIGHT_WEIGHT: Final = 2  # l2Book, allMids, clearinghouseState, …

# KEYS[1] window key, ARGV[1] weight, ARGV[2] limit: take the weight only if it fits.
_TAKE: Final = """
local used = tonumber(redis.call('get', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then
  return 0
end
redis.call('incrby', KEYS[1], ARGV[1])
redis.call('expire', KEYS[1], 120)
return 1
"""


def items_weight(items: int, per: int = 20) -> int:
    """The extra weight a response of ``items`` elements costs (per 20, or 60 for candles)."""
    return items // per


class RestBudget:
    """Take weight before a call; charge what the response turned out to cost after it."""

    def __init__(self, client: redis.Redis, per_minute: int, clock: Clock = SYSTEM_CLOCK) -> None:
        self._take = client.register_script(_TAKE)
        self._client = client
        self.per_minute = per_minute
        self._clock = clock

    def _key(self) -> str:
        return keys.REST_WEIGHT.name(minute=int(self._clock.time() // 60))

    def take(self, weight: int, priority: Priority = Priority.ROUTINE) -> bool:
        """Reserve ``weight`` in this minute's window if it fits under the priority's share."""
        limit = int(self.per_minute * SHARE[priority])
        return self._take(keys=[self._key()], args=[weight, limit]) == 1

    def charge(self, weight: int) -> None:
        """Record weight already spent (a response's per-item extra): never refused."""
        if weight > 0:
            pipe = self._client.pipeline(transaction=False)
            pipe.incrby(self._key(), weight)
            pipe.expire(self._key(), 120)
            pipe.execute()
