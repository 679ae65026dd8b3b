"""The ``notify`` queue: one outbox row → one delivery attempt → sent, failed or a retry.

``hyperwatch.notify.deliver(notification_id)`` — queue ``notify``; a retry, the sweeper.
``hyperwatch.notify.deliver_many(notification_ids)`` — queue ``notify``; what a firing
transaction sends for its rows: the same attempt per row, with the bookkeeping done for the
burst at once (``Deliverer.attempt_many``), and a row's retry sent as its own ``deliver``.

- **Idempotent**: a row that is not ``pending`` (already sent, failed or suppressed, or
  gone) is left alone; at most one attempt per row runs at a time in the whole system
  (``tasks.notify.outbox.DeliveryLock``); a second message for a row being delivered
  returns at once. Receivers still see *at least once* — a worker killed after the
  receiver answered but before ``sent`` was committed sends again — with the same
  ``Idempotency-Key`` on every attempt, so they dedupe.
- **Retries delivery failures** per ``domain.notify.retry_policy`` (``NOTIFY_MAX_ATTEMPTS``
  attempts): timeouts, connection and DNS errors, 408/425/429 and 5xx, after a jittered
  exponential backoff or the server's ``Retry-After`` / Telegram ``retry_after``, every
  delay capped at a quarter of the broker visibility timeout. Each attempt is counted in
  the row (``attempts``, ``last_error``) before the retry is scheduled.
- **Never retries** other 4xx, redirects, egress refusals (a private or malformed URL), a
  failed TLS certificate check, or a channel that was removed: the row becomes ``failed``
  with the reason; after the last attempt it is ``failed`` with the last error.
- Transient database / Redis errors around the attempt are retried by the task policy
  (``tasks.retry``). Secrets (webhook secret, bot token) never reach a log or the row.
- **Grouping** (``domain.notify.grouping``): before a row's first attempt, its channel's
  windows and rate budget decide whether it goes out alone now; if not it stays
  ``pending``, waits in the channel's group, and its channel's digest
  (``tasks.notify.digest``) is scheduled for when it is due (``tasks.notify.due``: one
  ``hyperwatch.notify.flush_due`` message per tick for all the channels due then). A digest row and a
  row already attempted (a retry) are never grouped again: a retry resends what was sent.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final, Literal

import httpx
import redis
from celery import Celery, shared_task

from domain.notify.budgets import budget_of
from domain.notify.channels import CHANNELS, Attempt, DeliveryContext, Outgoing
from domain.notify.digest import is_digest
from domain.notify.grouping import Gate, Windows
from domain.notify.retry_policy import DELIVERY_CAP_S, classify, decide, delivery_policy
from domain.notify.signing import idempotency_key
from models.db import Database
from models.notification import Notification
from models.notification_channel import NotificationChannel
from models.repositories import NotificationRepository
from runtime.clock import SYSTEM_CLOCK, Clock, utc_now
from runtime.metrics_export import count_notification, observe_notification_latency
from settings import Settings
from tasks.base import RETRY_CEILING_OF_VISIBILITY, HyperwatchTask
from tasks.notify.due import FLUSH_DUE_TASK, schedule
from tasks.notify.outbox import (
    DeliveryLock,
    DeliveryLocks,
    lock_ttl_ms,
    mark_scheduled,
    redis_client,
)

log = logging.getLogger(__name__)

Action = Literal["sent", "failed", "retry", "skipped", "busy", "grouped"]
DELIVER_TASK: Final = "hyperwatch.notify.deliver"
# A scheduled retry is left alone by the sweeper for its delay plus this much.
SCHEDULE_MARGIN_S: Final = 30.0
# Rows of one burst sent at once (``Deliverer.attempt_many``): a slow receiver holds up
# one of these threads, not the burst; the HTTP client's pool (100 connections) has room.
SEND_CONCURRENCY: Final = 16


@dataclass(frozen=True, slots=True)
class Step:
    action: Action
    delay_s: float = 0.0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class _Job:
    out: Outgoing
    kind: str
    attempt: int
    event_time: int | None
    channel_id: int = 0
    alert_id: int | None = None
    windows: Windows = field(default_factory=Windows)
    groupable: bool = False  # a first attempt of a row that is not a digest


@dataclass(frozen=True, slots=True)
class _Outcome:
    action: str  # the retry policy's: done, fail or retry
    status: str  # what the row becomes: sent, failed, or pending (a retry)
    error: str | None
    delay_s: float


def _no_schedule(channel_id: int, delay_s: float) -> None:
    """Without a task queue (a CLI send), a waiting row is found by the outbox sweeper."""


def windows_of(settings: Settings, channel: NotificationChannel) -> Windows:
    """A channel's grouping windows: its own values, else the NOTIFY_GROUP_* settings."""

    def ms(own: int | None, default: int) -> int:
        return (default if own is None else own) * 1000

    return Windows(
        group_wait_ms=ms(channel.group_wait_s, settings.notify_group_wait_s),
        group_interval_ms=ms(channel.group_interval_s, settings.notify_group_interval_s),
        repeat_interval_ms=ms(channel.repeat_interval_s, settings.notify_repeat_interval_s),
        budget=budget_of(channel.kind),
    )


