"""The base class every hyperwatch task uses: the contract, the retry policy, metrics.

Task contract (each task's docstring states its part of it):

- **Queue**: routed by name prefix in ``celeryconfig.task_routes``.
- **Idempotent**: every task may run more than once for the same message (late acks,
  redelivery after a kill, retries); its writes are keyed so a repeat changes nothing.
- **Retries** the failures :data:`tasks.retry.DEFAULT_CLASSIFIER` calls transient, on the
  schedule :data:`tasks.retry.DEFAULT_POLICY` (a :class:`runtime.retry.RetryPolicy`: jittered
  backoff, capped far below the broker's visibility timeout); **never retries** a payload it cannot
  process — that is recorded in ``dead_letters`` with the reason, counted, and the message
  acknowledged; anything else is a bug: it raises (Sentry) and the message is acknowledged.
- **One transaction** per message: a batch is stored whole or not at all.

Tasks get the process's settings from their app (``tasks.application.HyperwatchCelery``) and the
process's database from :func:`models.db.get_database` (one engine per process; pool
children re-create their pools after fork).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import redis
from celery import Task
from celery.exceptions import Reject, Retry
from sqlalchemy import text
from sqlalchemy.orm import Session

from events import Batch
from models.db import Database, get_database
from models.repositories import DeadLetterRepository
from runtime.clock import SYSTEM_CLOCK, Clock
from runtime.confirmations import mark_done
from runtime.metrics_export import count_dead_letter, count_rows
from runtime.redis_clients import cache_redis
from runtime.retry import RetryPolicy
from settings import Settings
from tasks.retry import DEFAULT_CLASSIFIER, DEFAULT_POLICY, Classifier

log = logging.getLogger(__name__)

# A retry countdown never exceeds this fraction of the visibility timeout (see tasks/retry.py).
RETRY_CEILING_OF_VISIBILITY = 0.25
# A task's statement may use this share of the time it has (see statement_timeout_s).
STATEMENT_SHARE = 0.8
# How often PostgreSQL checks, during a statement, that a task's worker is still connected.
CLIENT_CHECK_MS = "2000"


def statement_timeout_s(settings: Settings) -> float:
    """The longest one database statement of a task may run (PostgreSQL ``statement_timeout``).

    A process waiting inside libpq (a lock held by a migration or a partition drop, a hung
    server) cannot be interrupted by Celery: neither the soft time limit nor the cold
    shutdown's cancel gets control back until the call returns, so a SIGTERM would turn
    into a SIGKILL at the orchestrator's deadline. Bounding every statement below both the
    soft time limit and the soft-shutdown timeout makes such a batch fail in time with a
    transient error: it is retried as a new message, and shutdown stays clean.
    """
    bounds = [float(settings.task_time_limit_s - 15)]
    if settings.worker_soft_shutdown_timeout_s > 0:
        bounds.append(settings.worker_soft_shutdown_timeout_s)
    return max(1.0, min(bounds) * STATEMENT_SHARE)


class HyperwatchTask(Task):
    """Applies the retry policy, bounds database statements, dead-letters poison payloads."""

    clock: ClassVar[Clock] = SYSTEM_CLOCK
    failures: ClassVar[Classifier] = DEFAULT_CLASSIFIER
    policy: ClassVar[RetryPolicy] = DEFAULT_POLICY
    # Celery's own cap (default 3) applies whenever retry() is given max_retries=None, which
    # is how an unlimited policy asks; the policy is the only limit, so Celery's must be off.
    max_retries = None

    @property
    def settings(self) -> Settings:
        settings = getattr(self.app, "settings", None)
        if not isinstance(settings, Settings):
            raise RuntimeError(f"{self.name} needs an app built by tasks.application.create_app")
        return settings

    def database(self) -> Database:
        return get_database(self.settings)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work on the process's database; every statement time-bounded.

        On PostgreSQL ≥ 14 the server also checks every few seconds that the client is
        still there: the backend of a SIGKILLed worker that waits on a lock would otherwise
        hold its open transaction — and the unique keys it inserted, which the redelivered
        batch then waits on — until the lock is released.
        """
        with self.database().session() as session:
            # The connection first: a dialect learns the server version on first connect.
            dialect = session.connection().dialect
            if dialect.name == "postgresql":
                ms = str(int(statement_timeout_s(self.settings) * 1000))
                sql = "SELECT set_config('statement_timeout', :ms, true)"
                if (dialect.server_version_info or (0,)) >= (14,):
                    sql += ", set_config('client_connection_check_interval', :check, true)"
                session.execute(text(sql), {"ms": ms, "check": CLIENT_CHECK_MS})
            yield session

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Run time and failures are counted for every task by runtime.metrics_export.
        try:
            return super().__call__(*args, **kwargs)
        except (Retry, Reject):
            raise
        except Exception as exc:
            return self._handle_error(exc, args)

    def _handle_error(self, exc: Exception, args: tuple[Any, ...]) -> Any:
        decision = self.failures.classify(exc)
        if decision == "dead_letter":
            return self.dead_letter(_reason(exc), args[0] if len(args) == 1 else list(args))
        retries = int(self.request.retries or 0)
        attempt = retries + 1  # the attempt that just failed
        limit = self.policy.max_retries
        if decision == "retry" and not self.policy.exhausted(attempt):
            ceiling = self.settings.broker_visibility_timeout_s * RETRY_CEILING_OF_VISIBILITY
            countdown = self.policy.next_delay(attempt, ceiling_s=ceiling)
            broker_delay = getattr(self.app, "countdown", None)  # HyperwatchCelery's
            if callable(broker_delay):  # what the broker will apply (1 s at least on RabbitMQ)
                countdown = broker_delay(countdown)
            log.warning(
                "%s: transient %s, retry %d/%s in %.1fs: %s",
                self.name, type(exc).__name__, retries + 1, "∞" if limit is None else limit,
                countdown, _reason(exc),
            )  # fmt: skip
            try:
                raise self.retry(exc=exc, countdown=countdown, max_retries=limit)
            except Reject as rejected:
                # The retry could not be published (broker down). Celery would drop the
                # message; late ack lets us put it back instead.
                raise Reject(rejected.reason, requeue=True) from exc
        if decision == "retry":
            log.error("%s: giving up after %d retries: %s", self.name, retries, _reason(exc))
        raise exc

    def dead_letter(self, reason: str, payload: Any) -> dict[str, int]:
        """Record a payload that can never be processed; the message is then acknowledged."""
        with self.transaction() as session:
            DeadLetterRepository(session).record(self.name, reason, payload)
        count_dead_letter(self.name)
        log.warning("%s: dead-lettered a payload: %s", self.name, reason)
        # Handled for good: confirm it, or the ingester would keep re-sending poison.
        source, seq = (
            (payload.get("source"), payload.get("seq"))
            if isinstance(payload, Mapping)
            else (None, None)
        )
        if isinstance(source, str) and isinstance(seq, int) and not isinstance(seq, bool):
            self.confirm(Batch("trades", source, seq, []))
        return {"new": 0, "duplicates": 0, "dead_lettered": 1}

    def confirm(self, batch: Batch) -> None:
        """Tell the ingester this batch is committed (runtime/confirmations.py). Best
        effort: if Redis is away the ingester re-sends later, and the write is idempotent."""
        if not batch.source:
            return
        global _confirm_client
        try:
            if _confirm_client is None:
                _confirm_client = cache_redis(self.settings)
            mark_done(_confirm_client, batch.source, batch.seq, self.clock.time_ms())
        except redis.RedisError as exc:
            log.warning(
                "%s: batch seq=%d committed but not confirmed: %s", self.name, batch.seq, exc
            )

    def count_rows(self, table: str, new: int, duplicates: int) -> None:
        count_rows(table, new, duplicates)


# One confirmation client per process (pool children build their own after fork).
_confirm_client: redis.Redis | None = None


def _reason(exc: BaseException) -> str:
    """One line saying what was wrong, without SQL parameters (they hold the payload)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    message = text[0] if text else ""
    return f"{type(exc).__name__}: {message}"[:2000]
