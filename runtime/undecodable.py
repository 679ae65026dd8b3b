"""An item on a Redis queue that is not a kombu message is set aside, not fatal.

kombu's Redis transport pops an item (BRPOP) and decodes it inside the worker's event loop.
An item that is not a kombu envelope — not JSON, not UTF-8, or JSON of the wrong shape —
raises there, Celery calls that an unrecoverable error and the worker exits (celery#1113),
and the item, already off its list, is gone. A worker restarted by its supervisor then
carries on, but one bad push to a queue is an outage of every worker that pops it and a
silent loss of what was pushed.

:func:`install` replaces ``Channel._brpop_read`` with the same code (kombu 5.7.0's) that
checks the item before delivering it. An item that fails is kept, raw (its first
:data:`KEEP_BYTES`), at the head of the Redis list :data:`UNDECODABLE_KEY` (newest first,
the last :data:`KEEP` of them), logged at ERROR with its queue, size and reason, and
counted in ``hyperwatch_dead_letters_total`` (task ``undecodable:<queue>``); the poll goes
on as if BRPOP had timed out. Read them with ``redis-cli LRANGE`` on ``keys.UNDECODABLE``.

The check is what delivery itself does to the item: decode the envelope, then build the
channel's ``Message`` from it. Anything that passes would have been delivered as before.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from queue import Empty
from typing import Any, Final

from kombu.transport import redis as redis_transport
from kombu.utils.encoding import bytes_to_str

from runtime import keys
from runtime.metrics_export import count_dead_letter

log = logging.getLogger(__name__)

UNDECODABLE_KEY: Final = keys.UNDECODABLE.name()
KEEP: Final = 1000
# Like dead_letters' payloads: enough to diagnose, while a flood of huge items cannot fill
# Redis. The log line gives the full size.
KEEP_BYTES: Final = 65_536
_PREVIEW_BYTES: Final = 120

# The kombu code the replacement copies. A kombu upgrade that changes it must be reviewed
# (tests/unit/test_undecodable.py compares this digest with the installed kombu's).
KOMBU_BRPOP_READ: Final = redis_transport.Channel._brpop_read
KOMBU_BRPOP_READ_SHA256: Final = "c42518699709f2df90f55a048fe6346612ae5527e5c4a6819f2c0920dc62088f"


def kombu_source_digest() -> str:
    return hashlib.sha256(inspect.getsource(KOMBU_BRPOP_READ).encode()).hexdigest()


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


def install() -> None:
    """Make kombu's Redis transport set undecodable items aside in this process."""
    redis_transport.Channel._brpop_read = _brpop_read  # type: ignore[method-assign]
