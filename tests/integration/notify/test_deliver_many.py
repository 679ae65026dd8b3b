"""A burst's rows delivered together (``Deliverer.attempt_many``, the
``hyperwatch.notify.deliver_many`` task) on the real Redis and PostgreSQL: per row the same
outcome as one attempt at a time — grouped rows wait for their digest, lone rows go out
with their own Idempotency-Key, a row locked elsewhere is left alone, a settled row is
skipped, a failed send is a retry of that row only."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator

import pytest

from domain.notify.signing import IDEMPOTENCY_HEADER, idempotency_key
from models.db import Database
from models.notification_channel import NotificationChannel
from runtime import keys
from runtime.clock import ManualClock
from settings import Settings
from tasks.application import HyperwatchCelery
from tasks.notify.deliver import SEND_CONCURRENCY, Deliverer
from tasks.notify.digest import flush
from tasks.notify.outbox import DeliveryLock, lock_ttl_ms
from tasks.notify.outbox import redis_client as make_redis
from tests.integration.alerts.support import add_channel, add_user, wait_until
from tests.integration.notify.receiver import Receiver, Reply
from tests.integration.notify.support import outbox_row, row, settled

pytestmark = pytest.mark.integration


@pytest.fixture()
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture()
def scheduled() -> list[tuple[int, float]]:
    return []


@pytest.fixture()
def deliverer(
    alert_settings: Settings,
    pg_database: Database,
    clock: ManualClock,
    scheduled: list[tuple[int, float]],
) -> Iterator[Deliverer]:
    client = make_redis(alert_settings)
    d = Deliverer(
        alert_settings,
        pg_database,
        client,
        clock,
        schedule_flush=lambda channel, delay: scheduled.append((channel, delay)),
    )
    yield d
    d.close()


def _channel(
    db: Database, settings: Settings, receiver: Receiver, path: str, **windows: int
) -> tuple[int, int]:
    user_id = add_user(db, f"{path.strip('/')}@example.com")
    channel_id = add_channel(db, settings, user_id, receiver.url(path))
    with db.session() as s:
        channel = s.get(NotificationChannel, channel_id)
        assert channel is not None
        for name, value in windows.items():
            setattr(channel, name, value)
    return user_id, channel_id


def test_a_burst_is_grouped_sent_and_settled_row_by_row_as_single_attempts_would(
    deliverer: Deliverer,
    alert_settings: Settings,
    pg_database: Database,
    receiver: Receiver,
    clock: ManualClock,
    scheduled: list[tuple[int, float]],
) -> None:
    # Given a grouped channel (interval 30 s) with three firings, a plain channel with more
    # firings than one wave sends at once, one of them locked by a delivery running
    # elsewhere, and a row already sent
    grouped_user, grouped = _channel(
        pg_database, alert_settings, receiver, "/grouped", group_interval_s=30
    )
    plain_user, plain = _channel(pg_database, alert_settings, receiver, "/plain")
    g = [outbox_row(pg_database, alert_settings, grouped_user, grouped) for _ in range(3)]
    p = [
        outbox_row(pg_database, alert_settings, plain_user, plain)
        for _ in range(SEND_CONCURRENCY + 2)
    ]
    done = outbox_row(pg_database, alert_settings, plain_user, plain)
    assert deliverer.attempt(done).action == "sent"
    elsewhere = DeliveryLock(deliverer.context.redis, p[-1], lock_ttl_ms(alert_settings))
    assert elsewhere.acquire()

    # When the burst is attempted at once
    steps = deliverer.attempt_many([*g, *p, done])
    elsewhere.release()

    # Then per row: the grouped channel's first goes at once and the rest wait for one
    # digest, scheduled once; every free plain row is sent; the locked one is left alone
    # and the settled one skipped
    assert {i: steps[i].action for i in g} == {g[0]: "sent", g[1]: "grouped", g[2]: "grouped"}
    assert scheduled == [(grouped, 30.0)]
    assert {steps[i].action for i in p[:-1]} == {"sent"}
    assert (steps[p[-1]].action, steps[done].action) == ("busy", "skipped")
    assert [row(pg_database, i).status for i in g] == ["sent", "pending", "pending"]
    assert {row(pg_database, i).status for i in p[:-1]} == {"sent"}
    assert all(row(pg_database, i).attempts == 1 for i in [g[0], *p[:-1]])
    assert row(pg_database, p[-1]).status == "pending"
    # and each sent row reached its receiver once, under its own key and body
    keys = [r.headers[IDEMPOTENCY_HEADER] for r in receiver.received()]
    assert sorted(keys) == sorted(idempotency_key(i) for i in [done, g[0], *p[:-1]])
    for request in receiver.received():
        assert request.headers[IDEMPOTENCY_HEADER] == idempotency_key(
            json.loads(request.body)["notification_id"]
        )

    # When the digest is due
    clock.advance(30)
    digest = flush(deliverer, grouped)

    # Then the two that waited go out in it, nothing lost
    assert digest.digest and digest.members == 2
    assert {row(pg_database, i).status for i in g[1:]} == {"digested"}


def test_a_failed_send_in_a_burst_is_a_retry_of_that_row_only(
    deliverer: Deliverer, alert_settings: Settings, pg_database: Database, receiver: Receiver
) -> None:
    # Given two channels, one answering 503 once
    ok_user, ok = _channel(pg_database, alert_settings, receiver, "/ok")
    bad_user, bad = _channel(pg_database, alert_settings, receiver, "/bad")
    receiver.by_path["/bad"] = deque([Reply(503)])
    a = outbox_row(pg_database, alert_settings, ok_user, ok)
    b = outbox_row(pg_database, alert_settings, bad_user, bad)

    # When both are attempted together
    steps = deliverer.attempt_many([a, b])

    # Then the good one is sent; the other stays pending with its attempt counted, a retry
    assert (steps[a].action, steps[b].action) == ("sent", "retry")
    assert steps[b].delay_s > 0
    stored = row(pg_database, b)
    assert (stored.status, stored.attempts) == ("pending", 1)
    assert stored.last_error and "503" in stored.last_error
    # and its retry (a single attempt, as the task schedules it) sends the same key
    assert deliverer.attempt(b).action == "sent"
    keys = [r.headers[IDEMPOTENCY_HEADER] for r in receiver.received("/bad")]
    assert keys == [idempotency_key(b)] * 2


def test_the_evaluator_sends_one_message_for_a_burst_and_the_worker_delivers_it(
    worker: HyperwatchCelery, alert_settings: Settings, pg_database: Database, receiver: Receiver
) -> None:
    # Given three pending rows of one burst
    user_id = add_user(pg_database)
    channel_id = add_channel(pg_database, alert_settings, user_id, receiver.url())
    ids = [outbox_row(pg_database, alert_settings, user_id, channel_id) for _ in range(3)]

    # When one deliver_many message carries them (what the evaluator sends after a firing)
    worker.send_task("hyperwatch.notify.deliver_many", args=[ids])

    # Then all three are sent, once each
    wait_until(lambda: all(settled(pg_database, i) for i in ids), 30, what="burst settled")
    assert {row(pg_database, i).status for i in ids} == {"sent"}
    keys = sorted(r.headers[IDEMPOTENCY_HEADER] for r in receiver.received())
    assert keys == sorted(idempotency_key(i) for i in ids)


def test_a_digest_is_scheduled_only_after_its_members_locks_are_free(
    alert_settings: Settings, pg_database: Database, receiver: Receiver, clock: ManualClock
) -> None:
    # Given a grouped channel whose digest task, when scheduled, looks at once (as a digest
    # due now does) whether the waiting rows are still locked
    client = make_redis(alert_settings)
    user_id, channel = _channel(
        pg_database, alert_settings, receiver, "/locks", group_interval_s=30
    )
    rows = [outbox_row(pg_database, alert_settings, user_id, channel) for _ in range(4)]
    locked_at_schedule: list[bool] = []
    calls: list[float] = []

    def schedule(channel_id: int, delay_s: float) -> None:
        calls.append(delay_s)
        waiting = [r for r in rows[1:] if row(pg_database, r).status == "pending"]
        locked_at_schedule.extend(
            bool(client.exists(keys.NOTIFY_LOCK.name(notification_id=r))) for r in waiting
        )

    deliverer = Deliverer(alert_settings, pg_database, client, clock, schedule_flush=schedule)
    try:
        # When one row goes alone and the next waits (one at a time), then, the group's
        # state gone (a new group), a burst of two arrives
        assert deliverer.attempt(rows[0]).action == "sent"
        assert deliverer.attempt(rows[1]).action == "grouped"
        redis_state = make_redis(alert_settings)
        redis_state.delete(keys.NOTIFY_GROUP.name(channel_id=channel))  # a new group
        redis_state.close()
        steps = deliverer.attempt_many(rows[2:])
    finally:
        deliverer.close()

    # Then each time the digest was scheduled, no waiting row was still locked
    # (the burst joins the row already waiting, in a digest due now: scheduled again)
    assert [s.action for s in steps.values()] == ["grouped", "grouped"]
    assert calls == [30.0, 0.0]
    assert len(locked_at_schedule) == 2 * 3 and not any(locked_at_schedule)
