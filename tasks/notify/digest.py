"""The digest task: a channel's waiting notifications → one digest row → one delivery.

``hyperwatch.notify.flush_due()`` — queue ``notify``; runs the channels whose digest is
due (``tasks.notify.due``), scheduled by the delivery that made a notification wait
(``tasks.notify.deliver``, ``domain.notify.grouping``) for when the digest is due.
``hyperwatch.notify.flush_digest(channel_id)`` runs one channel's: what versions before
``flush_due`` scheduled, kept so their messages still run during a rolling deploy.

1. The gate decides: not due yet (the scheduled run comes), the budget is empty (run again
   when a token is there), nothing waits, or go — a token taken, a new group interval begun,
   and the waiting notification ids.
2. Each waiting row is locked (``DeliveryLocks``: all in one round trip, so no single
   delivery of it runs at the same time) and, in one transaction, the rows still ``pending`` and never attempted
   become: one row alone — delivered as itself; two or more — a digest row (payload built
   once, ``domain.notify.digest``; idempotency key ``digest:<channel>:<first member id>``)
   and the members ``digested``, pointing at it.
3. After the commit the members stop waiting and the digest (or the single row) is
   attempted at once; a failed attempt is retried by ``hyperwatch.notify.deliver`` like any
   row — with the stored payload, so a retry after a timeout sends the same digest under
   the same Idempotency-Key, never a different one.

Idempotent: a second run finds nothing waiting (or rows no longer pending). A crash before
the commit leaves the rows pending and waiting: the outbox sweeper re-enqueues them, their
admission schedules the digest again. Retries transient database / Redis errors
(``tasks.retry``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from celery import shared_task
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from domain.notify.digest import Member, build, digest_key
from domain.notify.grouping import Windows
from domain.notify.signing import idempotency_key
from models.notification import Notification
from models.repositories import ChannelRepository, NotificationRepository
from runtime.metrics_export import count_notification
from tasks.base import HyperwatchTask
from tasks.notify.deliver import Deliverer, Step, deliverer_for, windows_of
from tasks.notify.due import FLUSH_DUE_TASK, run_due
from tasks.notify.outbox import DeliveryLocks, lock_ttl_ms

log = logging.getLogger(__name__)

DELIVER_TASK: Final = "hyperwatch.notify.deliver"


@dataclass(frozen=True, slots=True)
class Flushed:
    """What one run did: ``sent`` is the row attempted (a digest or a lone notification)."""

    members: int = 0
    sent: int | None = None
    digest: bool = False
    step: Step | None = None
    due_in_s: float | None = None  # run again in this long (the budget was empty)


def _fold(
    session: Session, channel_id: int, kind: str, ids: list[int], now_ms: int
) -> tuple[Notification | None, bool, list[int]]:
    """In the caller's transaction: the row to attempt (a new digest or the lone row),
    whether it is a digest, and the alert ids it delivers."""
    stmt = (
        select(Notification)
        .where(
            Notification.id.in_(ids),
            Notification.channel_id == channel_id,
            Notification.status == "pending",
            Notification.attempts == 0,
        )
        .order_by(Notification.id)
    )
    rows = list(session.scalars(stmt))
    alert_ids = [r.alert_id for r in rows if r.alert_id is not None]
    if len(rows) < 2:
        return (rows[0] if rows else None), False, alert_ids
    members = [Member(r.id, idempotency_key(r.id), dict(r.payload), r.event_time) for r in rows]
    times = [r.event_time for r in rows if r.event_time is not None]
    digest, _ = NotificationRepository(session).enqueue(
        user_id=rows[0].user_id,
        channel_kind=kind,
        channel_id=channel_id,
        payload=build(rows[0].user_id, kind, members, now_ms),
        idempotency_key=digest_key(channel_id, members),
        event_time=min(times) if times else None,
    )
    session.execute(
        update(Notification)
        .where(Notification.id.in_([r.id for r in rows]), Notification.status == "pending")
        .values(status="digested", digest_id=digest.id)
        .execution_options(synchronize_session=False)
    )
    return digest, True, alert_ids


def flush(deliverer: Deliverer, channel_id: int) -> Flushed:
    """Send the channel's digest if it is due (see module).

    One transaction reads the channel, folds the members and reads the row to attempt
    (the gate's decision and the members' locks taken inside it, in Redis); the attempt
    then settles in a second. The row is not locked and read again: a lone member's lock
    is kept from the fold, a new digest's is taken before it is attempted."""
    now_ms = deliverer.clock.time_ms()
    # The members' locks in one round trip each way, not one per member.
    locks = DeliveryLocks(deliverer.context.redis, lock_ttl_ms(deliverer.settings))
    try:
        with deliverer.database.session() as session:
            channel = ChannelRepository(session).get(channel_id)
            windows = Windows() if channel is None else windows_of(deliverer.settings, channel)
            kind = "webhook" if channel is None else channel.kind
            decision = deliverer.gate.flush(channel_id, windows, now_ms)
            if not decision.go:
                due_ms = decision.due_ms if decision.reschedule else None
            else:
                due_ms = None
                ids = locks.acquire(decision.members)
                target, is_digest, alert_ids = _fold(session, channel_id, kind, ids, now_ms)
                outbox = NotificationRepository(session)
                job = None if target is None else deliverer.job_of(outbox, target, channel)
        if not decision.go:
            if due_ms is None:
                return Flushed()
            delay_s = max(0.0, (due_ms - now_ms) / 1000)
            deliverer.schedule_flush(channel_id, delay_s)
            return Flushed(due_in_s=delay_s)
        # Committed: they no longer wait. A busy one (locked by a delivery still settling
        # its admission, in another worker) stays waiting: the channel's next digest, at
        # the end of the interval this one began, takes it — scheduled here, as nothing
        # else would (its own admission found this digest already scheduled).
        deliverer.gate.settled(channel_id, ids, alert_ids, now_ms)
        if len(ids) < len(decision.members):
            deliverer.schedule_flush(channel_id, max(1.0, windows.group_interval_ms / 1000))
        if target is None or job is None:
            return Flushed()
        locks.release([i for i in ids if i != target.id])
        if is_digest:
            for _ in ids:
                count_notification("digested", kind)
            log.info(
                "digest %d of %d notifications for channel %d", target.id, len(ids), channel_id
            )
        if isinstance(job, Step):  # not pending after all, or its channel went away (failed)
            step = job
        elif target.id in ids or target.id in locks.acquire([target.id]):
            step = deliverer.attempt_held(target.id, job)
        else:  # pragma: no cover - the digest of these members existed, and is being sent
            step = Step("busy", reason="another delivery of this notification is running")
    finally:
        locks.release_all()
    return Flushed(members=len(ids), sent=target.id, digest=is_digest, step=step)


