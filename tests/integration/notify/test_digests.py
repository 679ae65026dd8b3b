"""Digests on the real Redis and PostgreSQL, with an injected clock (no sleeps): group_wait,
group_interval and repeat_interval per channel; a chat channel over its rate budget gets a
digest and loses nothing; a digest retried after a failure is the same bytes under the
same Idempotency-Key."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from models.db import Database
from models.notification import Notification
from models.notification_channel import NotificationChannel
from models.repositories import NotificationRepository
from runtime import keys
from runtime.clock import ManualClock
from settings import Settings
from tasks.notify.deliver import Deliverer
from tasks.notify.digest import flush
from tasks.notify.outbox import DeliveryLocks
from tasks.notify.outbox import redis_client as make_redis
from tests.integration.alerts.support import add_channel, add_user, notifications
from tests.integration.notify.receiver import Receiver, Reply
from tests.integration.notify.support import outbox_row, row

pytestmark = pytest.mark.integration


class Scheduled(list[tuple[int, float]]):
    """What the deliverer asked to schedule: (channel id, delay s)."""

    def __call__(self, channel_id: int, delay_s: float) -> None:
        self.append((channel_id, delay_s))


@pytest.fixture()
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture()
def scheduled() -> Scheduled:
    return Scheduled()


@pytest.fixture()
def deliverer(
    alert_settings: Settings, pg_database: Database, clock: ManualClock, scheduled: Scheduled
) -> Iterator[Deliverer]:
    client = make_redis(alert_settings)
    d = Deliverer(alert_settings, pg_database, client, clock, schedule_flush=scheduled)
    yield d
    d.close()


def _channel(
    db: Database, settings: Settings, receiver: Receiver, kind: str = "webhook", **windows: int
) -> tuple[int, int]:
    user_id = add_user(db, f"{kind}@example.com")
    secret = "whsec-test-0123456789" if kind == "webhook" else None
    channel_id = add_channel(db, settings, user_id, receiver.url(f"/{kind}"), kind, secret)
    with db.session() as s:
        channel = s.get(NotificationChannel, channel_id)
        assert channel is not None
        for name, value in windows.items():
            setattr(channel, name, value)
    return user_id, channel_id


def _rows(db: Database, settings: Settings, user_id: int, channel_id: int, n: int) -> list[int]:
    return [outbox_row(db, settings, user_id, channel_id) for _ in range(n)]


def _fired_again(db: Database, notification_id: int) -> int:
    """Another firing of the alert behind ``notification_id`` (a recurring alert's next
    arm cycle), written to the outbox as a firing writes it."""
    with db.session() as s:
        before = s.get(Notification, notification_id)
        assert before is not None
        again, _ = NotificationRepository(s).enqueue(
            user_id=before.user_id, channel_kind=before.channel_kind,
            channel_id=before.channel_id, alert_id=before.alert_id,
            payload=dict(before.payload), idempotency_key=f"{before.idempotency_key}:again",
            event_time=before.event_time,
        )  # fmt: skip
        return again.id


def test_a_burst_becomes_one_digest_per_group_interval_and_a_lone_firing_goes_at_once(
    deliverer: Deliverer, alert_settings: Settings, pg_database: Database, receiver: Receiver,
    clock: ManualClock, scheduled: Scheduled,
) -> None:  # fmt: skip
    # Given a webhook channel with group_wait 0 and group_interval 30 s, and five firings
    user_id, channel = _channel(pg_database, alert_settings, receiver, group_interval_s=30)
    ids = _rows(pg_database, alert_settings, user_id, channel, 5)

    # When the first is delivered, then the other four over the next four seconds
    first = deliverer.attempt(ids[0])
    steps = []
    for notification_id in ids[1:]:
        clock.advance(1)
        steps.append(deliverer.attempt(notification_id))

    # Then the first went out at once (nothing waits for group_wait 0) and the others wait
    # for one digest at the end of the interval, scheduled once
    assert first.action == "sent"
    assert [s.action for s in steps] == ["grouped"] * 4
    assert scheduled == [(channel, 29.0)]
    assert len(receiver.received()) == 1

    # When the digest task runs early (a duplicate message), then when it is due
    clock.advance(10)
    early = flush(deliverer, channel)
    clock.advance(16)
    due = flush(deliverer, channel)

    # Then nothing went early; on time, one digest lists the four, each member whole
    assert early.sent is None
    assert due.digest and due.members == 4 and due.step is not None
    assert due.step.action == "sent"
    bodies = [json.loads(r.body) for r in receiver.received()]
    assert len(bodies) == 2 and bodies[1]["kind"] == "digest" and bodies[1]["count"] == 4
    assert [item["notification_id"] for item in bodies[1]["items"]] == ids[1:]
    assert bodies[1]["message"].startswith("4 notifications since ")
    assert all(row(pg_database, i).status == "digested" for i in ids[1:])
    assert {row(pg_database, i).digest_id for i in ids[1:]} == {due.sent}

    # When one more fires inside the new interval, and the interval ends
    late = _rows(pg_database, alert_settings, user_id, channel, 1)[0]
    clock.advance(1)
    assert deliverer.attempt(late).action == "grouped"
    clock.advance(29)
    alone = flush(deliverer, channel)

    # Then a group of one goes out as itself, not as a digest
    assert not alone.digest and alone.sent == late and row(pg_database, late).status == "sent"
    assert "alert_id" in json.loads(receiver.received()[-1].body)

    # When the channel has been quiet longer than the interval, a firing goes at once
    clock.advance(31)
    quiet = _rows(pg_database, alert_settings, user_id, channel, 1)[0]
    assert deliverer.attempt(quiet).action == "sent"
    assert len(receiver.received()) == 4
    # and nothing was lost: every firing was sent alone or in the digest
    statuses = sorted(n.status for n in notifications(pg_database) if n.alert_id)
    assert statuses == ["digested"] * 4 + ["sent"] * 3


def test_group_wait_collects_the_start_of_a_burst_into_one_message(
    deliverer: Deliverer, alert_settings: Settings, pg_database: Database, receiver: Receiver,
    clock: ManualClock, scheduled: Scheduled,
) -> None:  # fmt: skip
    # Given a channel with group_wait 5 s and three firings, two seconds apart
    user_id, channel = _channel(pg_database, alert_settings, receiver, group_wait_s=5)
    ids = _rows(pg_database, alert_settings, user_id, channel, 3)
    actions = [deliverer.attempt(ids[0]).action]
    for notification_id in ids[1:]:
        clock.advance(2)
        actions.append(deliverer.attempt(notification_id).action)

    # Then the first opened the group and all three wait for it, scheduled once
    assert actions == ["grouped"] * 3 and scheduled == [(channel, 5.0)]
    clock.advance(1)  # group_wait after the first
    done = flush(deliverer, channel)
    assert done.digest and done.members == 3
    assert receiver.received() and json.loads(receiver.received()[0].body)["count"] == 3


def test_repeat_interval_holds_an_alerts_repeat_until_the_next_message(
    deliverer: Deliverer, alert_settings: Settings, pg_database: Database, receiver: Receiver,
    clock: ManualClock, scheduled: Scheduled,
) -> None:  # fmt: skip
    # Given a channel with repeat_interval 600 s, and one alert delivered once
    user_id, channel = _channel(pg_database, alert_settings, receiver, repeat_interval_s=600)
    first = outbox_row(pg_database, alert_settings, user_id, channel)
    assert deliverer.attempt(first).action == "sent"

    # When the same alert fires again 100 s later, and another alert 1 s after that
    clock.advance(100)
    again = _fired_again(pg_database, first)
    repeat = deliverer.attempt(again)
    clock.advance(1)
    other = outbox_row(pg_database, alert_settings, user_id, channel)
    other_step = deliverer.attempt(other)

    # Then the repeat waits (at most until its repeat interval ends) and goes out with the
    # next message, which the other alert brings forward to now
    assert (repeat.action, other_step.action) == ("grouped", "grouped")
    assert scheduled == [(channel, 500.0), (channel, 0.0)]
    done = flush(deliverer, channel)
    assert done.digest and done.members == 2
    items = json.loads(receiver.received()[-1].body)["items"]
    assert [i["notification_id"] for i in items] == [again, other]


def test_an_over_budget_chat_channel_gets_a_digest_and_nothing_is_dropped(
    deliverer: Deliverer, alert_settings: Settings, pg_database: Database, receiver: Receiver,
    clock: ManualClock, scheduled: Scheduled, redis_client: redis.Redis,
) -> None:  # fmt: skip
    # Given a Slack channel (1 message a second) with no grouping windows, and six firings
    # at the same instant
    user_id, channel = _channel(pg_database, alert_settings, receiver, "slack")
    ids = _rows(pg_database, alert_settings, user_id, channel, 6)

    # When all are delivered, and the digest task runs too early, then when due
    actions = [deliverer.attempt(i).action for i in ids]
    early = flush(deliverer, channel)
    clock.advance(1)
    due = flush(deliverer, channel)

    # Then one went out, the five others in one digest a second later: two Slack messages,
    # never a 429, nothing dropped
    assert actions == ["sent"] + ["grouped"] * 5
    assert scheduled == [(channel, 1.0)] and early.sent is None
    assert due.digest and due.members == 5
    texts = [json.loads(r.body)["text"] for r in receiver.received("/slack")]
    assert len(texts) == 2 and texts[1].startswith("5 notifications since ")
    assert texts[1].count("\n• ") == 5
    assert [row(pg_database, i).status for i in ids] == ["sent"] + ["digested"] * 5

    # When two more fire at once, and the digest comes due when the bucket is empty again
    # (a message of another worker took the token)
    more = _rows(pg_database, alert_settings, user_id, channel, 2)
    assert [deliverer.attempt(i).action for i in more] == ["grouped", "grouped"]
    clock.advance(1)
    group = keys.NOTIFY_GROUP.name(channel_id=channel)
    redis_client.hset(group, mapping={"tokens": 0, "ts": clock.time_ms()})
    moved = flush(deliverer, channel)

    # Then the digest task schedules itself for when a token is there, and sends then
    assert moved.sent is None and moved.due_in_s == 1.0 and scheduled[-1] == (channel, 1.0)
    clock.advance(1)
    assert flush(deliverer, channel).members == 2


def test_a_digest_retried_after_a_failure_is_the_same_bytes_and_key(
    deliverer: Deliverer, alert_settings: Settings, pg_database: Database, receiver: Receiver,
    clock: ManualClock,
) -> None:  # fmt: skip
    # Given three firings grouped on a webhook channel, and a receiver whose first answer
    # to the digest is a 503 (as after a timeout: it may or may not have processed it)
    user_id, channel = _channel(pg_database, alert_settings, receiver, group_interval_s=30)
    ids = _rows(pg_database, alert_settings, user_id, channel, 3)
    deliverer.attempt(ids[0])
    for notification_id in ids[1:]:
        deliverer.attempt(notification_id)
    receiver.script.append(Reply(503, body=b"busy"))

    # When the digest is due, fails, and is retried (a member firing late in between)
    clock.advance(30)
    failed = flush(deliverer, channel)
    late = _rows(pg_database, alert_settings, user_id, channel, 1)[0]
    assert deliverer.attempt(late).action == "grouped"
    assert failed.step is not None and failed.step.action == "retry" and failed.sent
    retried = deliverer.attempt(failed.sent)

    # Then the retry sent exactly the same body under the same Idempotency-Key, and the
    # late firing is not in it (it waits for the next digest)
    assert retried.action == "sent"
    first, second = receiver.received()[-2:]
    assert first.body == second.body
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert [i["notification_id"] for i in json.loads(second.body)["items"]] == ids[1:]
    assert row(pg_database, late).status == "pending"


def test_given_a_member_locked_by_another_delivery_when_the_digest_goes_then_the_next_is_scheduled(
    pg_database: Database,
    alert_settings: Settings,
    receiver: Receiver,
    deliverer: Deliverer,
    clock: ManualClock,
    scheduled: Scheduled,
) -> None:
    # Given a channel (group_interval 30 s) whose first firing went out and three wait,
    # one of them still locked by the delivery that admitted it (another worker, settling)
    user_id, channel = _channel(pg_database, alert_settings, receiver, group_interval_s=30)
    ids = _rows(pg_database, alert_settings, user_id, channel, 4)
    assert deliverer.attempt(ids[0]).action == "sent"
    for notification_id in ids[1:]:
        clock.advance(1)
        assert deliverer.attempt(notification_id).action == "grouped"
    elsewhere = DeliveryLocks(deliverer.context.redis, 60_000)
    assert elsewhere.acquire([ids[3]]) == [ids[3]]
    scheduled.clear()

    # When the digest is due
    clock.advance(27)
    due = flush(deliverer, channel)

    # Then it holds the two free ones, and the channel's next digest is scheduled for the
    # end of the interval it began: the busy one is not left to the sweeper
    assert due.digest and due.members == 2
    assert row(pg_database, ids[3]).status == "pending"
    assert scheduled == [(channel, 30.0)]

    # When that delivery lets go and the next digest runs, Then it takes the third
    elsewhere.release_all()
    clock.advance(30)
    later = flush(deliverer, channel)
    assert later.sent == ids[3] and not later.digest
    assert row(pg_database, ids[3]).status == "sent"
