"""``/v1/alerts``: the caller's alerts. Creation makes the CLI's checks
(``domain.alerts.manage.create_alert``: definition, coin, channel, wallet, quota); every
change is announced to the alert workers after its commit. Another user's alert is 404.

``POST /v1/alerts/{id}/backtest`` is ``hyperwatch alerts backtest ALERT_ID`` for the
caller's alert (``workers.commands.backtest.run_backtest``: the same replay, holds and
digest windows), over at most ``BACKTEST_MAX_SPAN_MS``; nothing is written or sent."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import redis
from fastapi import APIRouter, Depends, Query

from domain.alerts.backtest import NOT_REPLAYED, messages
from domain.alerts.book import rule_from_row
from domain.alerts.coins import CoinsUnknown, known_coins
from domain.alerts.manage import create_alert, owned_alert, set_alert_active, snooze_alert
from models.notification_channel import NotificationChannel
from models.repositories import AlertRepository, ChannelRepository
from models.user import User
from tasks.notify.deliver import windows_of
from workers.api.auth import Caller, subscriber
from workers.api.errors import OBJECT_RESPONSES, ApiError
from workers.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode, page_of
from workers.api.schemas import (
    BACKTEST_MAX_SPAN_MS,
    AlertIn,
    AlertOut,
    BacktestFired,
    BacktestIn,
    BacktestOut,
    BacktestSent,
    SnoozeIn,
)
from workers.api.services import Services, services_of
from workers.commands.backtest import run_backtest

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], responses=OBJECT_RESPONSES)
Svc = Annotated[Services, Depends(services_of)]
Me = Annotated[Caller, Depends(subscriber)]


@router.post("", status_code=201)
def add(body: AlertIn, me: Me, services: Svc) -> AlertOut:
    """Create an alert (same validation and quotas as `hyperwatch alerts add`)."""
    try:
        coins = known_coins(services.settings, services.redis)
    except CoinsUnknown as exc:
        raise ApiError(503, "unavailable", f"cannot check coin {body.coin!r}: {exc}") from None
    except (redis.RedisError, OSError) as exc:
        raise ApiError(
            503, "unavailable", f"cannot check coin {body.coin!r}: redis {type(exc).__name__}"
        ) from None
    with services.unit_of_work() as session:
        user = session.get(User, me.user_id)
        assert user is not None  # authenticated in this request
        alert = create_alert(
            session, services.settings, user, body.fields(), body.channel_id,
            known_coins=coins, clock=services.clock,
        )  # fmt: skip
        out = AlertOut.of(alert)
    services.announce([out.id])
    return out


@router.get("")
def list_alerts(
    me: Me,
    services: Svc,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    active: bool | None = None,
) -> Page[AlertOut]:
    """The caller's alerts by id; `active` filters paused/fired ones in or out."""
    filters: dict[str, object] = {"user_id": me.user_id}
    if active is not None:
        filters["active"] = active
    with services.unit_of_work() as session:
        rows = AlertRepository(session).page(filters, after=decode(cursor), limit=limit + 1)
        return page_of(rows, limit, AlertOut.of)  # type: ignore[arg-type]


@router.get("/{alert_id}")
def get(alert_id: int, me: Me, services: Svc) -> AlertOut:
    with services.unit_of_work() as session:
        return AlertOut.of(owned_alert(session, alert_id, me.user_id))


def _toggle(alert_id: int, me: Caller, services: Services, active: bool) -> AlertOut:
    with services.unit_of_work() as session:
        alert = owned_alert(session, alert_id, me.user_id)
        changed = set_alert_active(session, services.settings, alert, active)
        session.refresh(alert)
        out = AlertOut.of(alert)
    if changed:
        services.announce([alert_id])
    return out


@router.post("/{alert_id}/pause")
def pause(alert_id: int, me: Me, services: Svc) -> AlertOut:
    """Stop evaluating the alert (idempotent)."""
    return _toggle(alert_id, me, services, False)


@router.post("/{alert_id}/resume")
def resume(alert_id: int, me: Me, services: Svc) -> AlertOut:
    """Evaluate it again, armed (counts against the quota; idempotent)."""
    return _toggle(alert_id, me, services, True)


@router.post("/{alert_id}/snooze")
def snooze(alert_id: int, body: SnoozeIn, me: Me, services: Svc) -> AlertOut:
    """Hold the alert from firing until `until` (epoch ms, at most 5 years ahead); null
    ends the snooze."""
    with services.unit_of_work() as session:
        alert = owned_alert(session, alert_id, me.user_id)
        changed = snooze_alert(alert, body.until, services.clock)
        session.flush()
        out = AlertOut.of(alert)
    if changed:
        services.announce([alert_id])
    return out


@router.post("/{alert_id}/backtest")
def backtest(alert_id: int, body: BacktestIn, me: Me, services: Svc) -> BacktestOut:
    """When the alert would have fired over stored market data, and what its channel would
    have received (digests included). At most 7 days a request."""
    to_ms = services.clock.time_ms() if body.to_ms is None else body.to_ms
    if to_ms <= body.from_ms:
        raise ApiError(422, "invalid", "to_ms must be after from_ms", "to_ms")
    if to_ms - body.from_ms > BACKTEST_MAX_SPAN_MS:
        raise ApiError(422, "invalid", "at most 7 days a backtest", "to_ms")
    settings = services.settings
    with services.unit_of_work() as session:
        alert = owned_alert(session, alert_id, me.user_id)
        stored = rule_from_row(alert)
        if stored is None:  # a definition outside today's bounds: never evaluated either
            raise ApiError(422, "invalid", f"alert {alert_id} cannot be evaluated")
        rule = replace(stored, armed=True, last_fired_at=None)
        channel = None
        if alert.channel_id is not None:
            channel = ChannelRepository(session).get(alert.channel_id)
        channel = channel or NotificationChannel(kind="webhook")
        windows, channel_kind = windows_of(settings, channel), channel.kind
    if rule.kind in NOT_REPLAYED:
        raise ApiError(
            422, "invalid", f"{rule.kind} alerts cannot be backtested (no stored data drives them)"
        )
    report = run_backtest(services.unit_of_work, settings, [rule], body.from_ms, to_ms)
    sent = messages(report.fired, windows, channel_kind)
    return BacktestOut(
        alert_id=alert_id, from_ms=body.from_ms, to_ms=to_ms, events=report.events,
        held=report.held, rearmed=report.rearmed,
        fired=[BacktestFired(event_time=f.event_time, value=f.value, message=f.message)
               for f in report.fired],
        channel_kind=channel_kind,
        sent=[BacktestSent(at=m.at, digest=m.digest, count=len(m.firings),
                           event_times=[f.event_time for f in m.firings], message=m.text)
              for m in sent],
    )  # fmt: skip


@router.delete("/{alert_id}", status_code=204)
def delete(alert_id: int, me: Me, services: Svc) -> None:
    """Delete the alert (its past notifications stay, unlinked)."""
    with services.unit_of_work() as session:
        owned_alert(session, alert_id, me.user_id)
        AlertRepository(session).delete(alert_id)
    services.announce([alert_id])
