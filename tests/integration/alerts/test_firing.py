"""Firing's database side on both databases (SQLite, the embedded default, and PostgreSQL):
the claim is exactly once, the outbox row sits beside it, quotas and channels decide its
status, and only data newer than the firing re-arms."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.alerts.book import rule_from_row
from domain.alerts.firing import Firing, fire, rearm
from domain.alerts.judgement import evaluate, evaluate_occurrence
from domain.alerts.manage import create_alert
from domain.alerts.market_state import MarketState
from domain.alerts.occurrence import whale_trade
from events import Trade
from models.alert import Alert
from models.db import Database
from models.repositories import ChannelRepository, UserRepository
from settings import load_settings
from tests.integration.alerts.support import notifications, now_ms
from tests.unit.alerts.builders import mid

pytestmark = pytest.mark.integration


def test_one_claim_per_cycle_with_its_outbox_row_and_status(database: Database) -> None:
    # Given a free user allowed 1 notification an hour, a channel, and three crossing
    # alerts: a once, a recurring, and one whose channel was deactivated
    settings = load_settings(database_url=database.url, tier_free_notifications_per_hour=1)
    with database.session() as s:
        user = UserRepository(s).create("ann@example.com", "free")
        live = ChannelRepository(s).create(user.id, "webhook", "https://h.example/x", "k")
        dead = ChannelRepository(s).create(user.id, "slack", "https://h.example/y")
        fields = {"kind": "price_above", "coin": "BTC", "threshold": "100"}
        ids = [
            create_alert(s, settings, user, fields, live.id).id,
            create_alert(s, settings, user, {**fields, "mode": "recurring"}, live.id).id,
            create_alert(s, settings, user, fields, dead.id).id,
        ]
        dead.active = False
    t = now_ms()
    state = MarketState(max_age_ms=60_000)
    state.apply(mid("BTC", t - 40, "101"))
    with database.session() as s:
        alerts = {a.id: a for a in s.query(Alert).all()}
        firings = []
        for alert_id in ids:
            rule = rule_from_row(alerts[alert_id])
            assert rule is not None
            firings.append(
                Firing(rule, evaluate(rule, state, t), alerts[alert_id].channel_id, t - 40)
            )

    # When they are fired, and again by a second "worker" holding the same tick
    with database.session() as s:
        first = fire(s, settings, firings, t)
    with database.session() as s:
        second = fire(s, settings, firings, t + 5)

    # Then the first claimed all three, the second none
    assert [f.rule.id for f in first.fired] == ids and first.lost == []
    assert second.fired == [] and second.lost == ids
    # and each has one outbox row: delivered, over the hourly quota, without a channel
    rows = {n.alert_id: n for n in notifications(database)}
    assert len(notifications(database)) == 3
    assert [rows[i].status for i in ids] == ["pending", "suppressed", "failed"]
    assert first.deliver == [rows[ids[0]].id]
    assert rows[ids[1]].last_error == (
        "hourly notification quota reached: 1 of 1 in the last hour (free tier)"
    )
    assert rows[ids[2]].last_error == "the alert has no active notification channel"
    # the once alert is deactivated; the recurring one disarmed at the data's time
    with database.session() as s:
        once, recurring = s.get(Alert, ids[0]), s.get(Alert, ids[1])
        assert once is not None and recurring is not None
        assert (once.active, once.armed) == (False, False)
        assert (recurring.active, recurring.armed, recurring.last_fired_at) == (True, False, t - 40)

    # When re-armed on data older than, then newer than, the firing's
    with database.session() as s:
        stale = rearm(s, [(ids[1], t - 41)])
    with database.session() as s:
        fresh = rearm(s, [(ids[1], t - 39)])

    # Then only the newer data re-armed it
    assert (stale, fresh) == ([], [ids[1]])


def test_an_event_claim_is_one_per_event_and_cooldown_and_keeps_recurring_armed(
    database: Database,
) -> None:
    # Given a recurring whale alert with a 10 s cooldown and a once one
    settings = load_settings(database_url=database.url)
    with database.session() as s:
        user = UserRepository(s).create("ann@example.com", "pro")
        channel = ChannelRepository(s).create(user.id, "webhook", "https://h.example/x", "k")
        fields = {"kind": "whale_trade", "coin": "BTC", "threshold": "1000"}
        recurring = create_alert(
            s, settings, user, {**fields, "mode": "recurring", "cooldown_s": 10}, channel.id
        ).id
        once = create_alert(s, settings, user, fields, channel.id).id
        channel_id = channel.id
    t = now_ms()
    with database.session() as s:
        rules = [rule_from_row(s.get(Alert, i)) for i in (recurring, once)]

    def claims(at: int) -> list[Firing]:
        # What a worker holding a trade at ``at`` claims, judged on the rules as first read
        # (a worker behind every firing): only the database's claim stands in its way.
        trade = Trade("BTC", at, at, Decimal("80000"), Decimal("1"), "B", "0x" + "1" * 64)
        out = []
        for rule in rules:
            assert rule is not None
            verdict = evaluate_occurrence(rule, whale_trade(trade), at, 60_000)
            out.append(Firing(rule, verdict, channel_id, at))
        return out

    # When two workers claim the same event, then events 5 s (inside the cooldown) and
    # 10 s after it are claimed
    with database.session() as s:
        won = fire(s, settings, claims(t - 30_000), t)
    with database.session() as s:
        again = fire(s, settings, claims(t - 30_000), t)
    with database.session() as s:
        inside = fire(s, settings, claims(t - 25_000)[:1], t)
    with database.session() as s:
        after = fire(s, settings, claims(t - 20_000), t)

    # Then the event fired each alert once; the cooldown refused the second event and let
    # the third through (the once alert is spent); the recurring alert stayed armed
    assert [f.rule.id for f in won.fired] == [recurring, once]
    assert again.fired == [] and again.lost == [recurring, once]
    assert inside.fired == [] and inside.lost == [recurring]
    assert [f.rule.id for f in after.fired] == [recurring] and after.lost == [once]
    with database.session() as s:
        r, o = s.get(Alert, recurring), s.get(Alert, once)
        assert r is not None and o is not None
        assert (r.active, r.armed, r.last_fired_at) == (True, True, t - 20_000)
        assert (o.active, o.armed) == (False, False)
    assert len(notifications(database)) == 3
