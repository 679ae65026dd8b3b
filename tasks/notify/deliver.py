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
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Final, Literal

import httpx
import redis
from celery import Celery, shared_task

from domain.notify.channels import CHANNELS, Attempt, DeliveryContext, Outgoing
from domain.notify.retry_policy import DELIVERY_CAP_S, classify, decide, delivery_policy
from domain.notify.signing import idempotency_key
from models.db import Database
from models.repositories import NotificationRepository
from runtime.clock import SYSTEM_CLOCK, Clock, utc_now
from runtime.metrics_export import count_notification, observe_notification_latency
from settings import Settings
from tasks.base import RETRY_CEILING_OF_VISIBILITY, HyperwatchTask
from tasks.notify.outbox import DeliveryLock, lock_ttl_ms, mark_scheduled, redis_client

log = logging.getLogger(__name__)

Action = Literal["sent", "failed", "retry", "skipped", "busy"]
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


class Deliverer:
    """One worker process's delivery machinery: policy, HTTP and Redis clients."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        client: redis.Redis,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.database = database
        ceiling = settings.broker_visibility_timeout_s * RETRY_CEILING_OF_VISIBILITY
        self.policy = delivery_policy(settings, cap_s=min(DELIVERY_CAP_S, ceiling))
        self.context = DeliveryContext(
            settings=settings,
            http=httpx.Client(timeout=settings.notify_timeout_s, follow_redirects=False),
            redis=client,
            clock=clock,
        )

    def attempt(self, notification_id: int, rng: random.Random | None = None) -> Step:
        """One delivery attempt of one row, settled in the database (see module)."""
        client = self.context.redis
        lock = DeliveryLock(client, notification_id, lock_ttl_ms(self.settings))
        if not lock.acquire():
            return Step("busy", reason="another delivery of this notification is running")
        try:
            job = self._load(notification_id)
            if isinstance(job, Step):
                return job
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
            return _Job(out, channel.kind, row.attempts + 1, row.event_time)

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
        deliverer = Deliverer(
            task.settings, task.database(), redis_client(task.settings), task.clock
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
