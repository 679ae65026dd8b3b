"""The notification outbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from models.base import utcnow
from models.notification import Notification
from models.repositories.base import Repository

COUNTED_FOR_QUOTA = ("pending", "sent", "failed")


class NotificationRepository(Repository[Notification]):
    model = Notification

    def enqueue(
        self,
        *,
        user_id: int,
        channel_kind: str,
        payload: dict[str, Any],
        idempotency_key: str,
        alert_id: int | None = None,
        channel_id: int | None = None,
        status: str = "pending",
        reason: str | None = None,
        event_time: int | None = None,
    ) -> tuple[Notification, bool]:
        """Write an outbox row; idempotency key: ``idempotency_key``. Returns (row, created).

        A second enqueue with the same key returns the first row unchanged.
        """
        existing = self.by_key(idempotency_key)
        if existing is not None:
            return existing, False
        row = Notification(
            user_id=user_id,
            alert_id=alert_id,
            channel_id=channel_id,
            channel_kind=channel_kind,
            payload=payload,
            status=status,
            attempts=0,
            last_error=reason,
            idempotency_key=idempotency_key,
            event_time=event_time,
        )
        try:
            with self.session.begin_nested():
                self.session.add(row)
        except IntegrityError:
            found = self.by_key(idempotency_key)
            if found is None:
                raise
            return found, False
        return row, True

    def by_key(self, idempotency_key: str) -> Notification | None:
        stmt = select(Notification).where(Notification.idempotency_key == idempotency_key)
        return self.session.scalars(stmt).first()

    def record_attempt(self, notification_id: int, error: str | None) -> None:
        """Count one delivery attempt (and its error). Not idempotent by design: it counts."""
        stmt = (
            update(Notification)
            .where(Notification.id == notification_id)
            .values(attempts=Notification.attempts + 1, last_error=error, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        self.session.execute(stmt)

    def mark_sent(self, notification_id: int) -> bool:
        """pending → sent, once. Idempotency key: the status; a second call returns False."""
        return self._transition(notification_id, "sent", None)

    def mark_failed(self, notification_id: int, error: str) -> bool:
        """pending → failed with the last error, once."""
        return self._transition(notification_id, "failed", error)

    def _transition(self, notification_id: int, status: str, error: str | None) -> bool:
        values: dict[str, Any] = {"status": status, "updated_at": utcnow()}
        if status == "sent":
            values["sent_at"] = utcnow()
        if error is not None:
            values["last_error"] = error[:2000]
        stmt = (
            update(Notification)
            .where(Notification.id == notification_id, Notification.status == "pending")
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return (getattr(self.session.execute(stmt), "rowcount", 0) or 0) == 1

    def pending_older_than(self, cutoff: dt.datetime, limit: int = 500) -> list[Notification]:
        stmt = (
            select(Notification)
            .where(Notification.status == "pending", Notification.updated_at < cutoff)
            .order_by(Notification.created_at)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def count_for_user_since(
        self, user_id: int, since: dt.datetime, statuses: Sequence[str] = COUNTED_FOR_QUOTA
    ) -> int:
        stmt = (
            select(func.count())
            .select_from(Notification)
            .where(
                Notification.user_id == user_id,
                Notification.created_at >= since,
                Notification.status.in_(list(statuses)),
            )
        )
        return int(self.session.scalar(stmt) or 0)
