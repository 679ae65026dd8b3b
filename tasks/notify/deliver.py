"""The ``notify`` queue: one outbox row → one delivery attempt → sent, failed or a retry.

``hyperwatch.notify.deliver(notification_id)`` — queue ``notify``.

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
  ``pending``, waits in the channel's group, and ``hyperwatch.notify.flush_digest``
  (``tasks.notify.digest``) is scheduled for when the digest is due. A digest row and a
  row already attempted (a retry) are never grouped again: a retry resends what was sent.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
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
from models.notification_channel import NotificationChannel
from models.repositories import NotificationRepository
from runtime.clock import SYSTEM_CLOCK, Clock, utc_now
from runtime.metrics_export import count_notification, observe_notification_latency
from settings import Settings
from tasks.base import RETRY_CEILING_OF_VISIBILITY, HyperwatchTask
from tasks.notify.outbox import DeliveryLock, lock_ttl_ms, mark_scheduled, redis_client

log = logging.getLogger(__name__)

Action = Literal["sent", "failed", "retry", "skipped", "busy", "grouped"]
FLUSH_TASK: Final = "hyperwatch.notify.flush_digest"
# A scheduled retry is left alone by the sweeper for its delay plus this much.
SCHEDULE_MARGIN_S: Final = 30.0


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

    def attempt(
        self, notification_id: int, rng: random.Random | None = None, *, admitted: bool = False
    ) -> Step:
        """One delivery attempt of one row, settled in the database (see module).
        ``admitted``: the digest task already decided it goes now (no grouping)."""
        client = self.context.redis
        lock = DeliveryLock(client, notification_id, lock_ttl_ms(self.settings))
        if not lock.acquire():
            return Step("busy", reason="another delivery of this notification is running")
        try:
            job = self._load(notification_id)
            if isinstance(job, Step):
                return job
            if job.groupable and not admitted:
                waiting = self._admit(notification_id, job)
                if waiting is not None:
                    return waiting
            sender = CHANNELS[job.kind]
            result = sender.send(job.out, self.context)
            return self._settle(notification_id, job, result, rng)
        finally:
            lock.release()

    def _load(self, notification_id: int) -> _Job | Step:
        with self.database.session() as session:
            outbox = NotificationRepository(session)
            found = outbox.with_channel(notification_id)
            if found is None or found[0].status != "pending":
                return Step("skipped", reason="not pending")
            row, channel = found
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

    def _admit(self, notification_id: int, job: _Job) -> Step | None:
        """None when the row goes out now; else it waits for its channel's digest."""
        now_ms = self.clock.time_ms()
        admission = self.gate.admit(
            job.channel_id, job.windows, notification_id, job.alert_id, now_ms
        )
        if admission.send:
            return None
        delay_s = max(0.0, (admission.due_ms - now_ms) / 1000)
        count_notification("grouped", job.kind)
        if admission.schedule:
            self.schedule_flush(job.channel_id, delay_s)
        # The digest settles it; the sweeper looks again only if the digest never came.
        mark_scheduled(self.context.redis, notification_id, delay_s + SCHEDULE_MARGIN_S)
        return Step("grouped", delay_s, f"waits for channel {job.channel_id}'s digest")

    def _settle(
        self, notification_id: int, job: _Job, result: Attempt, rng: random.Random | None
    ) -> Step:
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
        with self.database.session() as session:
            NotificationRepository(session).settle(notification_id, status, error)
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
        self.context.http.close()


def deliverer_for(task: HyperwatchTask) -> Deliverer:
    """This worker process's deliverer for the task's app (built on first use, after fork)."""
    app: Celery = task.app
    deliverer: Deliverer | None = getattr(app, "_hyperwatch_deliverer", None)
    if deliverer is None:

        def schedule_flush(channel_id: int, delay_s: float) -> None:
            app.send_task(FLUSH_TASK, args=[channel_id], countdown=delay_s)

        deliverer = Deliverer(
            task.settings,
            task.database(),
            redis_client(task.settings),
            task.clock,
            schedule_flush=schedule_flush,
        )
        app._hyperwatch_deliverer = deliverer
    return deliverer


@shared_task(name="hyperwatch.notify.deliver", bind=True, base=HyperwatchTask, max_retries=None)
def deliver(self: HyperwatchTask, notification_id: int) -> dict[str, object]:
    """Attempt one notification's delivery (see module contract)."""
    step = deliverer_for(self).attempt(int(notification_id))
    if step.action == "retry":
        raise self.retry(countdown=step.delay_s, max_retries=None)
    return {"action": step.action, "reason": step.reason}
