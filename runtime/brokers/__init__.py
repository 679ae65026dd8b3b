"""Broker kinds behind one seam, chosen by the broker URL's scheme (as kombu picks its
transports, ``kombu.transport.TRANSPORT_ALIASES``): :mod:`.redis` for ``redis://``,
``rediss://`` and ``unix://``, :mod:`.sentinel` for ``sentinel://``, :mod:`.amqp` for
``amqp://`` and ``pyamqp://`` (RabbitMQ, quorum queues). The contract is
:class:`~runtime.brokers.base.Broker`; the rest of the code never looks at the scheme.
"""

from __future__ import annotations

from runtime.brokers.amqp import AmqpBroker
from runtime.brokers.base import Broker
from runtime.brokers.redis import RedisBroker
from runtime.brokers.sentinel import SentinelBroker
from runtime.redis_clients import is_sentinel
from settings import Settings

__all__ = [
    "AmqpBroker",
    "Broker",
    "RedisBroker",
    "SentinelBroker",
    "for_settings",
    "for_url",
    "kind_of",
]


AMQP_SCHEMES = ("amqp://", "pyamqp://", "amqps://")
DEFAULT_DELIVERY_LIMIT = 20


def is_amqp(url: str) -> bool:
    return url.startswith(AMQP_SCHEMES)


def kind_of(url: str) -> str:
    """``"amqp"``, ``"sentinel"`` or ``"redis"`` (settings validated the URL already)."""
    if is_amqp(url):
        return AmqpBroker.kind
    return SentinelBroker.kind if is_sentinel(url) else RedisBroker.kind


def for_url(
    url: str,
    master_name: str,
    timeout_s: float = 2.0,
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
) -> Broker:
    """The broker kind of ``url``; ``master_name`` is used by Sentinel only,
    ``delivery_limit`` by RabbitMQ only."""
    if is_amqp(url):
        return AmqpBroker(url, delivery_limit, timeout_s)
    if is_sentinel(url):
        return SentinelBroker(url, master_name, timeout_s)
    return RedisBroker(url, timeout_s)


def for_settings(settings: Settings, timeout_s: float = 2.0) -> Broker:
    """The deployment's broker (``BROKER_URL``, else ``REDIS_URL``)."""
    return for_url(
        settings.effective_broker_url,
        settings.effective_broker_sentinel_master,
        timeout_s,
        settings.broker_delivery_limit,
    )
