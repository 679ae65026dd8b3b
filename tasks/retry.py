"""Task retries: which failures are retried, which are dead-lettered, and the schedule.

Every task consults one :class:`Classifier` (``tasks.base.HyperwatchTask.failures``) and one
:class:`runtime.retry.RetryPolicy` (``HyperwatchTask.policy``). An exception falls in exactly
one class:

- ``retry``: transient — the same message will very likely succeed later. Database
  connection loss, lock / statement timeouts, serialization failures and deadlocks
  (PostgreSQL reports all of them as ``OperationalError``; SQLite's "database is locked"
  too), pool checkout timeouts, and broker/socket errors. Retried with exponential backoff
  and *equal* jitter (half fixed, half random: retries of a burst spread out but never
  come back immediately). By default without limit: a database or broker outage is a
  dependency being away, which health reports; the batch waits for it (at the backoff
  ceiling) rather than being acknowledged and lost. A finite ``max_attempts`` makes the
  task give up loudly instead.
- ``dead_letter``: the payload itself can never be processed — malformed on the wire, or
  rejected by the database as data (numeric overflow, constraint). Recorded with the reason
  in ``dead_letters``, counted, and the message is acknowledged. Never retried.
- ``fail``: anything else is a bug. The task raises (Sentry sees it), the message is
  acknowledged (``task_acks_on_failure_or_timeout``), nothing loops.

Countdowns must stay far below the broker's visibility timeout: a retry is a new message
with an ETA that a worker holds unacknowledged until it is due, and Redis redelivers any
message unacknowledged for longer than the timeout (kombu#337). The task base therefore
passes every delay a ``ceiling_s`` derived from the visibility timeout
(:meth:`RetryPolicy.next_delay`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Literal

import kombu.exceptions
import psycopg2
import redis.exceptions
from billiard.exceptions import SoftTimeLimitExceeded
from sqlalchemy import exc as sa_exc

from events import MalformedPayload
from runtime.retry import RetryPolicy

Decision = Literal["retry", "dead_letter", "fail"]


@dataclass(frozen=True)
class Classifier:
    """Which exceptions are retried and which dead-lettered; everything else fails."""

    transient: tuple[type[BaseException], ...]
    dead_letter: tuple[type[BaseException], ...]

    def classify(self, exc: BaseException) -> Decision:
        # Dead-letter first: a DataError is a DBAPIError too, but retrying bad data is futile.
        if isinstance(exc, self.dead_letter):
            return "dead_letter"
        if isinstance(exc, self.transient) or _is_disconnect(exc):
            return "retry"
        return "fail"


def _is_disconnect(exc: BaseException) -> bool:
    # SQLAlchemy marks any DBAPI error it recognised as a dropped connection, whatever its
    # class (psycopg2 reports "connection already closed" as an InterfaceError).
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


# The DBAPI classes are listed beside SQLAlchemy's because the PostgreSQL bulk path runs
# COPY on the raw psycopg2 cursor (models/repositories/bulk.py), whose errors arrive unwrapped.
TRANSIENT: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,  # connection refused/reset, lock & statement timeouts, serialization, deadlock
    psycopg2.OperationalError,
    psycopg2.InterfaceError,  # "connection already closed"
    sqlite3.OperationalError,  # "database is locked"
    sa_exc.TimeoutError,  # connection pool checkout timed out
    sa_exc.DisconnectionError,
    kombu.exceptions.OperationalError,  # broker unreachable while publishing
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
    SoftTimeLimitExceeded,  # usually a lock wait; the retry gets a fresh time budget
)

DEAD_LETTER: tuple[type[BaseException], ...] = (
    MalformedPayload,
    sa_exc.DataError,  # e.g. a number beyond the NUMERIC column's precision
    sa_exc.IntegrityError,  # a NOT NULL / CHECK the payload violates (keys conflict silently)
    psycopg2.DataError,  # e.g. a string longer than its column, found by COPY
    psycopg2.IntegrityError,
    sqlite3.DataError,
    sqlite3.IntegrityError,
)

DEFAULT_CLASSIFIER = Classifier(transient=TRANSIENT, dead_letter=DEAD_LETTER)

# 1 s doubling to a 60 s cap, equal jitter, without limit: after a minute or two of outage a
# batch is retried once a minute until the dependency is back (far below the 10-minute
# visibility timeout per delay). Poison is never retried: it is dead-lettered.
DEFAULT_POLICY = RetryPolicy(max_attempts=None, base_s=1.0, cap_s=60.0, jitter=0.5)
