"""The Celery configuration's decisions, checked against the app create_app builds."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import celeryconfig
from events import BATCH_CONTENT_TYPE
from runtime import lifecycle
from settings import Settings
from tasks.application import TASK_MODULES, HyperwatchCelery, create_app

PERSIST = [
    "hyperwatch.persist.trades",
    "hyperwatch.persist.asset_contexts",
    "hyperwatch.persist.positions",
    "hyperwatch.persist.fills",
    "hyperwatch.persist.session",
]


@pytest.fixture()
def app(settings_for: Callable[..., Settings]) -> Iterator[HyperwatchCelery]:
    app = create_app(settings_for())
    app.loader.import_default_modules()
    yield app
    lifecycle.registry.reset()


def queue_of(app: HyperwatchCelery, task: str) -> str:
    return str(app.amqp.router.route({}, task)["queue"].name)


def test_every_persist_task_the_ingester_sends_exists_and_routes_to_ingest(
    app: HyperwatchCelery,
) -> None:
    from workers.ingester.broker import ROUTES

    sent = {t.task for targets in ROUTES.values() for t in targets if ".persist." in t.task}
    assert sent | {"hyperwatch.persist.session"} == set(PERSIST)
    for name in PERSIST:
        assert name in app.tasks
        assert queue_of(app, name) == "ingest"


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("hyperwatch.alerts.evaluate", "alerts"),
        ("hyperwatch.notify.deliver", "notify"),
        ("hyperwatch.notify.deliver_many", "notify"),
        ("hyperwatch.maintenance.retention", "maintenance"),
        ("something.unrouted", "maintenance"),
    ],
)
def test_routes_name_declared_queues_only(app: HyperwatchCelery, task: str, queue: str) -> None:
    assert queue_of(app, task) == queue
    assert queue in {q.name for q in app.conf.task_queues}
    assert app.conf.task_create_missing_queues is False


def test_delivery_guarantees(app: HyperwatchCelery) -> None:
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.task_ignore_result and conf.result_backend is None
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json", BATCH_CONTENT_TYPE]  # JSON only, never pickle
    assert conf.worker_send_task_events and conf.task_send_sent_event
    assert "tasks.persist" in TASK_MODULES


def test_time_limits_and_broker_timeouts_follow_the_settings(
    settings_for: Callable[..., Settings],
) -> None:
    conf = celeryconfig.from_settings(
        settings_for(
            broker_visibility_timeout_s=600,
            task_time_limit_s=300,
            worker_soft_shutdown_timeout_s=45,
            worker_prefetch_multiplier=8,
        )
    )
    options = conf["broker_transport_options"]
    assert options["visibility_timeout"] == 600
    assert options["unacked_restore_interval"] == 10
    assert options["socket_timeout"] < options["visibility_timeout"]
    assert conf["task_soft_time_limit"] < conf["task_time_limit"] == 300
    # a task can never outlive the visibility timeout (celery#5935: it would run twice)
    assert conf["task_time_limit"] < options["visibility_timeout"]
    assert conf["worker_soft_shutdown_timeout"] == 45
    assert conf["worker_prefetch_multiplier"] == 8


def test_a_short_visibility_timeout_is_swept_often_enough(
    settings_for: Callable[..., Settings],
) -> None:
    conf = celeryconfig.from_settings(settings_for(broker_visibility_timeout_s=5))
    assert conf["broker_transport_options"]["unacked_restore_interval"] == 1
