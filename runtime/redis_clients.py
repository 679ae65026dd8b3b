"""Redis clients for probes, heartbeats and locks: they answer or fail within seconds.

redis-py 8 retries a failed command ten times with exponential backoff by default — right
for a publisher that must get through a blip, wrong for anything whose job is to notice
that Redis is gone: a health check would take tens of seconds to say "down", a heartbeat
thread would stall, a beat would sit on a lock it can no longer prove. One quick retry
absorbs a dropped idle connection; anything longer is an outage and is reported as one.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def quick_redis(url: str, timeout_s: float = 2.0) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1),
    )
