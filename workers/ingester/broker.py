"""Celery task messages, built and sent with kombu, without importing the tasks package.

Contract with the workers (fixed by the lead): one message per batch, task names and queues
in :data:`ROUTES`, args ``[batch]`` where batch is ``events.encode_batch(...)`` as JSON text
(:func:`task_body` says why a string). The body is
Celery's task protocol v2 — ``[args, kwargs, embed]`` with the headers
``celery.app.amqp.as_task_v2`` writes — so any Celery 5 worker that has registered
``events.BATCH_CONTENT_TYPE`` (orjson-decoded JSON; ``tasks.app`` does) runs it. We build it
ourselves, around a batch that is already JSON bytes, because Celery's ``send_task`` would
re-serialise every batch with the stdlib encoder (the largest single cost per event at
100k trades/s) and would make the bounded buffer hold Python objects instead of bytes.

Messages go to the anonymous direct exchange with ``routing_key`` = queue name: the Redis
transport then pushes straight onto the queue's list, exactly where a worker consuming
that queue reads, and nothing is declared (so no queue gets options Celery would not give).
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any, Final

import orjson
from kombu import Connection, Producer

from events import BATCH_CONTENT_TYPE, EventKind
from runtime import redis_envelope


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

# Alerts need every market-state batch; trades and fills are not alert inputs.
ROUTES: Final[dict[EventKind, tuple[Target, ...]]] = {
    "trades": (PERSIST_TRADES,),
    "asset_contexts": (PERSIST_CONTEXTS, EVALUATE_ALERTS),
    "positions": (PERSIST_POSITIONS, EVALUATE_ALERTS),
    "fills": (PERSIST_FILLS,),
    "mids": (EVALUATE_ALERTS,),
}

_EMBED: Final = b'{"callbacks":null,"errbacks":null,"chain":null,"chord":null}'
_ORIGIN: Final = f"{os.getpid()}@{socket.gethostname()}"


def task_body(arg_json: bytes) -> bytes:
    """Protocol-v2 body whose single positional argument is ``arg_json`` *as a string*.

    Celery's worker main process decodes every body, keeps the decoded arguments in the
    request and pickles them to the pool child beside the raw body; the child then decodes
    the body again. A batch passed as an object is thus built as 2,000 dicts in the main
    process, pickled, unpickled and built again — measured as the largest single cost of a
    worker. Passed as one JSON string it is one string in each of those steps, and the task
    parses it once (``events.decode_batch`` takes JSON text or the object).
    """
    return b"[[" + orjson.dumps(arg_json.decode()) + b"],{}," + _EMBED + b"]"


def task_headers(task: str, task_id: str, argsrepr: str) -> dict[str, Any]:
    """The headers ``as_task_v2`` writes for a plain ``send_task`` (no eta, no group)."""
    return {
        "lang": "py",
        "task": task,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": argsrepr,
        "kwargsrepr": "{}",
        "origin": _ORIGIN,
        "ignore_result": False,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }


class BrokerClient:
    """One kombu connection to the Redis broker, used by one thread (the publisher).

    ``send`` either returns (the message is on the list) or raises one of
    :attr:`errors` within about ``timeout_s``; it never retries or blocks longer. After an
    error the next ``send`` reconnects.
    """

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        redis_envelope.install()
        self._url = url
        self._timeout_s = timeout_s
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
                **redis_envelope.FAST_BODY_OPTIONS,  # batches are JSON text: no base64
            }
            self._conn = Connection(
                self._url, connect_timeout=self._timeout_s, transport_options=options
            )
            self._producer = Producer(self._conn.channel())
        return self._producer

    def send(self, target: Target, arg_json: bytes, argsrepr: str) -> str:
        """Publish one task message; returns its task id."""
        task_id = str(uuid.uuid4())
        try:
            self._ensure().publish(
                task_body(arg_json),
                exchange="",
                routing_key=target.queue,
                content_type=BATCH_CONTENT_TYPE,
                content_encoding="utf-8",
                headers=task_headers(target.task, task_id, argsrepr),
                correlation_id=task_id,
                reply_to="",
                delivery_mode=2,
                retry=False,
            )
        except self.errors:
            self.close()
            raise
        return task_id

    def close(self) -> None:
        if self._conn is not None:
            # Already broken connections have nothing left to release cleanly.
            with contextlib.suppress(*self.errors):
                self._conn.release()
        self._conn = None
        self._producer = None
