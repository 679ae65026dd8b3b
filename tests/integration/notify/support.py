"""Helpers for delivery tests: outbox rows written exactly as an evaluation writes them."""

from __future__ import annotations

from domain.alerts.definition import parse_rule
from domain.alerts.firing import Firing, fire
from domain.alerts.judgement import evaluate
from domain.alerts.market_state import MarketState
from models.db import Database
from models.notification import Notification
from settings import Settings
from tasks.notify.outbox import redis_client as make_redis
from tests.integration.alerts.support import add_alert, notifications, now_ms
from tests.unit.alerts.builders import mid


def outbox_row(
    db: Database, settings: Settings, user_id: int, channel_id: int, alert_id: int = 0
) -> int:
    """A fired alert's pending outbox row, written exactly as an evaluation writes it."""
    client = make_redis(settings)
    try:
        alert_id = alert_id or add_alert(
            db, settings, client, user_id, channel_id, kind="price_above", coin="BTC",
            threshold="100",
        )  # fmt: skip
    finally:
        client.close()
    t = now_ms()
    state = MarketState(max_age_ms=60_000)
    state.apply(mid("BTC", t, "101"))
    rule = parse_rule({"id": alert_id, "user_id": user_id, "kind": "price_above", "coin": "BTC",
                       "threshold": "100"})  # fmt: skip
    with db.session() as session:
        outcome = fire(
            session, settings, [Firing(rule, evaluate(rule, state, t), channel_id, t)], t
        )
    assert len(outcome.deliver) == 1
    return outcome.deliver[0]


def row(db: Database, notification_id: int) -> Notification:
    return next(n for n in notifications(db) if n.id == notification_id)


def settled(db: Database, notification_id: int) -> bool:
    return row(db, notification_id).status != "pending"
