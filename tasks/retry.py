"""The retry policy, as data: what is retried, how often, how far apart, and what never is.

Every task consults one :class:`RetryPolicy` (``tasks.base.HyperwatchTask.policy``). An
exception falls in exactly one class:

- ``retry``: transient — the same message will very likely succeed later. Database
  connection loss, lock / statement timeouts, serialization failures and deadlocks
  (PostgreSQL reports all of them as ``OperationalError``; SQLite's "database is locked"
  too), pool checkout timeouts, and broker/socket errors. Retried with exponential backoff
  and *equal* jitter (half fixed, half random: retries of a burst spread out but never
  come back immediately). By default without limit: a database or broker outage is a
  dependency being away, which health reports; the batch waits for it (at the backoff
  ceiling) rather than being acknowledged and lost. A finite ``max_retries`` makes the
  task give up loudly instead.
- ``dead_letter``: the payload itself can never be processed — malformed on the wire, or
  rejected by the database as data (numeric overflow, constraint). Recorded with the reason
  in ``dead_letters``, counted, and the message is acknowledged. Never retried.
- ``fail``: anything else is a bug. The task raises (Sentry sees it), the message is
  acknowledged (``task_acks_on_failure_or_timeout``), nothing loops.

Countdowns must stay far below the broker's visibility timeout: a retry is a new message
with an ETA that a worker holds unacknowledged until it is due, and Redis redelivers any
message unacknowledged for longer than the timeout (kombu#337). :meth:`RetryPolicy.countdown`
therefore caps every delay at a ceiling the caller derives from the visibility timeout.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass
from typing import Literal

import kombu.exceptions
import psycopg2
import redis.exceptions
from billiard.exceptions import SoftTimeLimitExceeded
from sqlalchemy import exc as sa_exc

from events import MalformedPayload

Decision = Literal["retry", "dead_letter", "fail"]


@dataclass(frozen=True)
class RetryPolicy:
    """Which exceptions are retried / dead-lettered, and the backoff schedule."""

    transient: tuple[type[BaseException], ...]
    dead_letter: tuple[type[BaseException], ...]
    max_retries: int | None = None
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0

    def __post_init__(self) -> None:
        if (self.max_retries is not None and self.max_retries < 0) or self.backoff_base_s <= 0:
            raise ValueError("max_retries >= 0 and backoff_base_s > 0")
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError("backoff_max_s must be at least backoff_base_s")

    def classify(self, exc: BaseException) -> Decision:
        # Dead-letter first: a DataError is a DBAPIError too, but retrying bad data is futile.
        if isinstance(exc, self.dead_letter):
            return "dead_letter"
        if isinstance(exc, self.transient) or _is_disconnect(exc):
            return "retry"
        return "fail"

    def countdown(
        self, retries: int, ceiling_s: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds before retry number ``retries + 1``: equal jitter over an exponential
        backoff, capped at ``backoff_max_s`` and at ``ceiling_s``."""
        cap = self.backoff_max_s if ceiling_s is None else min(self.backoff_max_s, ceiling_s)
        delay = min(cap, self.backoff_base_s * 2 ** max(0, retries))
        return delay / 2 + (rng or random).uniform(0, delay / 2)

    def worst_case_total_s(self) -> float:
        """Longest time from the first failure to giving up (every delay at its maximum);
        infinite when retries are unlimited."""
        if self.max_retries is None:
            return float("inf")
        return sum(
            min(self.backoff_max_s, self.backoff_base_s * 2**n) for n in range(self.max_retries)
        )


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

# 1 s doubling to a 60 s cap, without limit: after a minute or two of outage a batch is
# retried once a minute until the dependency is back (far below the 10-minute visibility
# timeout per delay). Poison is never retried: it is dead-lettered.
DEFAULT_POLICY = RetryPolicy(transient=TRANSIENT, dead_letter=DEAD_LETTER)
