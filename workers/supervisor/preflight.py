"""Checks ``hyperwatch up`` makes before starting anything, each failing in one clear line.

Redis is the one dependency a first run cannot embed: it is the broker every process
talks to. Without it the worker and beat would retry forever and the ingester would buffer
in memory, which looks like a hang; saying so once, with how to start one, does not.
"""

from __future__ import annotations

import redis

from runtime.brokers import is_amqp
from runtime.redis_clients import redis_client
from settings import Settings, redact_url

CONNECT_TIMEOUT_S = 2.0


class Unreachable(Exception):
    """A dependency does not answer. ``str()`` is one line for the operator."""


def redis_urls(settings: Settings) -> list[tuple[str, str]]:
    """The cache and, when separate, the broker, each with its Sentinel master's name (used
    for a sentinel:// URL only): both must answer."""
    urls = [(settings.redis_url, settings.redis_sentinel_master)]
    if settings.effective_broker_url != settings.redis_url and not is_amqp(
        settings.effective_broker_url
    ):  # RabbitMQ: the worker and the ingester report and retry it themselves
        urls.append((settings.effective_broker_url, settings.effective_broker_sentinel_master))
    return urls


def require_redis(settings: Settings) -> list[str]:
    """Ping every Redis the processes need; return warnings, raise :class:`Unreachable`."""
    warnings: list[str] = []
    for url, master_name in redis_urls(settings):
        client = redis_client(
            url,
            master_name,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=CONNECT_TIMEOUT_S,
        )
        try:
            client.ping()
            warnings += _eviction_warning(client, url)
        except redis.RedisError as exc:
            reason = str(exc).strip().rstrip(".") or type(exc).__name__
            raise Unreachable(
                f"Redis at {redact_url(url)} is unreachable ({reason}). Start one with "
                "`redis-server --daemonize yes` (or `docker compose up -d redis`), "
                "or set REDIS_URL to one that runs."
            ) from None
        finally:
            client.close()
    return warnings


def _eviction_warning(client: redis.Redis, url: str) -> list[str]:
    # An evicting Redis silently drops queued messages and Celery's bindings
    # (InconsistencyError); managed Redis may forbid CONFIG, then we cannot tell.
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    except redis.RedisError:
        return []
    if isinstance(policy, bytes):
        policy = policy.decode()
    if policy and policy != "noeviction":
        return [
            f"Redis at {redact_url(url)} has maxmemory-policy {policy}; the broker needs "
            "noeviction or queued batches can be evicted"
        ]
    return []