class Deliverer:
    """One worker process's delivery machinery: policy, HTTP and Redis clients."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        client: redis.Redis,
        clock: Clock = SYSTEM_CLOCK,
        *,
        schedule_flush: Callable[[int, float], None] | None = None,
    ) -> None:
        """``schedule_flush(channel_id, delay_s)`` sends the channel's digest task."""
        self.settings = settings
        self.clock = clock
        self.database = database
        self.gate = Gate(client)
        self.schedule_flush: Callable[[int, float], None] = (
            schedule_flush if schedule_flush is not None else _no_schedule
        )
        ceiling = settings.broker_visibility_timeout_s * RETRY_CEILING_OF_VISIBILITY
        self.policy = delivery_policy(settings, cap_s=min(DELIVERY_CAP_S, ceiling))
        self.context = DeliveryContext(
            settings=settings,
            http=httpx.Client(timeout=settings.notify_timeout_s, follow_redirects=False),
            redis=client,
            clock=clock,
        )
        self._senders: ThreadPoolExecutor | None = None
        self._senders_lock = threading.Lock()

    def attempt(
        self, notification_id: int, rng: random.Random | None = None, *, admitted: bool = False
    ) -> Step:
        """One delivery attempt of one row, settled in the database (see module).
        ``admitted``: the digest task already decided it goes now (no grouping)."""
        client = self.context.redis
        lock = DeliveryLock(client, notification_id, lock_ttl_ms(self.settings))
        if not lock.acquire():
            return Step("busy", reason="another delivery of this notification is running")
        flushes: list[tuple[int, float]] = []
        try:
            job = self._load(notification_id)
            if isinstance(job, Step):
                return job
            if job.groupable and not admitted:
                waiting = self._admit(notification_id, job, flushes)
                if waiting is not None:
                    return waiting
            sender = CHANNELS[job.kind]
            result = sender.send(job.out, self.context)
            return self._settle(notification_id, job, result, rng)
        finally:
            lock.release()
            self._schedule(flushes)

    def attempt_held(
        self, notification_id: int, job: _Job, rng: random.Random | None = None
    ) -> Step:
        """One attempt of a row whose delivery lock the caller holds and whose job it has
        just read (:meth:`job_of`, in the transaction that wrote or claimed the row): the
        digest task's, which need not lock and read it again."""
        result = CHANNELS[job.kind].send(job.out, self.context)
        return self._settle(notification_id, job, result, rng)

    def _schedule(self, flushes: list[tuple[int, float]]) -> None:
        """Send the digest tasks decided meanwhile — only once the rows' locks are free: a
        digest due now would otherwise find its members locked (busy) and leave them."""
        for channel_id, delay_s in flushes:
            self.schedule_flush(channel_id, delay_s)

    def attempt_many(
        self, notification_ids: Sequence[int], rng: random.Random | None = None
    ) -> dict[int, Step]:
        """:meth:`attempt` for a burst's rows (what one firing transaction wrote), with the
        per-row work set-based: the locks taken in one round trip, the rows and channels
        read in one query, the grouping decisions in one pipeline; the rows that go out now
        are sent ``SEND_CONCURRENCY`` at a time, each wave settled in one transaction.
        Per row, the same outcome as :meth:`attempt` (a row locked elsewhere is ``busy``)."""
        ids = sorted(set(notification_ids))
        locks = DeliveryLocks(self.context.redis, lock_ttl_ms(self.settings))
        steps: dict[int, Step] = {}
        try:
            held = locks.acquire(ids)
            steps.update(
                (i, Step("busy", reason="another delivery of this notification is running"))
                for i in set(ids) - set(held)
            )
            jobs: dict[int, _Job] = {}
            with self.database.session() as session:
                outbox = NotificationRepository(session)
                found = outbox.with_channels(held)
                for i in held:
                    job = self.job_of(outbox, *found[i]) if i in found else None
                    if job is None:
                        steps[i] = Step("skipped", reason="not pending")
                    elif isinstance(job, Step):
                        steps[i] = job
                    else:
                        jobs[i] = job
            flushes: list[tuple[int, float]] = []
            steps.update(self._admit_many(jobs, flushes))
            locks.release([i for i in held if i in steps])  # grouped, skipped, failed
            self._schedule(flushes)
            now = [(i, job) for i, job in jobs.items() if i not in steps]
            for k in range(0, len(now), SEND_CONCURRENCY):
                steps.update(self._send_wave(now[k : k + SEND_CONCURRENCY], locks, rng))
        finally:
            locks.release_all()
        return steps

    def _admit_many(
        self, jobs: dict[int, _Job], flushes: list[tuple[int, float]]
    ) -> dict[int, Step]:
        """The grouping decisions of ``jobs``' first attempts: the rows that wait (the
        digests to schedule appended to ``flushes``)."""
        groupable = [(i, job) for i, job in jobs.items() if job.groupable]
        if not groupable:
            return {}
        now_ms = self.clock.time_ms()
        admissions = self.gate.admit_many(
            [(job.channel_id, job.windows, i, job.alert_id) for i, job in groupable], now_ms
        )
        steps: dict[int, Step] = {}
        pipe = self.context.redis.pipeline(transaction=False)
        for (i, job), admission in zip(groupable, admissions, strict=True):
            if admission.send:
                continue
            delay_s = max(0.0, (admission.due_ms - now_ms) / 1000)
            count_notification("grouped", job.kind)
            if admission.schedule:
                flushes.append((job.channel_id, delay_s))
            mark_scheduled(pipe, i, delay_s + SCHEDULE_MARGIN_S)
            steps[i] = Step("grouped", delay_s, f"waits for channel {job.channel_id}'s digest")
        pipe.execute()
        return steps

    def _send_wave(
        self, wave: list[tuple[int, _Job]], locks: DeliveryLocks, rng: random.Random | None
    ) -> dict[int, Step]:
        """Send up to ``SEND_CONCURRENCY`` rows at once and settle them in one transaction.
        Their locks get a full lifetime first, so one wave's worst case (every send timing
        out) fits in it as one attempt's does; a row whose lock lapsed is left alone."""
        kept = set(locks.extend([i for i, _ in wave]))
        steps = {
            i: Step("busy", reason="another delivery of this notification is running")
            for i, _ in wave
            if i not in kept
        }
        wave = [(i, job) for i, job in wave if i in kept]
        if not wave:
            return steps
        jobs = [job for _, job in wave]
        if len(jobs) == 1:  # no thread hand-off for a lone row
            results = [self._send(jobs[0])]
        else:
            results = list(self._pool().map(self._send, jobs))
        outcomes = [
            self._outcome(job, result, rng) for (_, job), result in zip(wave, results, strict=True)
        ]
        with self.database.session() as session:
            outbox = NotificationRepository(session)
            outbox.settle_sent(
                [i for (i, _), o in zip(wave, outcomes, strict=True) if o.status == "sent"]
            )
            for (i, _), o in zip(wave, outcomes, strict=True):
                if o.status != "sent":
                    outbox.settle(i, o.status, o.error)
        for (i, job), result, o in zip(wave, results, outcomes, strict=True):
            steps[i] = self._settled(i, job, result, o)
        locks.release([i for i, _ in wave])
        return steps

    def _send(self, job: _Job) -> Attempt:
        return CHANNELS[job.kind].send(job.out, self.context)

    def _pool(self) -> ThreadPoolExecutor:
        # Built on first use, once, though the worker's threads may all get here at once.
        with self._senders_lock:
            if self._senders is None:
                self._senders = ThreadPoolExecutor(
                    SEND_CONCURRENCY, thread_name_prefix="notify-send"
                )
            return self._senders

    def _load(self, notification_id: int) -> _Job | Step:
        with self.database.session() as session:
            outbox = NotificationRepository(session)
            found = outbox.with_channel(notification_id)
            if found is None:
                return Step("skipped", reason="not pending")
            return self.job_of(outbox, *found)

    def job_of(
        self, outbox: NotificationRepository, row: Notification, channel: NotificationChannel | None
    ) -> _Job | Step:
        """A loaded row's delivery job, or what became of it (in the caller's session)."""
        notification_id = row.id
        if row.status != "pending":
            return Step("skipped", reason="not pending")
        if channel is None or not channel.active or channel.kind not in CHANNELS:
            reason = "the notification channel was removed or deactivated"
            outbox.settle(notification_id, "failed", reason)
            count_notification("failed", row.channel_kind)
            return Step("failed", reason=reason)
        until = channel.previous_secret_until
        out = Outgoing(
            notification_id=row.id,
            idempotency_key=idempotency_key(row.id),
            user_id=row.user_id,
            target=channel.target,
            secret=channel.secret,
            payload=dict(row.payload),
            # A rotated-out secret signs too until its window ends (at this attempt's time).
            previous_secret=(
                channel.previous_secret
                if until is not None and utc_now(self.clock) < until
                else None
            ),
        )
        return _Job(
            out,
            channel.kind,
            row.attempts + 1,
            row.event_time,
            channel_id=channel.id,
            alert_id=row.alert_id,
            windows=windows_of(self.settings, channel),
            groupable=row.attempts == 0 and not is_digest(row.payload),
        )

    def _admit(
        self, notification_id: int, job: _Job, flushes: list[tuple[int, float]]
    ) -> Step | None:
        """None when the row goes out now; else it waits for its channel's digest (the
        digest to schedule appended to ``flushes``)."""
        now_ms = self.clock.time_ms()
        admission = self.gate.admit(
            job.channel_id, job.windows, notification_id, job.alert_id, now_ms
        )
        if admission.send:
            return None
        delay_s = max(0.0, (admission.due_ms - now_ms) / 1000)
        count_notification("grouped", job.kind)
        if admission.schedule:
            flushes.append((job.channel_id, delay_s))
        # The digest settles it; the sweeper looks again only if the digest never came.
        mark_scheduled(self.context.redis, notification_id, delay_s + SCHEDULE_MARGIN_S)
        return Step("grouped", delay_s, f"waits for channel {job.channel_id}'s digest")

    def _settle(
        self, notification_id: int, job: _Job, result: Attempt, rng: random.Random | None
    ) -> Step:
        outcome = self._outcome(job, result, rng)
        with self.database.session() as session:
            NotificationRepository(session).settle(notification_id, outcome.status, outcome.error)
        return self._settled(notification_id, job, result, outcome)

    def _outcome(self, job: _Job, result: Attempt, rng: random.Random | None) -> _Outcome:
        """What an attempt's result makes of its row: the status and last error to store."""
        decision = decide(self.policy, job.attempt, result.result, result.retry_after, rng)
        error = None if decision.action == "done" else result.description
        if decision.action == "fail":
            prefix = (
                "permanent error"
                if classify(result.result) == "permanent"
                else f"gave up after {job.attempt} attempts"
            )
            error = f"{prefix}: {result.description}"
        status = {"done": "sent", "fail": "failed"}.get(decision.action, "pending")
        return _Outcome(decision.action, status, error, decision.delay_s)

    def _settled(self, notification_id: int, job: _Job, result: Attempt, outcome: _Outcome) -> Step:
        """After the row's settle is committed: count, log, mark a retry scheduled."""
        decision, error = outcome, outcome.error
        if decision.action == "done":
            count_notification("sent", job.kind)
            if job.event_time is not None:
                observe_notification_latency(job.kind, self.clock.time() - job.event_time / 1000)
            log.info(
                "notification %d sent via %s (attempt %d)", notification_id, job.kind, job.attempt
            )
            return Step("sent")
        if decision.action == "fail":
            count_notification("failed", job.kind)
            log.warning("notification %d failed via %s: %s", notification_id, job.kind, error)
            return Step("failed", reason=error or "")
        count_notification("retry", job.kind)
        mark_scheduled(self.context.redis, notification_id, decision.delay_s + SCHEDULE_MARGIN_S)
        log.warning(
            "notification %d attempt %d via %s failed (%s); retry in %.1fs",
            notification_id, job.attempt, job.kind, result.description, decision.delay_s,
        )  # fmt: skip
        return Step("retry", decision.delay_s, result.description)

    def close(self) -> None:
        if self._senders is not None:
            self._senders.shutdown(wait=True)
        self.context.http.close()


