"""The broker transport seam: everything hyperwatch does to kombu, and every message it builds
by hand for Celery, in one module that checks the installed kombu before it touches it.

Three parts, each with its reason below:

1. **Envelope codec.** kombu's Redis transport encodes its message envelopes with orjson
   instead of the standard library (:func:`dumps`, :func:`loads`).
2. **Undecodable items.** An item on a queue list that is not a kombu message is set aside
   instead of stopping the worker (:func:`_brpop_read`, a copy of kombu 5.7.0's
   ``Channel._brpop_read`` with a check added).
3. **Hand-built task messages.** The ingester's batches go out as Celery task protocol v2
   messages built here (:func:`task_body`, :func:`task_headers`, :func:`publish_task`), in
   the format Celery workers decode.

Parts 1 and 2 replace kombu internals process-wide, so they are only correct for the kombu
they were written against. :func:`install` applies both, once per process, after
:func:`check` has confirmed that the installed kombu is :data:`KOMBU_SERIES` and that the
source of the function the replacement copies still has the digest
:data:`KOMBU_BRPOP_READ_SHA256`; otherwise it raises :class:`TransportMismatch`, which the
processes report as one line and exit 2 (a configuration that restarting will not fix).
The versions to run with are pinned in constraints.txt; docs/OPERATIONS.md ("Upgrading
kombu") says how to move them.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import logging
import os
import socket
import uuid
from queue import Empty
from typing import Any, Final

import kombu
import orjson
from kombu import Producer
from kombu.transport import redis as redis_transport
from kombu.utils import json as kombu_json
from kombu.utils.encoding import bytes_to_str

from events import BATCH_CONTENT_TYPE
from runtime import keys
from runtime.metrics_export import count_dead_letter

log = logging.getLogger(__name__)


# --- The start-up check ---------------------------------------------------------------------

# The kombu the patches were written against: any 5.7.x whose Channel._brpop_read is still
# the code :func:`_brpop_read` copies (kombu 5.7.0's).
KOMBU_SERIES: Final = "5.7"
KOMBU_BRPOP_READ: Final = redis_transport.Channel._brpop_read
KOMBU_BRPOP_READ_SHA256: Final = "c42518699709f2df90f55a048fe6346612ae5527e5c4a6819f2c0920dc62088f"


class TransportMismatch(RuntimeError):
    """The installed kombu is not the one the transport patches were written against.
    ``str()`` is one line: what was expected, what is installed, what to do."""


def kombu_version() -> str:
    """The version of the kombu this process imported."""
    return str(kombu.__version__)


def kombu_source_digest() -> str:
    """sha256 of the installed ``Channel._brpop_read``'s source ("" if it has none)."""
    try:
        source = inspect.getsource(KOMBU_BRPOP_READ)
    except (OSError, TypeError):  # installed without its .py files
        return ""
    return hashlib.sha256(source.encode()).hexdigest()


def _uses(function: Any, name: str) -> bool:
    code = getattr(function, "__code__", None)
    return code is not None and name in code.co_names


def _codec_hooks_missing() -> list[str]:
    # The transport's hot paths look the module globals ``dumps``/``loads`` up at call time;
    # a kombu that stopped doing so would silently bypass the codec.
    missing = [name for name in ("dumps", "loads") if not hasattr(redis_transport, name)]
    if not _uses(getattr(redis_transport.Channel, "_put", None), "dumps"):
        missing.append("dumps in Channel._put")
    if not _uses(getattr(redis_transport.QoS, "append", None), "dumps"):
        missing.append("dumps in QoS.append")
    return missing


def check() -> None:
    """Raise :class:`TransportMismatch` unless the installed kombu is the one written for."""
    version = kombu_version()
    digest = kombu_source_digest()
    differences = []
    if version.split(".")[:2] != KOMBU_SERIES.split("."):
        differences.append(f"version not {KOMBU_SERIES}.x")
    if digest != KOMBU_BRPOP_READ_SHA256:
        differences.append(f"Channel._brpop_read digest {digest[:12] or 'unknown (no source)'}")
    missing = _codec_hooks_missing()
    if missing:
        differences.append(f"no module-level {', '.join(missing)}")
    if differences:
        raise TransportMismatch(
            f"hyperwatch's broker transport (runtime/transport.py) was written against kombu "
            f"{KOMBU_SERIES}.x (Channel._brpop_read digest {KOMBU_BRPOP_READ_SHA256[:12]}); "
            f"installed kombu {version} differs ({'; '.join(differences)}): install the "
            f"versions in constraints.txt (make install, or pip install -c constraints.txt .), "
            f"or to upgrade kombu follow docs/OPERATIONS.md, 'Upgrading kombu'"
        )


_installed = False


