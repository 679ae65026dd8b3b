"""The outbox's guards in Redis, and the sweeper that makes the outbox lossless.

The ``notifications`` table is the source of truth: a row is ``pending`` until a delivery
attempt settles it. Delivery messages are only hints to work on a row, so losing one
(a crash between the commit and the enqueue, a worker killed mid-delivery, a broker
outage) loses nothing — the sweeper re-sends the hint — and a duplicate hint is harmless:

- ``keys.NOTIFY_LOCK`` (``SET NX PX``, released by token): at most one delivery of a row
  runs at a time, across every worker. Its lifetime (:func:`lock_ttl_ms`) outlasts one
  attempt's worst case, so a worker killed mid-attempt frees the row by expiry.
- ``keys.NOTIFY_SCHEDULED``: a retry (or a sweeper re-enqueue) is on its way; the
  sweeper leaves the row alone until it lapses, so a backoff is not cut short.

``hyperwatch.notify.sweep_outbox()`` — queue ``notify``; run by beat about every 30 s.
Re-enqueues ``hyperwatch.notify.deliver`` for every ``pending`` row not updated for
``NOTIFY_SWEEP_AFTER_S`` that is neither locked nor scheduled, marking it scheduled for
``NOTIFY_SWEEP_AFTER_S`` first (``SET NX``: two sweeps running at once enqueue it once).
Idempotent; retries transient database / Redis errors (``tasks.retry``); never retries
anything else. Returns ``{"pending": rows found, "enqueued": hints sent}``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from typing import Final

import redis
from celery import shared_task

from models.repositories import NotificationRepository
from runtime import keys
from runtime.clock import utc_now
from runtime.redis_clients import cache_client
from settings import Settings
from tasks.base import HyperwatchTask

log = logging.getLogger(__name__)

DELIVER_TASK: Final = "hyperwatch.notify.deliver"
SWEEP_LIMIT: Final = 500

_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def lock_ttl_ms(settings: Settings) -> int:
    """Longer than one attempt can take: connect, send and read each time out after
    ``NOTIFY_TIMEOUT_S``, plus the database work around them."""
    return int((3 * settings.notify_timeout_s + 5) * 1000)


class DeliveryLock:
    """Exclusive right to attempt one notification's delivery (see module)."""

    def __init__(self, client: redis.Redis, notification_id: int, ttl_ms: int) -> None:
        self._client = client
        self._key = keys.NOTIFY_LOCK.name(notification_id=notification_id)
        self._ttl_ms = ttl_ms
        self._token = uuid.uuid4().hex

    def acquire(self) -> bool:
        return bool(self._client.set(self._key, self._token, nx=True, px=self._ttl_ms))

    def release(self) -> None:
        self._client.register_script(_RELEASE)(keys=[self._key], args=[self._token])


# KEYS: lock keys; ARGV: their tokens, then the ttl. Extends each lock still held by its
# token; returns 1/0 per key.
_EXTEND: Final = """
local ttl = ARGV[#ARGV]
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i] then
    redis.call('PEXPIRE', key, ttl)
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""
# KEYS: lock keys; ARGV: their tokens. Releases each lock still held by its token.
_RELEASE_MANY: Final = """
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i] then redis.call('DEL', key) end
end
return 0
"""


class DeliveryLocks:
    """:class:`DeliveryLock` for many rows at once: one round trip to take, extend or
    release them all (a burst's rows are delivered together: ``Deliverer.attempt_many``)."""

    def __init__(self, client: redis.Redis, ttl_ms: int) -> None:
        self._client = client
        self._ttl_ms = ttl_ms
        self._tokens: dict[int, str] = {}

    @staticmethod
    def _key(notification_id: int) -> str:
        return keys.NOTIFY_LOCK.name(notification_id=notification_id)

    def acquire(self, notification_ids: Sequence[int]) -> list[int]:
        """Take the free ones; returns the ids now held (the others are being delivered)."""
        tokens = {i: uuid.uuid4().hex for i in notification_ids}
        pipe = self._client.pipeline(transaction=False)
        for i, token in tokens.items():
            pipe.set(self._key(i), token, nx=True, px=self._ttl_ms)
        held = [i for i, ok in zip(tokens, pipe.execute(), strict=True) if ok]
        self._tokens.update({i: tokens[i] for i in held})
        return held

    def extend(self, notification_ids: Sequence[int]) -> list[int]:
        """Give the held ones a full lifetime again; returns those still held (one whose
        lock expired may be in another delivery now: not ours to send)."""
        ids = [i for i in notification_ids if i in self._tokens]
        if not ids:
            return []
        script = self._client.register_script(_EXTEND)
        out = script(
            keys=[self._key(i) for i in ids],
            args=[*(self._tokens[i] for i in ids), self._ttl_ms],
        )
        kept = [i for i, ok in zip(ids, out, strict=True) if int(ok)]
        for i in set(ids) - set(kept):
            del self._tokens[i]
        return kept

    def release(self, notification_ids: Sequence[int]) -> None:
        ids = [i for i in notification_ids if i in self._tokens]
        if not ids:
            return
        script = self._client.register_script(_RELEASE_MANY)
        script(keys=[self._key(i) for i in ids], args=[self._tokens.pop(i) for i in ids])

    def release_all(self) -> None:
        self.release(list(self._tokens))


def mark_scheduled(client: redis.Redis, notification_id: int, seconds: float) -> None:
    """A delivery of this row is due within ``seconds``: the sweeper leaves it alone."""
    client.set(
        keys.NOTIFY_SCHEDULED.name(notification_id=notification_id),
        1,
        px=max(1, int(seconds * 1000)),
    )


def sweep(
    client: redis.Redis,
    settings: Settings,
    repository: NotificationRepository,
    now: dt.datetime,
) -> tuple[int, list[int]]:
    """The rows to re-enqueue now: (pending rows found, ids claimed for re-enqueue)."""
    cutoff = now - dt.timedelta(seconds=settings.notify_sweep_after_s)
    ids = [row.id for row in repository.pending_older_than(cutoff, limit=SWEEP_LIMIT)]
    if not ids:
        return 0, []
    pipe = client.pipeline(transaction=False)
    for notification_id in ids:
        pipe.exists(keys.NOTIFY_LOCK.name(notification_id=notification_id))
    locked = pipe.execute()
    pipe = client.pipeline(transaction=False)
    free = [i for i, busy in zip(ids, locked, strict=True) if not busy]
    hold_ms = settings.notify_sweep_after_s * 1000
    for notification_id in free:
        pipe.set(
            keys.NOTIFY_SCHEDULED.name(notification_id=notification_id), 1, nx=True, px=hold_ms
        )
    claimed = [i for i, ok in zip(free, pipe.execute(), strict=True) if ok]
    return len(ids), claimed


def redis_client(settings: Settings) -> redis.Redis:
    return cache_client(settings, socket_timeout=5.0, socket_connect_timeout=5.0)


@shared_task(name="hyperwatch.notify.sweep_outbox", bind=True, base=HyperwatchTask)
def sweep_outbox(self: HyperwatchTask) -> dict[str, int]:
    """Re-enqueue stuck pending notifications (see module contract)."""
    settings = self.settings
    client = redis_client(settings)
    try:
        with self.database().session() as session:
            found, claimed = sweep(
                client, settings, NotificationRepository(session), utc_now(self.clock)
            )
    finally:
        client.close()
    for notification_id in claimed:
        self.app.send_task(DELIVER_TASK, args=[notification_id])
    if claimed:
        log.warning("outbox sweep re-enqueued %d stuck notification(s)", len(claimed))
    return {"pending": found, "enqueued": len(claimed)}
