"""Redis pub/sub: the canonical JSON document published on ``keys.NOTIFY_USER_CHANNEL``.

Pub/sub keeps nothing: a subscriber that is not connected at that moment misses the
message (Redis reports how many received it; zero is still a completed delivery). Use a
webhook for anything that must not be missed. A Redis error is retried like a network
error.
"""

from __future__ import annotations

import redis

from domain.notify.channels.base import Attempt, DeliveryContext, Outgoing
from runtime import keys


def user_channel(user_id: int) -> str:
    return keys.NOTIFY_USER_CHANNEL.name(user_id=user_id)


class RedisChannel:
    kind = "redis"

    def send(self, out: Outgoing, ctx: DeliveryContext) -> Attempt:
        try:
            receivers = ctx.redis.publish(user_channel(out.user_id), out.body())
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            return Attempt(ConnectionError(str(exc)))
        except redis.RedisError as exc:
            return Attempt(exc)
        return Attempt(200, detail=f"{receivers} subscriber(s)")
