"""Tier quotas on real PostgreSQL: creation beyond a quota is refused with the reason and
writes nothing; notifications beyond the hourly rate are stored as suppressed, with the
reason, and never delivered."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from sqlalchemy import func, select

from domain.alerts.manage import Refused, create_alert, track_wallet
from models.alert import Alert
from models.db import Database
from models.repositories import UserRepository
from models.tracked_wallet import TrackedWallet
from settings import Settings
from tasks.application import HyperwatchCelery
from tests.integration.alerts.support import (
    WALLET,
    add_alert,
    add_channel,
    add_user,
    mids,
    notifications,
    now_ms,
    wait_until,
)
from tests.integration.celery.support import drained
from tests.integration.notify.receiver import Receiver

pytestmark = pytest.mark.integration


@pytest.fixture()
def alert_settings(alert_settings: Settings, settings_for: Callable[..., Settings]) -> Settings:
    """The shared settings with small free-tier quotas."""
    return settings_for(
        **{
            **alert_settings.model_dump(),
            "tier_free_max_alerts": 3,
            "tier_free_max_wallets": 1,
            "tier_free_notifications_per_hour": 2,
        }
    )


def count(db: Database, model: type) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_creating_beyond_the_tier_quota_is_refused_with_the_reason_and_writes_nothing(
    alert_settings: Settings, pg_database: Database, redis_client: redis.Redis, receiver: Receiver
) -> None:
    # Given a free-tier user (3 alerts, 1 wallet) who has used both quotas
    user_id = add_user(pg_database, tier="free")
    channel_id = add_channel(pg_database, alert_settings, user_id, receiver.url())
    for i in range(3):
        add_alert(pg_database, alert_settings, redis_client, user_id, channel_id,
                  kind="price_above", coin="BTC", threshold=str(100 + i))  # fmt: skip
    with pg_database.session() as s:
        user = UserRepository(s).get(user_id)
        assert user is not None
        track_wallet(s, alert_settings, user, WALLET)

    # When one more of each is created
    with pg_database.session() as s:
        user = UserRepository(s).get(user_id)
        assert user is not None
        with pytest.raises(Refused) as alert_refusal:
            create_alert(s, alert_settings, user, {"kind": "price_below", "coin": "BTC",
                                                   "threshold": "90"}, channel_id)  # fmt: skip
        with pytest.raises(Refused) as wallet_refusal:
            track_wallet(s, alert_settings, user, "0x" + "cd" * 20)
        # (tracking the same wallet again is no new use of the quota)
        assert track_wallet(s, alert_settings, user, WALLET)[1] is False

    # Then both are refused, saying why, and nothing was written
    assert str(alert_refusal.value) == (
        "trader@example.com (free tier) already has 3 active alert(s) and the tier allows 3; "
        "pause or remove one, or raise the tier"
    )
    assert "already tracks 1 wallet(s) and the tier allows 1" in str(wallet_refusal.value)
    assert count(pg_database, Alert) == 3
    assert count(pg_database, TrackedWallet) == 1


def test_notifications_beyond_the_hourly_rate_are_stored_as_suppressed_never_sent(
    worker: HyperwatchCelery,
    alert_settings: Settings,
    pg_database: Database,
    redis_client: redis.Redis,
    receiver: Receiver,
) -> None:
    # Given a free-tier user (2 notifications an hour) with three alerts one tick crosses
    user_id = add_user(pg_database, tier="free")
    channel_id = add_channel(pg_database, alert_settings, user_id, receiver.url())
    ids = [
        add_alert(
            pg_database,
            alert_settings,
            redis_client,
            user_id,
            channel_id,
            kind="price_above",
            coin="BTC",
            threshold=str(100 + i),
        )
        for i in range(3)
    ]

    # When the tick arrives
    worker.send_task("hyperwatch.alerts.evaluate", args=[mids(now_ms(), BTC="200")])
    wait_until(
        lambda: (
            drained(redis_client, "alerts")
            and drained(redis_client, "notify")
            and sum(n.status == "sent" for n in notifications(pg_database)) == 2
        ),
        20,
        what="two sent",
    )

    # Then all three fired and are recorded; two were delivered, the third is suppressed
    # with the reason and never reached the receiver
    rows = notifications(pg_database)
    assert sorted(n.alert_id or 0 for n in rows) == ids
    assert sorted(n.status for n in rows) == ["sent", "sent", "suppressed"]
    [suppressed] = [n for n in rows if n.status == "suppressed"]
    assert suppressed.last_error == (
        "hourly notification quota reached: 2 of 2 in the last hour (free tier)"
    )
    assert len(receiver.received()) == 2
