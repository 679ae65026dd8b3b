"""RabbitMQ (``amqp://``, ``pyamqp://``): every hyperwatch queue a quorum queue.

Why quorum queues: they are RabbitMQ's replicated, durable queues (Raft), the kind its
documentation recommends for data that must not be lost; classic mirrored queues are gone
in RabbitMQ 4. Each queue is declared with

- ``x-queue-type: quorum``;
- ``x-delivery-limit`` (``BROKER_DELIVERY_LIMIT``): a message delivered and returned that
  many times (a task that keeps killing its worker) is dead-lettered instead of looping;
- ``x-dead-letter-exchange`` → the quorum queue :data:`DEAD_LETTER_QUEUE`, whose messages a
  maintenance task moves into the ``dead_letters`` table (``tasks.maintenance.dead_letters``).

by the workers (Celery's ``task_queues``, :meth:`AmqpBroker.celery_config`) *and* by the
ingester before its first publish (:meth:`AmqpBroker.declare`): it publishes to the default
exchange, and a message routed to a queue nobody has declared yet is dropped — confirmed
all the same. Declaring is idempotent with the same arguments.

Why no end-to-end confirmations: the ingester publishes with publisher confirms
(``confirm_publish``), so a publish returns only once the queue holds the message durably,
and RabbitMQ keeps a delivered message until the consumer acknowledges it (workers ack
late), returning it when the consumer's channel closes — there is no pop-then-record window
like kombu's Redis BRPOP. :attr:`confirms_end_to_end` is False: the ingester does not track
batches for re-sending; its outage replay still covers a publish whose confirm never came.

Celery's own advice for quorum queues is followed: ``worker_detect_quorum_queues`` (no
global QoS, which quorum queues refuse; countdown retries use Celery's native delayed
delivery). None of kombu is patched: the Redis codec and ``_brpop_read`` check are for the
Redis transport only, and RabbitMQ rejects what is not an AMQP message at the protocol.
"""

from __future__ import annotations

from typing import Any, ClassVar

from kombu import Connection, Exchange, Queue

from runtime.brokers.base import Broker

DEAD_LETTER_QUEUE = "hyperwatch.dead"


class AmqpBroker(Broker):
    kind: ClassVar[str] = "amqp"
    confirms_end_to_end: ClassVar[bool] = False
    # Celery's native delayed delivery counts whole seconds and refuses 0 (kombu 5.7
    # calculate_routing_key): a 0.7 s retry would raise, be rejected and requeued, and loop
    # until the delivery limit dead-letters the batch. Seen in the fault suite.
    min_countdown_s: ClassVar[float] = 1.0

    def __init__(self, url: str, delivery_limit: int, timeout_s: float = 2.0) -> None:
        super().__init__(url)
        self.delivery_limit = delivery_limit
        self.timeout_s = timeout_s
        self._conn: Connection | None = None

    # --- declarations --------------------------------------------------------------------
    def queue_arguments(self) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": DEAD_LETTER_QUEUE,
            "x-dead-letter-routing-key": DEAD_LETTER_QUEUE,
        }

    def queues(self, names: tuple[str, ...]) -> tuple[Queue, ...]:
        """Celery's queues as quorum queues, each behind a *topic* exchange of its name (a
        direct one on Redis): Celery's native delayed delivery, which carries countdown
        retries on quorum queues, binds its exchanges to topic exchanges only — behind a
        direct one a retry would wait inside the worker, holding a prefetch slot."""
        return tuple(
            Queue(
                name,
                Exchange(name, type="topic"),
                routing_key=name,
                queue_arguments=self.queue_arguments(),
            )
            for name in names
        )

    def dead_letter_queue(self) -> Queue:
        return Queue(
            DEAD_LETTER_QUEUE,
            Exchange(DEAD_LETTER_QUEUE, type="direct"),
            routing_key=DEAD_LETTER_QUEUE,
            queue_arguments={"x-queue-type": "quorum"},
        )

    def declare(self, channel: Any, names: tuple[str, ...]) -> None:
        """Declare the queues (and the dead-letter queue) on ``channel``: idempotent."""
        for queue in (self.dead_letter_queue(), *self.queues(names)):
            queue.bind(channel).declare()

    def celery_config(self, names: tuple[str, ...]) -> dict[str, Any]:
        return {
            "task_queues": self.queues(names),
            "worker_detect_quorum_queues": True,
            "task_default_queue_type": "quorum",
            "broker_transport_options": self.transport_options(),
        }

    # --- the contract --------------------------------------------------------------------
    def install(self) -> None:
        return None  # nothing of kombu's AMQP transport is patched

    def transport_options(self) -> dict[str, Any]:
        # Every publish waits for the broker's ack (a nack or a refused message raises).
        return {"confirm_publish": True}

    def publish_options(self) -> dict[str, Any]:
        # How long a publish may wait for its confirm before it counts as failed.
        return {"confirm_timeout": self.timeout_s}

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = Connection(self.url, connect_timeout=self.timeout_s)
        return self._conn

    def queue_depths(self, queues: tuple[str, ...]) -> dict[str, int]:
        # A passive declare answers the ready messages of a queue without creating it.
        depths = {}
        channel = self._connection().channel()
        try:
            for name in queues:
                _name, ready, _consumers = channel.queue_declare(name, passive=True)
                depths[name] = int(ready)
        finally:
            channel.close()
        return depths

    def quiet(self) -> bool:
        return True  # unused: the ingester tracks nothing for re-sending on this kind

    def primary(self) -> str | None:
        return None

    def ping(self) -> None:
        self._connection().ensure_connection(max_retries=1, timeout=self.timeout_s)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.release()
            self._conn = None
