"""Firing, re-arming and expiring alerts: the database side of an evaluation.

:func:`fire` runs inside one caller-owned transaction (the caller commits, then enqueues
the deliveries it returns — never before the commit, so a delivery never looks for a row
that is not there):

1. for each alert, in ascending id order, the conditional ``UPDATE … WHERE id = :id AND
   armed AND active`` (:meth:`AlertRepository.fire`): exactly one transaction in the
   whole system hits the row per arm cycle; every other evaluation of the same tick sees
   0 rows and writes nothing. ``once`` alerts are deactivated by the same statement. An
   event kind's firing is one event (``definition.EVENT_KINDS``): a recurring one stays
   armed and is claimed only for an event newer than its last firing and past its cooldown,
   so a redelivered event fires nothing, and of two workers holding events of one cooldown
   one fires.
2. the winners' users are locked (``SELECT … FOR UPDATE``, ascending id — alerts before
   users in every transaction, so two workers never deadlock) and their hourly quota
   counted, so two workers cannot both squeeze the last notification under it;
3. one outbox row per winner (:meth:`NotificationRepository.enqueue`, idempotency key
   ``alert:<id>:fired:<data time ms>`` — unique, as only newer data can re-arm): ``pending``; or ``suppressed`` with the reason when
   the hourly quota is used up; or ``failed`` with the reason when the alert has no active
   channel. Never dropped.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.alerts.definition import (
    EVENT_KINDS,
    FUNDING_KINDS,
    PRICE_KINDS,
    WALLET_KINDS,
    WINDOW_KINDS,
    AlertKind,
    AlertRule,
    Mode,
)
from domain.alerts.judgement import Verdict
from domain.alerts.occurrence import Occurrence
from domain.alerts.tiers import HourlyQuota
from domain.alerts.wording import annualised, message
from models.notification_channel import NotificationChannel
from models.repositories import AlertRepository, NotificationRepository
from models.user import User
from settings import Settings

NO_CHANNEL = "none"


@dataclass(frozen=True, slots=True)
class Firing:
    """An alert whose condition holds now, with what is needed to notify."""

    rule: AlertRule
    verdict: Verdict
    channel_id: int | None
    event_time: int | None

    def fired_at(self, now_ms: int) -> int:
        """What ``last_fired_at`` records: the time of the data that fired (market time,
        not processing time), so cooldowns count from the event and only data newer than
        it can re-arm the alert (``AlertRepository.rearm``)."""
        return self.event_time if self.event_time is not None else now_ms


@dataclass(slots=True)
class FiringOutcome:
    fired: list[Firing] = field(default_factory=list)  # claimed by this transaction
    lost: list[int] = field(default_factory=list)  # alert ids someone else had claimed
    deliver: list[int] = field(default_factory=list)  # pending notification ids
    statuses: list[tuple[str, str]] = field(default_factory=list)  # (status, channel kind)


def idempotency_key(alert_id: int, fired_at: int) -> str:
    return f"alert:{alert_id}:fired:{fired_at}"


def payload(firing: Firing, fired_at: int) -> dict[str, Any]:
    """The notification's content: strings for every number (exact decimals), the human
    sentence in ``message``; the same for every channel (channels format it)."""
    rule, verdict = firing.rule, firing.verdict
    out: dict[str, Any] = {
        "alert_id": rule.id,
        "user_id": rule.user_id,
        "kind": str(rule.kind),
        "coin": rule.coin,
        "threshold": str(rule.threshold),
        "value": None if verdict.value is None else str(verdict.value),
        "message": message(rule, verdict),
        "mode": str(rule.mode),
        "fired_at": fired_at,
        "event_time": firing.event_time,
    }
    if verdict.detail:
        out["detail"] = verdict.detail
    if rule.kind in PRICE_KINDS:
        out["price_source"] = str(rule.price_source)
    if rule.kind in FUNDING_KINDS and verdict.value is not None:
        out["value_annualised"] = str(annualised(verdict.value))
        out["threshold_annualised"] = str(annualised(rule.threshold))
    if rule.kind in WINDOW_KINDS:
        out["window_s"] = rule.window_s
        out["direction"] = str(rule.effective_direction)
    if rule.kind in WALLET_KINDS:
        out["wallet"] = rule.wallet
    if rule.kind in EVENT_KINDS and verdict.occurrence is not None:
        out.update(_event_fields(verdict.occurrence))
    if rule.kind is AlertKind.WALLET_POSITION_CHANGE:
        out["direction"] = str(rule.effective_direction)
    if rule.kind is AlertKind.STALE_DATA:
        out["stream"] = str(rule.stream)
    return out


def _event_fields(o: Occurrence) -> dict[str, Any]:
    """What happened, for receivers: every number an exact decimal string."""
    out: dict[str, Any] = {
        "wallet": o.wallet,
        "side": o.side,
        "size": str(o.size),
        "price": str(o.price),
        "notional": str(o.notional),
    }
    if o.change is not None:
        out["change"] = str(o.change)
        out["size_before"] = str(o.size_before)
        out["size_after"] = str(o.size_after)
    if o.method is not None:
        out["method"] = o.method
    if o.mark is not None:
        out["mark"] = str(o.mark)
    return out


def _lock_users(session: Session, user_ids: set[int]) -> dict[int, User]:
    stmt = select(User).where(User.id.in_(sorted(user_ids))).order_by(User.id).with_for_update()
    return {user.id: user for user in session.scalars(stmt)}


def _channels(session: Session, ids: set[int]) -> dict[int, NotificationChannel]:
    if not ids:
        return {}
    stmt = select(NotificationChannel).where(NotificationChannel.id.in_(sorted(ids)))
    return {c.id: c for c in session.scalars(stmt)}


def fire(session: Session, settings: Settings, firings: list[Firing], now_ms: int) -> FiringOutcome:
    """Claim and record ``firings`` in the caller's transaction (see module contract)."""
    outcome = FiringOutcome()
    by_id = {f.rule.id: f for f in firings}
    claims = {i: (f.fired_at(now_ms), f.rule.mode is Mode.ONCE) for i, f in by_id.items()}
    events = {i for i, f in by_id.items() if f.rule.kind in EVENT_KINDS}
    won = AlertRepository(session).fire_many(claims, events=events)
    outcome.fired = [by_id[i] for i in sorted(won)]
    outcome.lost = sorted(set(by_id) - won)
    if not outcome.fired:
        return outcome
    users = _lock_users(session, {f.rule.user_id for f in outcome.fired})
    channels = _channels(session, {f.channel_id for f in outcome.fired if f.channel_id})
    now = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)
    quota = HourlyQuota(session, settings, users, now)
    rows: list[dict[str, Any]] = []
    for firing in outcome.fired:
        channel = channels.get(firing.channel_id) if firing.channel_id else None
        if channel is not None and not channel.active:
            channel = None
        reason: str | None
        if channel is None:
            status, reason = "failed", "the alert has no active notification channel"
        else:
            reason = quota.take(firing.rule.user_id)
            status = "suppressed" if reason else "pending"
        kind = channel.kind if channel is not None else NO_CHANNEL
        rows.append(
            {
                "user_id": firing.rule.user_id,
                "alert_id": firing.rule.id,
                "channel_id": channel.id if channel is not None else None,
                "channel_kind": kind,
                "payload": payload(firing, now_ms),
                "idempotency_key": idempotency_key(firing.rule.id, firing.fired_at(now_ms)),
                "status": status,
                "last_error": reason,
                "event_time": firing.event_time,
            }
        )
        outcome.statuses.append((status, kind))
    ids = NotificationRepository(session).enqueue_fresh(rows)
    outcome.deliver = [ids[r["idempotency_key"]] for r in rows if r["status"] == "pending"]
    return outcome


def rearm(session: Session, candidates: list[tuple[int, int]]) -> list[int]:
    """Re-arm (alert id, observed-at ms) pairs whose data is newer than their last firing;
    returns the ids re-armed by this call (idempotent: already armed ones are skipped)."""
    alerts = AlertRepository(session)
    return [
        alert_id
        for alert_id, observed_at in sorted(candidates)
        if alerts.rearm(alert_id, observed_at=observed_at)
    ]