def install() -> None:
    """Check the installed kombu (:func:`check`), then make its Redis transport encode
    envelopes with :func:`dumps`/:func:`loads` and set undecodable items aside, in this
    process. Idempotent; every hyperwatch process calls it at start."""
    global _installed
    if _installed:
        return
    check()
    redis_transport.dumps = dumps  # type: ignore[assignment]
    redis_transport.loads = loads  # type: ignore[assignment]
    redis_transport.Channel._brpop_read = _brpop_read  # type: ignore[method-assign]
    _installed = True


# --- 1. The envelope codec ------------------------------------------------------------------
#
# The Redis transport wraps every message in a JSON envelope, and touches it three times per
# task: the publisher encodes it, the worker decodes it on delivery, and with late acks the
# worker encodes it again to file the message as unacknowledged (so it can be restored if
# the worker dies). kombu does this with the standard library's ``json``, which scans a trade
# batch's 700 kB envelope at about 250 MB/s: 3 ms per encode on the reference machine, plus
# base64 of the body in both directions. orjson takes 0.1 ms. At 50,000 trades a second
# that is most of what a worker's main process and the ingester's publisher spend per batch.
#
# :func:`install` swaps the transport's module-level ``dumps``/``loads`` for the two here.
# They write the same JSON kombu writes — plain values, and for anything else kombu's own
# ``{"__type__": …, "__value__": …}`` markers, produced by kombu's own encoder — and read
# those markers back with kombu's own hook, so a process without them (Flower, the
# ``celery`` CLI) reads what these write, and the other way round. Whatever orjson refuses
# (integers beyond 64 bits, exotic types) goes through kombu's functions unchanged. One
# difference is left: a ``uuid.UUID`` object, which orjson writes as a plain string where
# kombu writes a marker; Celery puts ids in envelopes as strings.
#
# :data:`FAST_BODY_OPTIONS` lets a publisher skip base64 (``body_encoding`` "utf-8"): the
# body — JSON text already — then travels as a JSON string inside the envelope.

_OPTIONS: Final = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)
_MARKER_KEYS: Final = frozenset(("__type__", "__value__"))

# Transport options for a publisher whose bodies are UTF-8 text (the ingester's JSON
# batches): no base64 (a third more bytes, and 4 ms to decode a 700 kB batch here).
FAST_BODY_OPTIONS: Final = {"body_encoding": "utf-8"}


_kombu_default = kombu_json.JSONEncoder().default


