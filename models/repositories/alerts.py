"""Alerts and their exactly-once firing state."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, and_, case, cast, func, or_, select, update

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

    def fire_many(
        self,
        claims: Mapping[int, tuple[int, bool]],
        chunk: int = 500,
        *,
        events: Collection[int] = (),
    ) -> set[int]:
        """Claim several firings in one transaction: ``alert id → (fired_at ms, once)``.
        Returns the ids this transaction claimed.

        Idempotency key: the ``armed`` flag, as for :meth:`fire` — each id is claimed by
        exactly one transaction per arm cycle. The rows are first locked in ascending id
        order (``SELECT … FOR UPDATE``; a no-op on SQLite, whose writers are serialised), so
        two workers claiming overlapping sets wait for each other instead of deadlocking;
        a waiter then sees the winner's ``armed = false`` and claims nothing.

        ``events``: ids whose firing is one event (``fired_at`` = the event's time). Each
        event is an arm cycle of its own: a recurring one stays armed, and is claimed only
        when ``fired_at`` is newer than its ``last_fired_at`` and at least ``cooldown_s``
        after it — so a redelivered event claims nothing, and of two events inside one
        cooldown (two workers, say) the first claimed wins.
        """
        won: set[int] = set()
        ids = sorted(claims)
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            armed = (Alert.id.in_(part), Alert.armed.is_(True), Alert.active.is_(True))
            locked = list(
                self.session.scalars(
                    select(Alert.id).where(*armed).order_by(Alert.id).with_for_update()
                )
            )
            if not locked:
                continue
            once = {i: False for i in locked if claims[i][1]}
            fired_at = case({i: claims[i][0] for i in locked}, value=Alert.id)
            conditions: list[ColumnElement[bool]] = [
                Alert.id.in_(locked),
                Alert.armed.is_(True),
                Alert.active.is_(True),
            ]
            repeat = {i: True for i in locked if i in events and not claims[i][1]}
            event_ids = [i for i in locked if i in events]
            if event_ids:
                # cooldown_s is a 32-bit column: widen before scaling to milliseconds.
                cooled = Alert.last_fired_at + cast(Alert.cooldown_s, BigInteger) * 1000
                conditions.append(
                    or_(
                        Alert.id.not_in(event_ids),
                        Alert.last_fired_at.is_(None),
                        and_(Alert.last_fired_at < fired_at, cooled <= fired_at),
                    )
                )
            stmt = (
                update(Alert)
                .where(*conditions)
                .values(
                    armed=case(repeat, value=Alert.id, else_=False) if repeat else False,
                    last_fired_at=fired_at,
                    active=case(once, value=Alert.id, else_=Alert.active) if once else Alert.active,
                )
                .returning(Alert.id)
                .execution_options(synchronize_session=False)
            )
            won.update(self.session.scalars(stmt))
        return won

    def rearm(self, alert_id: int, observed_at: int | None = None) -> bool:
        """Re-arm a recurring alert after hysteresis; idempotent (already armed → False).

        With ``observed_at`` (ms of the data that showed the condition false by the margin)
        only data newer than the last firing may re-arm: a worker still holding an older
        tick than the one another worker fired on cannot re-arm the alert behind its back.
        """
        conditions = [
            Alert.id == alert_id,
            Alert.armed.is_(False),
            Alert.active.is_(True),
            Alert.mode == "recurring",
        ]
        if observed_at is not None:
            conditions.append(or_(Alert.last_fired_at.is_(None), Alert.last_fired_at < observed_at))
        stmt = (
            update(Alert)
            .where(*conditions)
            .values(armed=True)
            .execution_options(synchronize_session=False)
        )
        return (getattr(self.session.execute(stmt), "rowcount", 0) or 0) == 1

    def by_ids(self, alert_ids: Sequence[int]) -> list[Alert]:
        """The alerts with these ids that still exist (any state), by id."""
        if not alert_ids:
            return []
        stmt = select(Alert).where(Alert.id.in_(list(alert_ids))).order_by(Alert.id)
        return list(self.session.scalars(stmt))

    def rows_by_ids(self, alert_ids: Sequence[int]) -> list[Any]:
        """:meth:`by_ids` as plain rows (no ORM objects, no identity map): what evaluation
        re-reads for every candidate, several thousand a second in a cascade, where the
        ORM's per-object cost was most of the read."""
        if not alert_ids:
            return []
        stmt = (
            select(*Alert.__table__.columns).where(Alert.id.in_(list(alert_ids))).order_by(Alert.id)
        )
        return list(self.session.execute(stmt).all())

    def active_rows(
        self, batch: int = 10_000, kinds: Collection[str] | None = None
    ) -> Iterator[Any]:
        """Every active alert (of ``kinds``, when given) as a plain row (no ORM identity
        map), streamed in chunks: the source of a worker's full index load, cheap enough
        for a million rows."""
        stmt = select(*Alert.__table__.columns).where(Alert.active.is_(True))
        if kinds is not None:
            stmt = stmt.where(Alert.kind.in_(sorted(kinds)))
        yield from self.session.execute(stmt.order_by(Alert.id).execution_options(yield_per=batch))

    def changed_since(self, since: dt.datetime) -> list[int]:
        """Ids of alerts written at or after ``since`` (any write sets ``updated_at``)."""
        stmt = select(Alert.id).where(Alert.updated_at >= since).order_by(Alert.id)
        return list(self.session.scalars(stmt))

    def deactivate_expired(self, now_ms: int, limit: int = 1000) -> list[int]:
        """Deactivate active alerts whose ``expires_at`` has passed; returns their ids.
        Idempotent: an expired alert is deactivated once, later calls skip it."""
        ids = list(
            self.session.scalars(
                select(Alert.id)
                .where(
                    Alert.active.is_(True),
                    Alert.expires_at.is_not(None),
                    Alert.expires_at <= now_ms,
                )
                .order_by(Alert.id)
                .limit(limit)
            )
        )
        if ids:
            self.session.execute(
                update(Alert)
                .where(Alert.id.in_(ids), Alert.active.is_(True))
                .values(active=False)
                .execution_options(synchronize_session=False)
            )
        return ids

    def for_user(self, user_id: int | None, include_inactive: bool = True) -> list[Alert]:
        """A user's alerts (every user's with None), by id, for listings."""
        stmt = select(Alert)
        if user_id is not None:
            stmt = stmt.where(Alert.user_id == user_id)
        if not include_inactive:
            stmt = stmt.where(Alert.active.is_(True))
        return list(self.session.scalars(stmt.order_by(Alert.id)))

    def using_channel(self, channel_id: int) -> list[int]:
        """Ids of active alerts that notify through ``channel_id``."""
        stmt = select(Alert.id).where(Alert.channel_id == channel_id, Alert.active.is_(True))
        return list(self.session.scalars(stmt.order_by(Alert.id)))

    def set_active(self, alert_id: int, active: bool) -> bool:
        """Pause/resume; resuming re-arms. Idempotent."""
        values: dict[str, object] = {"active": active}
        if active:
            values["armed"] = True
        return self.update_where({"id": alert_id}, **values) == 1
