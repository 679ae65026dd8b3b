"""Where the ingester's batches go, and the one broker connection its publisher sends on.

Contract with the workers (fixed by the lead): one message per batch, task names and queues
in :data:`ROUTES`, args ``[batch]`` where batch is ``events.encode_batch(...)`` as JSON text.
The message itself — Celery's task protocol v2, built by hand without importing the tasks
package — is the transport seam's (``runtime.transport``: :func:`~runtime.transport.task_body`
says why the batch is a string, :func:`~runtime.transport.publish_task` how it is sent).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Final

from kombu import Connection, Producer

from events import EventKind
from runtime import transport
from runtime.brokers import Broker, RedisBroker
from runtime.keys import QUEUE_NAMES


@dataclass(frozen=True, slots=True)
class Target:
    task: str
    queue: str


PERSIST_TRADES: Final = Target("hyperwatch.persist.trades", "ingest")
PERSIST_CONTEXTS: Final = Target("hyperwatch.persist.asset_contexts", "ingest")
PERSIST_POSITIONS: Final = Target("hyperwatch.persist.positions", "ingest")
PERSIST_FILLS: Final = Target("hyperwatch.persist.fills", "ingest")
PERSIST_SESSION: Final = Target("hyperwatch.persist.session", "ingest")
EVALUATE_ALERTS: Final = Target("hyperwatch.alerts.evaluate", "alerts")

# Alerts need every market-state batch. Trades and fills go to persist only: after storing
# them, the persist task forwards the few new ones an alert may want (tasks/alerts/forward).
ROUTES: Final[dict[EventKind, tuple[Target, ...]]] = {
    "trades": (PERSIST_TRADES,),
    "asset_contexts": (PERSIST_CONTEXTS, EVALUATE_ALERTS),
    "positions": (PERSIST_POSITIONS, EVALUATE_ALERTS),
    "fills": (PERSIST_FILLS,),
    "mids": (EVALUATE_ALERTS,),
}


class BrokerClient:
    """One kombu connection to the broker, used by one thread (the publisher).

    ``send`` either returns (the message is on the list) or raises one of
    :attr:`errors` within about ``timeout_s``; it never retries or blocks longer. After an
    error the next ``send`` reconnects. ``kind`` is the broker kind (``runtime.brokers``;
    plain Redis when not given): its transport options (Sentinel's master name, RabbitMQ's
    publisher confirms), what it declares on a new connection and its publish options.
    """

    def __init__(self, url: str, timeout_s: float = 2.0, kind: Broker | None = None) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._kind = kind if kind is not None else RedisBroker(url, timeout_s)
        self._kind.install()  # idempotent: `hyperwatch ingest` did it at start, a tool may not
        self._publish_options = self._kind.publish_options()
        self._conn: Connection | None = None
        self._producer: Producer | None = None
        probe = Connection(url)
        self.errors: tuple[type[BaseException], ...] = (
            *probe.connection_errors,
            *probe.channel_errors,
            OSError,
        )
        probe.release()

    def _ensure(self) -> Producer:
        if self._producer is None:
            options = {
                "socket_timeout": self._timeout_s,
                "socket_connect_timeout": self._timeout_s,
                "retry_on_timeout": False,
                **transport.FAST_BODY_OPTIONS,  # batches are JSON text: no base64
                **self._kind.transport_options(),
            }
            self._conn = Connection(
                self._url, connect_timeout=self._timeout_s, transport_options=options
            )
            channel = self._conn.channel()
            self._kind.declare(channel, QUEUE_NAMES)  # RabbitMQ: before the first publish
            self._producer = Producer(channel)
        return self._producer

    def send(self, target: Target, arg_json: bytes, argsrepr: str) -> str:
        """Publish one task message; returns its task id."""
        try:
            return transport.publish_task(
                self._ensure(), target.task, target.queue, arg_json, argsrepr,
                **self._publish_options,
            )  # fmt: skip
        except self.errors:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            # Already broken connections have nothing left to release cleanly.
            with contextlib.suppress(*self.errors):
                self._conn.release()
        self._conn = None
        self._producer = None
