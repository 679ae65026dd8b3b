"""The beat schedule: every entry routable, expiring with its period, every table retained."""

from __future__ import annotations

import datetime as dt

import pytest
from celery import Celery
from celery.beat import Scheduler

import beat_schedule
import celeryconfig
from settings import Settings, load_settings
from tasks.maintenance.retention import POLICIES


@pytest.fixture()
def schedule() -> dict:
    return beat_schedule.build(load_settings(position_poll_hot_s=12, position_poll_interval_s=45))


def test_every_entry_names_an_existing_queue_that_matches_its_route(schedule: dict) -> None:
    for name, entry in schedule.items():
        queue = entry["options"]["queue"]
        assert queue in celeryconfig.QUEUE_NAMES, name
        family = entry["task"].split(".")[1]  # hyperwatch.<family>.<job>
        assert celeryconfig.task_routes[f"hyperwatch.{family}.*"]["queue"] == queue, name


def test_every_entry_expires_after_one_period(schedule: dict) -> None:
    for name, entry in schedule.items():
        assert entry["options"]["expires"] == entry["schedule"].total_seconds(), name


def test_the_required_jobs_are_scheduled_at_their_cadence(schedule: dict) -> None:
    cadence = {name: e["schedule"] for name, e in schedule.items()}
    assert cadence["health-snapshot"] == dt.timedelta(seconds=30)
    assert cadence["outbox-sweep"] == dt.timedelta(seconds=30)
    assert schedule["outbox-sweep"]["task"] == "hyperwatch.notify.sweep_outbox"
    # half POSITION_POLL_HOT_S: a hot wallet falls due at most half a period from a run
    assert cadence["poll-positions"] == dt.timedelta(seconds=6)
    assert schedule["partitions-ahead"]["task"] == "hyperwatch.maintenance.create_partitions"
    # a silent feed sends no batch: only the tick can fire stale-data alerts
    assert cadence["alerts-tick"] == dt.timedelta(seconds=5)
    assert schedule["alerts-tick"]["task"] == "hyperwatch.alerts.tick"
    assert schedule["alerts-tick"]["options"]["queue"] == "alerts"


def test_every_scheduled_task_is_registered_by_the_worker(schedule: dict) -> None:
    from settings import load_settings
    from tasks.application import create_app

    app = create_app(load_settings())
    app.loader.import_default_modules()
    missing = {e["task"] for e in schedule.values()} - set(app.tasks)
    assert missing == set()


def test_every_retention_policy_has_an_entry_and_every_entry_a_policy(schedule: dict) -> None:
    retained = {e["args"][0] for e in schedule.values() if e["task"].endswith(".retention")}
    assert retained == set(POLICIES)


def test_every_retention_policy_reads_an_existing_setting() -> None:
    for policy in POLICIES.values():
        assert policy.days_setting in Settings.model_fields, policy.table


def test_celery_accepts_every_entry(schedule: dict) -> None:
    app = Celery("schedule-check", set_as_current=False)
    app.conf.beat_schedule = schedule
    scheduler = Scheduler(app, lazy=True)
    scheduler.merge_inplace(schedule)  # raises on a key ScheduleEntry does not take
    assert set(scheduler.schedule) == set(schedule)


def test_recordings_are_aged_out_hourly_only_where_record_dir_is_set(tmp_path: object) -> None:
    assert "retention-recordings" not in beat_schedule.build(load_settings())
    entry = beat_schedule.build(load_settings(record_dir=str(tmp_path)))["retention-recordings"]
    assert entry["task"] == "hyperwatch.maintenance.prune_recordings"
    assert entry["schedule"] == dt.timedelta(hours=1)
    assert entry["options"]["queue"] == "maintenance"
