"""End-to-end batch confirmations: the worker says "committed", the ingester forgets.

Why: acks_late brings back a killed worker's *unacknowledged* messages, but kombu's Redis
transport takes a message off its queue (BRPOP) and records it as unacknowledged in a
second round trip. A worker SIGKILLed between the two held the only copy, and the batch is
gone. So after committing a batch the worker adds its sequence number to a per-ingester
sorted set, and the ingester re-sends any batch it published that is still unconfirmed
after ``INGEST_CONFIRM_TIMEOUT_S`` (longer than the visibility timeout, so a message that
is merely waiting for redelivery is not doubled). Writes are idempotent, so a re-sent
batch that did arrive costs a duplicate count, nothing more.

Keys: ``keys.BATCHES_DONE`` → sorted set of seq scored by confirmation time (ms),
trimmed to the last hour and expiring a day after the ingester's last batch.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from runtime import keys

KEEP_MS = 3_600_000
EXPIRE_S = 86_400


def done_key(source: str) -> str:
    return keys.BATCHES_DONE.name(source=source)


def mark_done(client: redis.Redis, source: str, seq: int, now_ms: int) -> None:
    """Record that batch ``seq`` of ``source`` is committed (idempotent)."""
    key = done_key(source)
    pipe = client.pipeline(transaction=False)
    pipe.zadd(key, {str(seq): now_ms})
    pipe.expire(key, EXPIRE_S)
    if seq % 256 == 0:  # trim now and then, not on every batch
        pipe.zremrangebyscore(key, "-inf", now_ms - KEEP_MS)
    pipe.execute()


def confirmed(client: redis.Redis, source: str, seqs: Iterable[int]) -> set[int]:
    """Which of ``seqs`` the workers have confirmed."""
    wanted = list(seqs)
    if not wanted:
        return set()
    scores = client.zmscore(done_key(source), [str(s) for s in wanted])
    return {seq for seq, score in zip(wanted, scores, strict=True) if score is not None}
