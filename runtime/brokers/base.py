"""The contract every broker kind keeps; one module per kind implements it.

hyperwatch talks to its broker through kombu, but each broker kind needs its own answers to
a few questions, and the rest of the code asks them here instead of looking at the URL:

- :meth:`Broker.install` — what this kind changes in kombu before anything connects. It
  checks the installed kombu first and raises ``runtime.transport.TransportMismatch`` (one
  line; the processes exit 2) instead of patching a kombu it was not written for.
  Idempotent, cheap, called once per process at start.
- :meth:`Broker.transport_options` — kombu transport options this kind needs beyond the
  deployment's (Celery's ``broker_transport_options``, the ingester's connection).
- :attr:`Broker.confirms_end_to_end` — whether the ingester needs the end-to-end batch
  confirmations (runtime/confirmations.py) because the transport can lose a delivered but
  not yet recorded message; and :meth:`Broker.quiet`, the state in which an unconfirmed
  batch can no longer be on its way (only then is it re-sent).
- :meth:`Broker.queue_depths` — messages waiting per hyperwatch queue, for health, metrics
  and autoscalers.
- :meth:`Broker.primary` — which node serves as the broker now (health shows it), or None
  when the URL names the only one.
- :meth:`Broker.declare`, :meth:`Broker.publish_options`, :meth:`Broker.celery_config` —
  what the ingester declares before it publishes, what it passes to each publish, and the
  Celery settings this kind changes (RabbitMQ's quorum queues; nothing on Redis).

Reading methods may block for the client's timeout and raise the client's errors; they
never answer "empty" for "unreadable" (health turns an error into a Failure).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar


class Broker(ABC):
    kind: ClassVar[str]
    confirms_end_to_end: ClassVar[bool]
    # The shortest countdown a task message can be delayed by (a shorter one is raised to it)
    min_countdown_s: ClassVar[float] = 0.0

    def __init__(self, url: str) -> None:
        self.url = url

    @abstractmethod
    def install(self) -> None:
        """Apply this kind's kombu changes in this process (checked; idempotent)."""

    @abstractmethod
    def transport_options(self) -> dict[str, Any]:
        """kombu transport options this kind needs (merged over the deployment's)."""

    def publish_options(self) -> dict[str, Any]:
        """Extra keyword arguments for kombu's ``Producer.publish`` (none by default)."""
        return {}

    def declare(self, channel: Any, names: tuple[str, ...]) -> None:  # noqa: B027
        """Declare ``names`` on ``channel`` before publishing to them, when the kind needs
        it (RabbitMQ); the Redis kinds' lists need nothing."""

    def celery_config(self, names: tuple[str, ...]) -> dict[str, Any]:
        """Celery settings this kind changes (queues ``names`` declared its way); the
        Redis kinds change none."""
        return {}

    @abstractmethod
    def queue_depths(self, queues: tuple[str, ...]) -> dict[str, int]:
        """Messages waiting on each of ``queues``."""

    @abstractmethod
    def quiet(self) -> bool:
        """True when nothing is queued on ``ingest`` or delivered-but-unacknowledged."""

    @abstractmethod
    def primary(self) -> str | None:
        """``host:port`` of the node that serves now, when the kind has a choice of nodes."""

    @abstractmethod
    def ping(self) -> None:
        """One round trip to the broker (raises when it does not answer)."""

    @abstractmethod
    def close(self) -> None:
        """Release the connections reading methods opened."""
