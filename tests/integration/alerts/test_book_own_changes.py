"""The evaluator's book takes its own firings without reading them back: when nobody else
wrote since its sync, a fired ``once`` alert leaves the book and the book's version moves
to the firing's announcement; when someone else wrote meanwhile, it reads every change at
the next sync, as before. Real Redis and PostgreSQL, time passed in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from domain.alerts.book import VERSION_KEY, announce
from models.db import Database
from runtime import lifecycle
from settings import Settings
from tasks.alerts.evaluate import Evaluator
from tasks.application import HyperwatchCelery, create_app
from tests.integration.alerts.support import add_alert, add_channel, add_user, mids, now_ms

pytestmark = pytest.mark.integration


@pytest.fixture()
def evaluator(alert_settings: Settings, pg_database: Database) -> Iterator[Evaluator]:
    app: HyperwatchCelery = create_app(alert_settings)
    client = redis.Redis.from_url(alert_settings.redis_url)
    yield Evaluator(app, alert_settings, pg_database, client)
    client.close()
    app.close()
    lifecycle.registry.reset()


def _alerts(db: Database, settings: Settings, client: redis.Redis, n: int) -> list[int]:
    user = add_user(db)
    channel = add_channel(db, settings, user, "http://127.0.0.1:9/h")
    return [
        add_alert(
            db,
            settings,
            client,
            user,
            channel,
            kind="price_above",
            coin="BTC",
            threshold=str(100 + k),
            mode="once",
        )
        for k in range(n)
    ]


def test_a_fired_once_alert_leaves_the_book_at_once_and_the_version_follows(
    evaluator: Evaluator, alert_settings: Settings, pg_database: Database,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    # Given two once-alerts at 100 and 101, both in the book
    low, high = _alerts(pg_database, alert_settings, redis_client, 2)
    t0 = now_ms()
    evaluator.evaluate_batch(mids(t0, BTC="99"), t0)
    assert low in evaluator.book.fire and high in evaluator.book.fire

    # When a mid of 100.5 fires the first (nobody else writes meanwhile)
    report = evaluator.evaluate_batch(mids(t0 + 100, BTC="100.5"), t0 + 100)

    # Then it left the book in the same task, and the book is at the firing's version
    assert report.fired == 1
    assert low not in evaluator.book.fire and high in evaluator.book.fire
    assert evaluator.book.version == int(redis_client.get(VERSION_KEY) or 0)


def test_a_write_by_someone_else_meanwhile_is_read_at_the_next_sync(
    evaluator: Evaluator, alert_settings: Settings, pg_database: Database,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    # Given a once-alert in the book
    (alert,) = _alerts(pg_database, alert_settings, redis_client, 1)
    t0 = now_ms()
    evaluator.evaluate_batch(mids(t0, BTC="99"), t0)
    synced = evaluator.book.version
    assert synced is not None

    # When another writer announces between this task's sync and its firing (simulated:
    # an announcement just before the firing's, after the sync the task does first)
    original = evaluator._fire

    def fire_after_another_write(*args: object, **kwargs: object) -> list[int]:
        announce(redis_client, [alert])
        return original(*args, **kwargs)  # type: ignore[arg-type]

    evaluator._fire = fire_after_another_write  # type: ignore[method-assign]
    evaluator.evaluate_batch(mids(t0 + 100, BTC="101"), t0 + 100)

    # Then the book did not jump over the other write: it is still at its sync's version
    assert evaluator.book.version == synced
    # and the next task reads both changes and ends with the fired alert gone
    evaluator._fire = original  # type: ignore[method-assign]
    evaluator.evaluate_batch(mids(t0 + 200, BTC="101"), t0 + 200)
    assert evaluator.book.version == int(redis_client.get(VERSION_KEY) or 0)
    assert alert not in evaluator.book.fire
