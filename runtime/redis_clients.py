"""Redis clients from a URL: plain (``redis://``, ``rediss://``, ``unix://``) or through Redis
Sentinel (``sentinel://``), and the quick ones for probes, heartbeats and locks.

Sentinel URLs use kombu's format, so one string works for the broker and the cache:
``sentinel://[:password@]host:port;sentinel://host:port/db`` — one ``sentinel://`` part per
sentinel node, the database (and the password of the Redis nodes) on any part. The master's
name is not in the URL (kombu takes it as a transport option): it is ``REDIS_SENTINEL_MASTER``
/ ``BROKER_SENTINEL_MASTER``, passed here as ``master_name``. The client asks the sentinels
for the current primary on every (re)connect, so after a failover the next command reaches
the promoted node; a command that was in flight fails like any connection error.

Quick clients: redis-py 8 retries a failed command ten times with exponential backoff by
default — right for a publisher that must get through a blip, wrong for anything whose job
is to notice that Redis is gone: a health check would take tens of seconds to say "down", a
heartbeat thread would stall, a beat would sit on a lock it can no longer prove. One quick
retry absorbs a dropped idle connection; anything longer is an outage and is reported as one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from settings import Settings

SENTINEL_SCHEME = "sentinel"
DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """A ``sentinel://`` URL, parsed: the sentinel nodes and how to talk to the primary."""

    nodes: tuple[tuple[str, int], ...]
    db: int
    username: str | None
    password: str | None


def is_sentinel(url: str) -> bool:
    return url.startswith(f"{SENTINEL_SCHEME}://")


def parse_sentinel_url(url: str) -> SentinelTarget:
    """kombu's ``sentinel://h:p;sentinel://h:p/db`` → :class:`SentinelTarget` (ValueError
    naming what is wrong)."""
    nodes: list[tuple[str, int]] = []
    db, username, password = 0, None, None
    for part in url.split(";"):
        split = urlsplit(part.strip())
        if split.scheme != SENTINEL_SCHEME or not split.hostname:
            raise ValueError(f"{part!r} is not sentinel://host:port")
        nodes.append((split.hostname, split.port or DEFAULT_SENTINEL_PORT))
        path = split.path.strip("/")
        if path:
            if not path.isdigit():
                raise ValueError(f"database {path!r} is not a number")
            db = int(path)
        username = unquote(split.username) if split.username else username
        password = unquote(split.password) if split.password else password
    return SentinelTarget(tuple(nodes), db, username, password)


def sentinel_for(url: str, timeout_s: float | None = None) -> Sentinel:
    """A :class:`Sentinel` over the URL's nodes (the sentinels themselves carry no password
    here: the URL's password is the Redis nodes')."""
    target = parse_sentinel_url(url)
    kwargs = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    return Sentinel(list(target.nodes), sentinel_kwargs=kwargs)


def redis_client(url: str, master_name: str | None = None, **kwargs: Any) -> redis.Redis:
    """``redis.Redis.from_url(url, **kwargs)``, or for a ``sentinel://`` URL the client of
    ``master_name``'s current primary (the same keyword arguments apply to it)."""
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **kwargs)
    if not master_name:
        raise ValueError("a sentinel:// URL needs the master's name")
    target = parse_sentinel_url(url)
    timeout = kwargs.get("socket_connect_timeout", kwargs.get("socket_timeout"))
    sentinel = sentinel_for(url, timeout)
    creds = {"username": target.username, "password": target.password, "db": target.db}
    return sentinel.master_for(master_name, redis_class=redis.Redis, **creds, **kwargs)


def quick_redis(url: str, timeout_s: float = 2.0, master_name: str | None = None) -> redis.Redis:
    return redis_client(
        url,
        master_name,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1),
    )


def cache_redis(settings: Settings, timeout_s: float = 2.0) -> redis.Redis:
    """A quick client of the cache Redis (``REDIS_URL``)."""
    return quick_redis(settings.redis_url, timeout_s, settings.redis_sentinel_master)


def cache_client(settings: Settings, **kwargs: Any) -> redis.Redis:
    """A client of the cache Redis with the caller's own options (timeouts, retries)."""
    return redis_client(settings.redis_url, settings.redis_sentinel_master, **kwargs)


def primary_address(url: str, master_name: str, timeout_s: float = 2.0) -> str:
    """``host:port`` of the primary the sentinels name now (raises a RedisError when none
    answers or none knows ``master_name``)."""
    host, port = sentinel_for(url, timeout_s).discover_master(master_name)
    return f"{host}:{port}"
