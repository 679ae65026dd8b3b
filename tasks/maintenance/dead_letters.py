"""RabbitMQ's dead-lettered messages into the ``dead_letters`` table.

On RabbitMQ every hyperwatch queue is a quorum queue with ``x-delivery-limit``
(``BROKER_DELIVERY_LIMIT``): a message delivered and returned that many times — a batch that
kills every worker that takes it — goes to the dead-letter queue
(``runtime.brokers.amqp.DEAD_LETTER_QUEUE``) instead of looping. This job, sent by beat
only when the broker is RabbitMQ, moves what waits there into ``dead_letters`` (task name,
reason, payload), where poison from every other path already lands, and counts it like
any dead letter. A message is acknowledged only after its row is committed: a worker killed
in between leaves it for the next run, which records it again (dead letters are events,
not deduplicated; the duplicate says the job was interrupted).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from kombu import Connection

from models.db import Database, get_database
from models.repositories import DeadLetterRepository
from runtime.brokers import AmqpBroker, for_settings
from runtime.metrics_export import count_dead_letter

log = logging.getLogger(__name__)

MAX_PER_RUN = 500  # bounded, so one run never outlasts its period


def describe(message: Any) -> tuple[str, str, Any]:
    """(task, reason, payload) of a dead-lettered Celery message."""
    headers = message.headers or {}
    task = str(headers.get("task") or "unknown")
    deaths = headers.get("x-death") or [{}]
    reason = (
        f"dead-lettered by RabbitMQ ({deaths[0].get('reason', 'delivery limit')}, queue "
        f"{deaths[0].get('queue', '?')}) after {headers.get('x-delivery-count', '?')} deliveries"
    )
    body = message.body
    payload = body.decode(errors="replace") if isinstance(body, bytes) else body
    return task, reason, payload


def collect(broker: AmqpBroker, conn: Connection, database: Database) -> int:
    """Move up to :data:`MAX_PER_RUN` dead-lettered messages into ``dead_letters``."""
    moved = 0
    queue = broker.dead_letter_queue()(conn.default_channel)
    queue.declare()
    while moved < MAX_PER_RUN:
        message = queue.get(no_ack=False, accept=None)
        if message is None:
            break
        task, reason, payload = describe(message)
        with database.session() as session:
            DeadLetterRepository(session).record(task, reason, payload)
        message.ack()  # only once the row is committed
        count_dead_letter(task)
        log.warning("%s: %s", task, reason)
        moved += 1
    return moved


@shared_task(bind=True, name="hyperwatch.maintenance.collect_dead_letters", ignore_result=True)
def collect_dead_letters(self: Task) -> int:
    """Queue maintenance, every 30 s on RabbitMQ. Returns how many it moved."""
    broker = for_settings(self.app.settings)
    if not isinstance(broker, AmqpBroker):
        return 0  # nothing is dead-lettered by a Redis broker
    with self.app.connection_for_read() as conn:
        return collect(broker, conn, get_database(self.app.settings))
