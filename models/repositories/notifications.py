"""The notification outbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from models.base import utcnow
from models.notification import Notification
from models.notification_channel import NotificationChannel
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

    def enqueue_fresh(self, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Insert outbox rows whose idempotency keys are new by construction (each names a
        firing this transaction has just claimed) in one statement; returns key → id.

        Idempotency key: ``idempotency_key`` (unique) — a key that exists already raises
        ``IntegrityError`` and the caller's transaction, claim included, rolls back.
        Each row: user_id, channel_kind, payload, idempotency_key and optionally alert_id,
        channel_id, status (default pending), last_error, event_time.
        """
        if not rows:
            return {}
        values = [{"status": "pending", "attempts": 0, **row} for row in rows]
        stmt = insert(Notification).returning(
            Notification.idempotency_key, Notification.id, sort_by_parameter_order=True
        )
        return {key: ident for key, ident in self.session.execute(stmt, values)}

    def with_channel(
        self, notification_id: int
    ) -> tuple[Notification, NotificationChannel | None] | None:
        """The row and its channel (None when removed), in one query."""
        stmt = (
            select(Notification, NotificationChannel)
            .outerjoin(NotificationChannel, NotificationChannel.id == Notification.channel_id)
            .where(Notification.id == notification_id)
        )
        found = self.session.execute(stmt).first()
        return None if found is None else (found[0], found[1])

    def with_channels(
        self, notification_ids: Sequence[int]
    ) -> dict[int, tuple[Notification, NotificationChannel | None]]:
        """:meth:`with_channel` for many rows in one query: id → (row, channel)."""
        if not notification_ids:
            return {}
        stmt = (
            select(Notification, NotificationChannel)
            .outerjoin(NotificationChannel, NotificationChannel.id == Notification.channel_id)
            .where(Notification.id.in_(list(notification_ids)))
        )
        return {row.id: (row, channel) for row, channel in self.session.execute(stmt).all()}

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

    def settle(self, notification_id: int, status: str, error: str | None) -> bool:
        """Count one delivery attempt and, in the same statement, move pending → ``status``
        (``sent``, ``failed``, or ``pending`` to stay pending) with ``error`` as the last
        error (None clears it). Idempotency key: the status — a row no longer pending is
        left alone (False)."""
        values: dict[str, Any] = {
            "status": status,
            "attempts": Notification.attempts + 1,
            "last_error": None if error is None else error[:2000],
        }
        return self._update_pending(notification_id, values)

    def settle_sent(self, notification_ids: Sequence[int]) -> int:
        """:meth:`settle` of many rows to ``sent`` in one statement (one attempt each, the
        last error cleared). Idempotency key: the status, as there. Returns rows moved."""
        if not notification_ids:
            return 0
        now = utcnow()
        stmt = (
            update(Notification)
            .where(Notification.id.in_(list(notification_ids)), Notification.status == "pending")
            .values(
                status="sent",
                attempts=Notification.attempts + 1,
                last_error=None,
                updated_at=now,
                sent_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return int(getattr(self.session.execute(stmt), "rowcount", 0) or 0)

    def mark_sent(self, notification_id: int) -> bool:
        """pending → sent, once. Idempotency key: the status; a second call returns False."""
        return self._transition(notification_id, "sent", None)

    def mark_failed(self, notification_id: int, error: str) -> bool:
        """pending → failed with the last error, once."""
        return self._transition(notification_id, "failed", error)

    def _transition(self, notification_id: int, status: str, error: str | None) -> bool:
        values: dict[str, Any] = {"status": status}
        if error is not None:
            values["last_error"] = error[:2000]
        return self._update_pending(notification_id, values)

    def _update_pending(self, notification_id: int, values: dict[str, Any]) -> bool:
        values = {**values, "updated_at": utcnow()}
        if values.get("status") == "sent":
            values["sent_at"] = utcnow()
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

    def counts_for_users_since(
        self,
        user_ids: Sequence[int],
        since: dt.datetime,
        statuses: Sequence[str] = COUNTED_FOR_QUOTA,
    ) -> dict[int, int]:
        """:meth:`count_for_user_since` for many users in one grouped query: user → count
        (a user with none is absent)."""
        if not user_ids:
            return {}
        stmt = (
            select(Notification.user_id, func.count())
            .where(
                Notification.user_id.in_(list(user_ids)),
                Notification.created_at >= since,
                Notification.status.in_(list(statuses)),
            )
            .group_by(Notification.user_id)
        )
        return {int(u): int(n) for u, n in self.session.execute(stmt).all()}

    def recent(
        self, user_id: int | None = None, status: str | None = None, limit: int = 50
    ) -> list[Notification]:
        """The newest notifications first, optionally of one user and/or one status."""
        stmt = select(Notification)
        if user_id is not None:
            stmt = stmt.where(Notification.user_id == user_id)
        if status is not None:
            stmt = stmt.where(Notification.status == status)
        return list(self.session.scalars(stmt.order_by(Notification.id.desc()).limit(limit)))

    def page_for_user(
        self,
        user_id: int,
        *,
        status: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[Notification]:
        """A keyset page of one user's notifications, newest first: ids below ``before``,
        created in ``[since, until)`` when given, of one status when given."""
        stmt = select(Notification).where(Notification.user_id == user_id)
        if status is not None:
            stmt = stmt.where(Notification.status == status)
        if since is not None:
            stmt = stmt.where(Notification.created_at >= since)
        if until is not None:
            stmt = stmt.where(Notification.created_at < until)
        if before is not None:
            stmt = stmt.where(Notification.id < before)
        return list(self.session.scalars(stmt.order_by(Notification.id.desc()).limit(limit)))
