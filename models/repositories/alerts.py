"""Alerts and their exactly-once firing state."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update

from models.alert import Alert
from models.repositories.base import Repository


class AlertRepository(Repository[Alert]):
    model = Alert

    def active(self, coins: Sequence[str] | None = None) -> list[Alert]:
        """Active alerts (armed or not), optionally for some coins: the index's source."""
        stmt = select(Alert).where(Alert.active.is_(True))
        if coins is not None:
            stmt = stmt.where(Alert.coin.in_(list(coins)))
        return list(self.session.scalars(stmt.order_by(Alert.id)))

    def armed_for_coin(self, coin: str) -> list[Alert]:
        stmt = select(Alert).where(
            Alert.coin == coin, Alert.active.is_(True), Alert.armed.is_(True)
        )
        return list(self.session.scalars(stmt.order_by(Alert.id)))

    def count_active_for_user(self, user_id: int) -> int:
        stmt = (
            select(func.count())
            .select_from(Alert)
            .where(Alert.user_id == user_id, Alert.active.is_(True))
        )
        return int(self.session.scalar(stmt) or 0)

    def fire(self, alert_id: int, now_ms: int, *, once: bool) -> bool:
        """Claim this firing. True for exactly one caller per arm cycle.

        Idempotency key: the ``armed`` flag — ``UPDATE … WHERE id = :id AND armed AND
        active`` hits the row for one transaction only; every other worker sees 0 rows.
        A ``once`` alert is also deactivated.
        """
        values: dict[str, object] = {"armed": False, "last_fired_at": now_ms}
        if once:
            values["active"] = False
        stmt = (
            update(Alert)
            .where(Alert.id == alert_id, Alert.armed.is_(True), Alert.active.is_(True))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return (getattr(self.session.execute(stmt), "rowcount", 0) or 0) == 1

    def rearm(self, alert_id: int) -> bool:
        """Re-arm a recurring alert after hysteresis; idempotent (already armed → False)."""
        stmt = (
            update(Alert)
            .where(
                Alert.id == alert_id,
                Alert.armed.is_(False),
                Alert.active.is_(True),
                Alert.mode == "recurring",
            )
            .values(armed=True)
            .execution_options(synchronize_session=False)
        )
        return (getattr(self.session.execute(stmt), "rowcount", 0) or 0) == 1

    def set_active(self, alert_id: int, active: bool) -> bool:
        """Pause/resume; resuming re-arms. Idempotent."""
        values: dict[str, object] = {"active": active}
        if active:
            values["armed"] = True
        return self.update_where({"id": alert_id}, **values) == 1