def deliverer_for(task: HyperwatchTask) -> Deliverer:
    """This worker process's deliverer for the task's app (built on first use, after fork)."""
    app: Celery = task.app
    deliverer: Deliverer | None = getattr(app, "_hyperwatch_deliverer", None)
    if deliverer is None:
        client = redis_client(task.settings)
        clock = task.clock

        def send_tick(countdown_s: float) -> None:
            app.send_task(FLUSH_DUE_TASK, countdown=countdown_s)

        def schedule_flush(channel_id: int, delay_s: float) -> None:
            schedule(client, channel_id, delay_s, clock.time_ms(), send_tick)

        deliverer = Deliverer(
            task.settings, task.database(), client, clock, schedule_flush=schedule_flush
        )
        app._hyperwatch_deliverer = deliverer
    return deliverer


@shared_task(name="hyperwatch.notify.deliver_many", bind=True, base=HyperwatchTask)
def deliver_many(self: HyperwatchTask, notification_ids: list[int]) -> dict[str, int]:
    """Attempt a burst's notifications (``Deliverer.attempt_many``). A row whose attempt
    asks for a retry gets its own ``hyperwatch.notify.deliver`` with the delay: a retry
    is one row's, as it is for a row delivered alone."""
    steps = deliverer_for(self).attempt_many([int(i) for i in notification_ids])
    for notification_id, step in steps.items():
        if step.action == "retry":
            self.app.send_task(DELIVER_TASK, args=[notification_id], countdown=step.delay_s)
    counts: dict[str, int] = {}
    for step in steps.values():
        counts[step.action] = counts.get(step.action, 0) + 1
    return counts


@shared_task(name="hyperwatch.notify.deliver", bind=True, base=HyperwatchTask, max_retries=None)
def deliver(self: HyperwatchTask, notification_id: int) -> dict[str, object]:
    """Attempt one notification's delivery (see module contract)."""
    step = deliverer_for(self).attempt(int(notification_id))
    if step.action == "retry":
        raise self.retry(countdown=step.delay_s, max_retries=None)
    return {"action": step.action, "reason": step.reason}