def dumps(value: Any) -> str:
    """kombu's ``dumps``, by orjson."""
    try:
        return orjson.dumps(value, default=_kombu_default, option=_OPTIONS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return kombu_json.dumps(value)


def loads(text: str | bytes) -> Any:
    """kombu's ``loads``, by orjson."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:  # e.g. NaN, which the standard library writes
        return kombu_json.loads(text)
    return _revive(value)


def _revive(value: Any) -> Any:
    # kombu's object hook, applied bottom-up like json's object_hook. Envelopes are small
    # trees (the body is one string), so the walk costs microseconds.
    if type(value) is dict:
        for key, item in value.items():
            if type(item) is dict or type(item) is list:
                value[key] = _revive(item)
        if value.keys() == _MARKER_KEYS:
            return kombu_json.object_hook(value)
        return value
    if type(value) is list:
        for index, item in enumerate(value):
            if type(item) is dict or type(item) is list:
                value[index] = _revive(item)
    return value


def message_parts(raw: str | bytes) -> tuple[dict[str, Any], bytes]:
    """A message as it lies on a queue → (envelope, body bytes), whatever its body
    encoding — for tools and tests that read queues directly."""
    envelope = loads(raw)
    body = envelope["body"]
    if envelope["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body)
    elif isinstance(body, str):
        body = body.encode()
    return envelope, body


# --- 2. Undecodable items are set aside, not fatal ------------------------------------------
#
# kombu's Redis transport pops an item (BRPOP) and decodes it inside the worker's event loop.
# An item that is not a kombu envelope — not JSON, not UTF-8, or JSON of the wrong shape —
# raises there, Celery calls that an unrecoverable error and the worker exits (celery#1113),
# and the item, already off its list, is gone. A worker restarted by its supervisor then
# carries on, but one bad push to a queue is an outage of every worker that pops it and a
# silent loss of what was pushed.
#
# :func:`install` replaces ``Channel._brpop_read`` with the same code (kombu 5.7.0's) that
# checks the item before delivering it. An item that fails is kept, raw (its first
# :data:`KEEP_BYTES`), at the head of the Redis list :data:`UNDECODABLE_KEY` (newest first,
# the last :data:`KEEP` of them), logged at ERROR with its queue, size and reason, and
# counted in ``hyperwatch_dead_letters_total`` (task ``undecodable:<queue>``); the poll goes
# on as if BRPOP had timed out. Read them with ``redis-cli LRANGE`` on ``keys.UNDECODABLE``.
#
# The check is what delivery itself does to the item: decode the envelope, then build the
# channel's ``Message`` from it. Anything that passes would have been delivered as before.

UNDECODABLE_KEY: Final = keys.UNDECODABLE.name()
KEEP: Final = 1000
# Like dead_letters' payloads: enough to diagnose, while a flood of huge items cannot fill
# Redis. The log line gives the full size.
KEEP_BYTES: Final = 65_536
_PREVIEW_BYTES: Final = 120


def problem(channel: Any, item: bytes) -> tuple[Any, str | None]:
    """(envelope, None) for an item delivery can handle, else (None, the reason)."""
    try:
        payload = redis_transport.loads(bytes_to_str(item))
        message = channel.Message(payload, channel=channel)
        # What filing it as unacknowledged (QoS.append) reads next.
        if not isinstance(message.delivery_tag, str):
            raise ValueError("delivery_tag is not a string")
        info = message.delivery_info
        if not isinstance(info, dict) or not {"exchange", "routing_key"} <= info.keys():
            raise ValueError("delivery_info lacks exchange and routing_key")
    except Exception as exc:  # whatever delivery would have died of
        return None, f"{type(exc).__name__}: {exc}"[:500]
    return payload, None


def set_aside(channel: Any, queue: str, item: bytes, reason: str) -> None:
    with channel.conn_or_acquire() as client:
        kept = item[:KEEP_BYTES]
        client.pipeline().lpush(UNDECODABLE_KEY, kept).ltrim(UNDECODABLE_KEY, 0, KEEP - 1).execute()
    count_dead_letter(f"undecodable:{queue}")
    log.error(
        "undecodable message on queue %r (%d bytes, starts %r): %s; kept in Redis list %s",
        queue,
        len(item),
        bytes(item[:_PREVIEW_BYTES]),
        reason,
        UNDECODABLE_KEY,
    )


def _brpop_read(self: Any, **options: Any) -> bool:
    # kombu 5.7.0's Channel._brpop_read; only the lines marked "hyperwatch" differ.
    try:
        try:
            dest__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
        except self.connection_errors:
            # if there's a ConnectionError, disconnect so the next
            # iteration will reconnect automatically.
            self.client.connection.disconnect()
            raise
        if dest__item:
            dest, item = dest__item
            dest = bytes_to_str(dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            payload, reason = problem(self, item)  # hyperwatch
            if reason is not None:  # hyperwatch
                set_aside(self, dest, item, reason)  # hyperwatch
                raise Empty()  # hyperwatch: as if BRPOP had timed out
            self.connection._deliver(payload, dest)
            return True
        else:
            raise Empty()
    finally:
        self._in_poll = None
        # The BRPOP connection is now idle (its reply has been fully
        # consumed and no new BRPOP has been issued yet): this is the
        # safe moment to flush any pending streaming re-auth token.
        self._flush_brpop_reauth()


# --- 3. Celery task messages, built by hand -------------------------------------------------
#
# The body is Celery's task protocol v2 — ``[args, kwargs, embed]`` with the headers
# ``celery.app.amqp.as_task_v2`` writes — so any Celery 5 worker that has registered
# ``events.BATCH_CONTENT_TYPE`` (orjson-decoded JSON; ``tasks.application`` does) runs it. The
# ingester builds it here, around a batch that is already JSON bytes, because Celery's
# ``send_task`` would re-serialise every batch with the stdlib encoder (the largest single
# cost per event at 100k trades/s) and would make the bounded buffer hold Python objects
# instead of bytes; and without importing the tasks package.
#
# Messages go to the anonymous direct exchange with ``routing_key`` = queue name: the Redis
# transport then pushes straight onto the queue's list, exactly where a worker consuming
# that queue reads, and nothing is declared (so no queue gets options Celery would not give).
# tests/unit/transport/test_messages.py compares them with what Celery itself builds.

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


def publish_task(
    producer: Producer, task: str, queue: str, arg_json: bytes, argsrepr: str, **options: Any
) -> str:
    """Publish one task message whose argument is the JSON text ``arg_json`` onto ``queue``
    (no retry: kombu's errors propagate); returns its task id. ``options``: the broker
    kind's publish options (RabbitMQ's confirm timeout)."""
    task_id = str(uuid.uuid4())
    producer.publish(
        task_body(arg_json),
        exchange="",
        routing_key=queue,
        content_type=BATCH_CONTENT_TYPE,
        content_encoding="utf-8",
        headers=task_headers(task, task_id, argsrepr),
        correlation_id=task_id,
        reply_to="",
        delivery_mode=2,
        retry=False,
        **options,
    )
    return task_id
