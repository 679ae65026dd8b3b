"""Broker kinds behind one seam, chosen by the broker URL's scheme (as kombu picks its
transports, ``kombu.transport.TRANSPORT_ALIASES``): :mod:`.redis` for ``redis://``,
``rediss://`` and ``unix://``, :mod:`.sentinel` for ``sentinel://``. The contract is
:class:`~runtime.brokers.base.Broker`; the rest of the code never looks at the scheme.

RabbitMQ (``amqp://``, quorum queues) is not a kind yet: docs/ARCHITECTURE.md, decision 13,
says what it would need; settings refuse such a URL until then.
"""

from __future__ import annotations

from runtime.brokers.base import Broker
from runtime.brokers.redis import RedisBroker
from runtime.brokers.sentinel import SentinelBroker
from runtime.redis_clients import is_sentinel
from settings import Settings

__all__ = ["Broker", "RedisBroker", "SentinelBroker", "for_settings", "for_url", "kind_of"]


def kind_of(url: str) -> str:
    """``"sentinel"`` or ``"redis"`` (settings validated the URL already)."""
    return SentinelBroker.kind if is_sentinel(url) else RedisBroker.kind


def for_url(url: str, master_name: str, timeout_s: float = 2.0) -> Broker:
    """The broker kind of ``url``; ``master_name`` is used by Sentinel only."""
    if is_sentinel(url):
        return SentinelBroker(url, master_name, timeout_s)
    return RedisBroker(url, timeout_s)


def for_settings(settings: Settings, timeout_s: float = 2.0) -> Broker:
    """The deployment's broker (``BROKER_URL``, else ``REDIS_URL``)."""
    return for_url(
        settings.effective_broker_url, settings.effective_broker_sentinel_master, timeout_s
    )
