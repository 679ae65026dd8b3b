"""Delivery through a real worker to real local receivers: retries, Retry-After, permanent
failures, every channel's request shape, the SSRF guard, and secrets kept out of logs."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
import redis
from sqlalchemy import update

from domain.notify.signing import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    idempotency_key,
    verify,
)
from models.db import Database
from models.notification import Notification
from settings import Settings
from tasks.application import HyperwatchCelery
from tasks.notify.deliver import Deliverer
from tasks.notify.outbox import redis_client as make_redis
from tests.integration.alerts.support import (
    SECRET,
    add_channel,
    add_user,
    now_ms,
    wait_until,
)
from tests.integration.alerts.support import mids as mids_batch
from tests.integration.celery.support import drained
from tests.integration.notify.receiver import Receiver, Reply
from tests.integration.notify.support import outbox_row, row, settled

pytestmark = pytest.mark.integration


def test_receiver_failing_three_times_then_succeeding_gets_one_notification_same_key_valid_signature(
    worker: HyperwatchCelery,
    alert_settings: Settings,
    pg_database: Database,
    receiver: Receiver,
) -> None:
    # Given a webhook that answers 500, 503 and 429 (Retry-After: 1), then 200
    receiver.script.extend([Reply(500), Reply(503), Reply(429, {"Retry-After": "1"}, b"slow down")])
    user_id = add_user(pg_database)
    channel_id = add_channel(pg_database, alert_settings, user_id, receiver.url())
    notification_id = outbox_row(pg_database, alert_settings, user_id, channel_id)

    # When its delivery runs on the worker
    worker.send_task("hyperwatch.notify.deliver", args=[notification_id])
    wait_until(lambda: settled(pg_database, notification_id), 30, what="notification settled")

    # Then it is sent once, after four attempts, each carrying the same key and body and a
    # signature that verifies
    stored = row(pg_database, notification_id)
    assert (stored.status, stored.attempts, stored.last_error) == ("sent", 4, None)
    requests = receiver.received()
    assert len(requests) == 4
    assert {r.headers[IDEMPOTENCY_HEADER] for r in requests} == {idempotency_key(notification_id)}
    assert len({r.body for r in requests}) == 1
    for request in requests:
        assert verify(
            SECRET, request.headers[TIMESTAMP_HEADER], request.body,
            request.headers[SIGNATURE_HEADER], now_s=time.time(),
        )  # fmt: skip
    # and the 429's Retry-After was honoured: at least one second before the fourth try
    assert requests[3].at - requests[2].at >= 1.0
    body = json.loads(requests[0].body)
    assert body["notification_id"] == notification_id
    assert body["idempotency_key"] == idempotency_key(notification_id)


def test_a_4xx_is_permanent_and_exhausted_retries_fail_with_the_last_error(
    settings_for: Callable[..., Settings],
    alert_settings: Settings,
    pg_database: Database,
    receiver: Receiver,
    redis_url: str,
) -> None:
    # Given one webhook answering 404 and another always 502, and at most 2 attempts
    settings = settings_for(**{**alert_settings.model_dump(), "notify_max_attempts": 2})
    receiver.script.append(Reply(404, body=b"no such hook"))
    user_id = add_user(pg_database)
    gone = outbox_row(
        pg_database,
        settings,
        user_id,
        add_channel(pg_database, settings, user_id, receiver.url("/gone")),
    )
    broken = outbox_row(
        pg_database, settings, user_id, add_channel(pg_database, settings, user_id, receiver.url("/broken"))
    )  # fmt: skip
    receiver.default = Reply(502, body=b"bad gateway")
    deliverer = Deliverer(settings, pg_database, make_redis(settings))
    try:
        # When each is attempted until the policy stops
        first = deliverer.attempt(gone)
        second = [deliverer.attempt(broken), deliverer.attempt(broken)]
    finally:
        deliverer.close()

    # Then the 404 failed at once, not retried, with the reason
    assert first.action == "failed"
    assert row(pg_database, gone).status == "failed"
    assert row(pg_database, gone).attempts == 1
    assert row(pg_database, gone).last_error == "permanent error: HTTP 404: no such hook"
    # and the 502 was retried once, then failed with the last error
    assert [s.action for s in second] == ["retry", "failed"]
    assert row(pg_database, broken).last_error == "gave up after 2 attempts: HTTP 502: bad gateway"
    assert len(receiver.received("/gone")) == 1 and len(receiver.received("/broken")) == 2


def test_each_channel_sends_its_own_request_shape(
    worker: HyperwatchCelery,
    settings_for: Callable[..., Settings],
    alert_settings: Settings,
    pg_database: Database,
    receiver: Receiver,
    redis_url: str,
) -> None:
    # Given a Slack, a Discord, a Telegram (API base = the local receiver) and a Redis
    # channel, and a subscriber listening on the user's pub/sub channel
    user_id = add_user(pg_database)
    slack = add_channel(pg_database, alert_settings, user_id, receiver.url("/slack"), "slack", None)
    discord = add_channel(
        pg_database, alert_settings, user_id, receiver.url("/discord"), "discord", None
    )
    telegram = add_channel(
        pg_database,
        alert_settings,
        user_id,
        "-100123",
        "telegram",
        "123:bot-token-0123456789abcdef",
    )
    pubsub = add_channel(pg_database, alert_settings, user_id, None, "redis", None)  # fmt: skip
    listener = redis.Redis.from_url(redis_url).pubsub()
    listener.subscribe(f"hw:notify:user:{user_id}")
    listener.get_message(timeout=1)  # the subscribe confirmation
    # the Telegram API rate-limits the first call with retry_after 1
    receiver.by_path["/bot123:bot-token-0123456789abcdef/sendMessage"] = deque(
        [Reply(429, body=b'{"ok":false,"error_code":429,"parameters":{"retry_after":1}}')]
    )

    # When an alert fires on each
    ids = [
        outbox_row(pg_database, alert_settings, user_id, c)
        for c in (telegram, slack, discord, pubsub)
    ]
    for notification_id in ids:
        worker.send_task("hyperwatch.notify.deliver", args=[notification_id])
    wait_until(lambda: all(settled(pg_database, i) for i in ids), 20, what="all settled")

    # Then every one is sent, each in its channel's format
    assert [row(pg_database, i).status for i in ids] == ["sent"] * 4
    text = "BTC mid price 101 is at or above 100 [price_above]"
    assert json.loads(receiver.received("/slack")[0].body) == {"text": text}
    assert json.loads(receiver.received("/discord")[0].body) == {"content": text}
    calls = receiver.received("/bot123:bot-token-0123456789abcdef/sendMessage")
    assert len(calls) == 2 and calls[1].at - calls[0].at >= 1.0
    assert json.loads(calls[1].body)["chat_id"] == "-100123"
    message = listener.get_message(timeout=5)
    assert message is not None and json.loads(message["data"])["message"] == text
    listener.close()


def test_a_private_address_is_refused_without_allowlist_and_secrets_never_reach_logs(
    settings_for: Callable[..., Settings],
    alert_settings: Settings,
    pg_database: Database,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given channels stored while loopback was allowlisted: a webhook with a secret and a
    # Telegram bot whose API answers with an error echoing the request path (the token)
    user_id = add_user(pg_database)
    hook = outbox_row(pg_database, alert_settings, user_id,
                      add_channel(pg_database, alert_settings, user_id, receiver.url()))  # fmt: skip
    bot = outbox_row(pg_database, alert_settings, user_id,
                     add_channel(pg_database, alert_settings, user_id, "42", "telegram", "999:tok-SECRET-0123456789ab"))  # fmt: skip
    receiver.default = Reply(500, body=b"error at /bot999:tok-SECRET-0123456789ab/sendMessage")
    caplog.set_level(logging.DEBUG)

    # When delivered by a worker whose allowlist no longer covers loopback
    strict = settings_for(**{**alert_settings.model_dump(), "webhook_allowlist": ""})
    deliverer = Deliverer(strict, pg_database, make_redis(strict))
    try:
        refused = deliverer.attempt(hook)
        retried = deliverer.attempt(bot)
    finally:
        deliverer.close()

    # Then the webhook never left: failed for good, with the reason
    assert refused.action == "failed" and receiver.received("/hook") == []
    assert "loopback address 127.0.0.1" in (row(pg_database, hook).last_error or "")
    # and neither the webhook secret nor the bot token is in a log line or the row
    assert retried.action == "retry"
    stored = row(pg_database, bot).last_error or ""
    assert "tok-SECRET" not in stored and "/bot***/sendMessage" in stored
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "tok-SECRET" not in logged and SECRET not in logged


def test_two_deliveries_of_one_row_never_run_at_once(
    alert_settings: Settings, pg_database: Database, receiver: Receiver
) -> None:
    # Given a receiver that holds the first request open
    user_id = add_user(pg_database)
    channel_id = add_channel(pg_database, alert_settings, user_id, receiver.url())
    notification_id = outbox_row(pg_database, alert_settings, user_id, channel_id)
    receiver.hold.set()
    deliverers = [
        Deliverer(alert_settings, pg_database, make_redis(alert_settings)) for _ in range(2)
    ]
    results: list[Any] = []
    try:
        # When one delivery is in flight and a second one for the same row starts
        first = threading.Thread(
            target=lambda: results.append(deliverers[0].attempt(notification_id))
        )
        first.start()
        wait_until(lambda: receiver.received(), 5, what="first request in flight")
        second = deliverers[1].attempt(notification_id)
        receiver.release.set()
        first.join(10)
    finally:
        for d in deliverers:
            d.close()

    # Then the second returned at once without sending; the first delivered it
    assert second.action == "busy"
    assert [r.action for r in results] == ["sent"]
    assert len(receiver.received()) == 1


def test_a_crash_between_commit_and_enqueue_is_delivered_by_the_sweeper(
    worker: HyperwatchCelery,
    alert_settings: Settings,
    pg_database: Database,
    redis_client: redis.Redis,
    receiver: Receiver,
) -> None:
    # Given a fired alert's pending row whose delivery was never enqueued (the evaluating
    # worker died right after its commit), older than NOTIFY_SWEEP_AFTER_S
    user_id = add_user(pg_database)
    channel_id = add_channel(pg_database, alert_settings, user_id, receiver.url())
    notification_id = outbox_row(pg_database, alert_settings, user_id, channel_id)
    with pg_database.session() as s:
        s.execute(
            update(Notification)
            .where(Notification.id == notification_id)
            .values(updated_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2))
        )
    assert receiver.received() == []

    # When beat's sweep runs (twice: the second must not enqueue it again)
    worker.send_task("hyperwatch.notify.sweep_outbox")
    worker.send_task("hyperwatch.notify.sweep_outbox")
    wait_until(lambda: settled(pg_database, notification_id), 20, what="swept and delivered")
    wait_until(lambda: drained(redis_client, "notify"), 10, what="notify drained")

    # Then it is delivered, once
    assert row(pg_database, notification_id).status == "sent"
    assert len(receiver.received()) == 1


def test_evaluate_and_deliver_end_to_end_from_a_mids_batch(
    worker: HyperwatchCelery,
    alert_settings: Settings,
    pg_database: Database,
    redis_client: redis.Redis,
    receiver: Receiver,
) -> None:
    # Given an alert (as the CLI stores it) and a signed webhook
    from tests.integration.alerts.support import add_alert

    user_id = add_user(pg_database)
    channel_id = add_channel(pg_database, alert_settings, user_id, receiver.url())
    alert_id = add_alert(pg_database, alert_settings, redis_client, user_id, channel_id,
                         kind="price_above", coin="BTC", threshold="100")  # fmt: skip

    # When the ingester's batch crosses it
    worker.send_task("hyperwatch.alerts.evaluate", args=[mids_batch(now_ms(), BTC="100.5")])

    # Then the receiver gets one signed notification for it
    wait_until(lambda: receiver.received(), 10, what="delivery")
    body = json.loads(receiver.received()[0].body)
    assert body["alert_id"] == alert_id and body["value"] == "100.5"