def _retry_if_asked(task: HyperwatchTask, done: Flushed) -> None:
    """A digest (or lone row) whose attempt asked for a retry gets its own ``deliver``."""
    if done.step is not None and done.step.action == "retry" and done.sent is not None:
        task.app.send_task(DELIVER_TASK, args=[done.sent], countdown=done.step.delay_s)


@shared_task(name="hyperwatch.notify.flush_due", bind=True, base=HyperwatchTask)
def flush_due(self: HyperwatchTask) -> dict[str, object]:
    """Run a page of the digests due by now (``tasks.notify.due``); a full page sends the
    next page's run first."""
    deliverer = deliverer_for(self)

    def run(channel_id: int) -> None:
        _retry_if_asked(self, flush(deliverer, channel_id))

    def more() -> None:
        self.app.send_task(FLUSH_DUE_TASK)

    channels, full = run_due(deliverer.context.redis, deliverer.clock.time_ms(), run, more)
    return {"channels": channels, "more": full}


@shared_task(name="hyperwatch.notify.flush_digest", bind=True, base=HyperwatchTask)
def flush_digest(self: HyperwatchTask, channel_id: int) -> dict[str, object]:
    """Send a channel's digest when it is due (see module contract)."""
    done = flush(deliverer_for(self), int(channel_id))
    _retry_if_asked(self, done)
    return {"members": done.members, "digest": done.digest, "sent": done.sent}
