"""The database side of holds: who is told, and the 'data stale' / 'restored' notices.

A notice is an outbox row (``models.notification``) like a firing's, with no alert: one per
channel and hold, idempotency key ``hold:<coin>:<since>:stale:<channel id>`` and
``hold:<coin>:<since>:restored:<channel id>``. ``since`` names the hold, so a tick or a
worker that writes the same notice again (a retry, two workers ending one hold) finds the
row and sends nothing twice (:meth:`NotificationRepository.enqueue`). The restored notice
goes to exactly the channels that were told the data was stale — read back from those
rows — even if the alerts behind them are gone since.

Notices are not counted against the hourly quota (``domain.alerts.tiers``): there is one
per hold and channel, and they say why the alerts are silent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.alerts.definition import AlertKind, PriceSource
from domain.alerts.hold import Hold, Input, kind_inputs
from models.alert import Alert
from models.notification import Notification
from models.notification_channel import NotificationChannel
from models.repositories import NotificationRepository

STALE = "data_stale"
RESTORED = "data_restored"


@dataclass(frozen=True, slots=True)
class Recipient:
    user_id: int
    channel_id: int
    channel_kind: str


def held_inputs(session: Session) -> dict[str, set[Input]]:
    """coin → the market inputs its active alerts read (stale_data alerts excluded): the
    coins a hold can concern, and what can make each stale."""
    stmt = (
        select(Alert.coin, Alert.kind, Alert.price_source)
        .where(Alert.active.is_(True), Alert.kind != str(AlertKind.STALE_DATA))
        .distinct()
    )
    out: dict[str, set[Input]] = {}
    for coin, kind, source in session.execute(stmt):
        inputs = out.setdefault(coin, set())
        inputs.update(
            i for i in kind_inputs(AlertKind(kind), PriceSource(source)) if i != "positions"
        )
    return out


def audience(session: Session, coin: str) -> list[Recipient]:
    """The active channels of the active alerts on ``coin`` (stale_data ones excluded)."""
    stmt = (
        select(Alert.user_id, NotificationChannel.id, NotificationChannel.kind)
        .join(NotificationChannel, NotificationChannel.id == Alert.channel_id)
        .where(
            Alert.coin == coin,
            Alert.active.is_(True),
            Alert.kind != str(AlertKind.STALE_DATA),
            NotificationChannel.active.is_(True),
        )
        .distinct()
        .order_by(NotificationChannel.id)
    )
    return [Recipient(u, c, k) for u, c, k in session.execute(stmt)]


def notice_key(hold: Hold, phase: str, channel_id: int) -> str:
    word = "stale" if phase == STALE else "restored"
    return f"hold:{hold.coin}:{hold.since_ms}:{word}:{channel_id}"


def _told_stale(session: Session, hold: Hold) -> list[Recipient]:
    prefix = f"hold:{hold.coin}:{hold.since_ms}:stale:"
    stmt = (
        select(Notification.user_id, Notification.channel_id, Notification.channel_kind)
        .where(Notification.idempotency_key.startswith(prefix, autoescape=True))
        .order_by(Notification.channel_id)
    )
    return [Recipient(u, c, k) for u, c, k in session.execute(stmt) if c is not None]


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def notice_payload(hold: Hold, phase: str, user_id: int, now_ms: int) -> dict[str, Any]:
    if phase == STALE:
        message = (
            f"data stale for {hold.coin} since {_iso(hold.since_ms)}: your alerts on "
            f"{hold.coin} are held until fresh data arrives ({hold.reason})"
        )
    else:
        message = (
            f"data for {hold.coin} restored at {_iso(now_ms)} (stale since "
            f"{_iso(hold.since_ms)}): your alerts on {hold.coin} are judged again"
        )
    return {
        "kind": phase,
        "user_id": user_id,
        "coin": hold.coin,
        "since": hold.since_ms,
        "reason": hold.reason,
        "at": now_ms,
        "message": message,
    }


def _write(
    session: Session, hold: Hold, phase: str, recipients: Sequence[Recipient], now_ms: int
) -> list[int]:
    outbox = NotificationRepository(session)
    created: list[int] = []
    for r in recipients:
        row, new = outbox.enqueue(
            user_id=r.user_id,
            channel_kind=r.channel_kind,
            channel_id=r.channel_id,
            payload=notice_payload(hold, phase, r.user_id, now_ms),
            idempotency_key=notice_key(hold, phase, r.channel_id),
            event_time=now_ms,
        )
        if new:
            created.append(row.id)
    session.flush()
    return created


def notify_stale(session: Session, hold: Hold, now_ms: int) -> list[int]:
    """Write the 'data stale' notice of ``hold`` to every channel with an alert on its coin;
    returns the ids of the rows this call created (to enqueue after the commit)."""
    return _write(session, hold, STALE, audience(session, hold.coin), now_ms)


def notify_restored(session: Session, hold: Hold, now_ms: int) -> list[int]:
    """Write the 'restored' notice of ``hold`` to every channel told it was stale."""
    return _write(session, hold, RESTORED, _told_stale(session, hold), now_ms)
