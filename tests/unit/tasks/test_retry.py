"""The retry policy as data: classification and backoff."""

from __future__ import annotations

import random
import sqlite3

import kombu.exceptions
import psycopg2
import pytest
from billiard.exceptions import SoftTimeLimitExceeded
from sqlalchemy import exc as sa_exc

from events import MalformedPayload
from runtime.retry import RetryPolicy
from settings import Settings
from tasks.base import RETRY_CEILING_OF_VISIBILITY, statement_timeout_s
from tasks.retry import DEFAULT_CLASSIFIER, DEFAULT_POLICY


def wrapped(cls: type[sa_exc.DBAPIError], orig: Exception, invalidated: bool = False):
    return cls("INSERT …", {}, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "exc",
    [
        wrapped(sa_exc.OperationalError, psycopg2.OperationalError("server closed the connection")),
        wrapped(sa_exc.OperationalError, sqlite3.OperationalError("database is locked")),
        wrapped(sa_exc.InterfaceError, psycopg2.InterfaceError("connection already closed"), True),
        psycopg2.errors.SerializationFailure("could not serialize access"),
        psycopg2.errors.LockNotAvailable("lock timeout"),
        psycopg2.errors.QueryCanceled("statement timeout"),
        psycopg2.errors.DeadlockDetected("deadlock detected"),
        sa_exc.TimeoutError("QueuePool limit reached"),
        kombu.exceptions.OperationalError("Error 111 connecting to redis"),
        ConnectionResetError(),
        SoftTimeLimitExceeded(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transient_errors_are_retried(exc: BaseException) -> None:
    # Given a transient error; When classified; Then it is retried
    assert DEFAULT_CLASSIFIER.classify(exc) == "retry"


@pytest.mark.parametrize(
    "exc",
    [
        MalformedPayload("event 1: trades.px: not a decimal"),
        wrapped(sa_exc.DataError, psycopg2.DataError("numeric field overflow")),
        psycopg2.errors.StringDataRightTruncation("value too long"),
        wrapped(sa_exc.IntegrityError, psycopg2.IntegrityError("null value in column")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_payload_errors_are_dead_lettered_never_retried(exc: BaseException) -> None:
    assert DEFAULT_CLASSIFIER.classify(exc) == "dead_letter"


@pytest.mark.parametrize(
    "exc",
    [
        KeyError("bug"),
        TypeError("bug"),
        wrapped(sa_exc.ProgrammingError, psycopg2.ProgrammingError("column does not exist")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_bugs_fail_without_retry(exc: BaseException) -> None:
    assert DEFAULT_CLASSIFIER.classify(exc) == "fail"


def test_a_programming_error_from_a_dropped_connection_is_transient() -> None:
    # Given SQLAlchemy marked the connection invalidated; Then the class does not matter
    exc = wrapped(sa_exc.ProgrammingError, psycopg2.ProgrammingError("x"), invalidated=True)
    assert DEFAULT_CLASSIFIER.classify(exc) == "retry"


def test_countdown_is_exponential_with_equal_jitter_and_capped() -> None:
    policy = RetryPolicy(base_s=1, cap_s=60)
    rng = random.Random(7)
    for retries, full in [(0, 1), (1, 2), (2, 4), (5, 32), (6, 60), (9, 60)]:
        samples = [policy.next_delay(retries + 1, rng=rng) for _ in range(200)]
        # never less than half the step (no immediate retry), never more than the step
        assert full / 2 <= min(samples) and max(samples) <= full
        assert max(samples) - min(samples) > full / 4  # actually spread out


def test_countdown_respects_a_ceiling_from_the_visibility_timeout() -> None:
    # Given a 20 s visibility timeout, retries wait at most a quarter of it
    ceiling = 20 * RETRY_CEILING_OF_VISIBILITY
    assert max(DEFAULT_POLICY.next_delay(10, ceiling_s=ceiling) for _ in range(100)) <= 5


def test_default_policy_stays_far_below_the_default_visibility_timeout() -> None:
    vt = Settings.model_fields["broker_visibility_timeout_s"].default
    assert DEFAULT_POLICY.cap_s <= vt * RETRY_CEILING_OF_VISIBILITY
    # and never gives up on a dependency that is away: the batch waits for it
    assert DEFAULT_POLICY.max_retries is None
    assert DEFAULT_POLICY.worst_case_total_s() == float("inf")
    # while a finite policy gives up within minutes, not hours
    finite = RetryPolicy(max_attempts=11)
    assert 120 <= finite.worst_case_total_s() <= 600


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(base_s=10, cap_s=1)


def test_statement_bound_stays_below_soft_shutdown_and_soft_time_limit(
    settings_for,
) -> None:
    # Given the defaults (soft shutdown 45 s, time limit 300 s): below 45
    assert statement_timeout_s(settings_for()) == pytest.approx(36.0)
    # Given a short soft shutdown, it follows it; with soft shutdown off, the time limit
    assert statement_timeout_s(settings_for(worker_soft_shutdown_timeout_s=3)) == pytest.approx(2.4)
    assert statement_timeout_s(
        settings_for(worker_soft_shutdown_timeout_s=0, task_time_limit_s=60)
    ) == pytest.approx(36.0)


def test_given_unlimited_policy_then_celerys_own_retry_cap_is_off() -> None:
    # Celery's Task.retry(max_retries=None) falls back to Task.max_retries (default 3) and then
    # fails the task, which acknowledges and loses the batch; the policy must be the only cap.
    from tasks.base import HyperwatchTask

    assert DEFAULT_POLICY.max_retries is None
    assert HyperwatchTask.max_retries is None
