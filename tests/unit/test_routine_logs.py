"""Routine lines (one per task, schedule tick or HTTP request) are DEBUG; problems keep their level."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from runtime.observability import ROUTINE_MESSAGES, RoutineRecords, quiet_routine_records


@pytest.fixture()
def quiet() -> Iterator[None]:
    quiet_routine_records()
    yield
    for name in ROUTINE_MESSAGES:
        logger = logging.getLogger(name)
        for f in [f for f in logger.filters if isinstance(f, RoutineRecords)]:
            logger.removeFilter(f)


def test_the_celery_messages_we_match_are_celerys_own() -> None:
    from celery import beat
    from celery.app import trace

    assert trace.LOG_RECEIVED.startswith(ROUTINE_MESSAGES["celery.worker.strategy"])
    assert trace.LOG_SUCCESS.startswith(ROUTINE_MESSAGES["celery.app.trace"])
    # Problems are other messages: they must not match.
    for problem in (
        trace.LOG_FAILURE,
        trace.LOG_RETRY,
        trace.LOG_REJECTED,
        trace.LOG_INTERNAL_ERROR,
    ):
        assert not problem.startswith(ROUTINE_MESSAGES["celery.app.trace"])
    assert beat.logger.name == "celery.beat"
    assert trace.logger.name == "celery.app.trace"


def test_installing_twice_adds_one_filter(quiet: None) -> None:
    quiet_routine_records()
    for name in ROUTINE_MESSAGES:
        assert sum(isinstance(f, RoutineRecords) for f in logging.getLogger(name).filters) == 1


def _emit_task_lines() -> None:
    context = {"name": "hyperwatch.persist.trades", "id": "abc", "runtime": 0.01}
    logging.getLogger("celery.worker.strategy").info("Task %(name)s[%(id)s] received", context)
    logging.getLogger("celery.app.trace").info(
        "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
        {**context, "return_value": "{}"},
    )
    logging.getLogger("celery.app.trace").info(
        "Task %(name)s[%(id)s] retry: %(exc)s", {**context, "exc": "Retry in 1s"}
    )
    logging.getLogger("celery.app.trace").error(
        "Task %(name)s[%(id)s] raised unexpected: %(exc)s", {**context, "exc": "boom"}
    )
    logging.getLogger("celery.beat").info("Scheduler: Sending due task %s (%s)", "tick", "t")
    logging.getLogger("celery.beat").info("beat: Starting...")
    logging.getLogger("httpx").info('HTTP Request: POST http://x/info "HTTP/1.1 200 OK"')


def test_given_the_default_level_when_tasks_run_then_only_state_changes_and_problems_show(
    quiet: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        _emit_task_lines()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "Task hyperwatch.persist.trades[abc] retry: Retry in 1s"),
        ("ERROR", "Task hyperwatch.persist.trades[abc] raised unexpected: boom"),
        ("INFO", "beat: Starting..."),
    ]


def test_given_debug_when_tasks_run_then_every_line_shows_marked_debug(
    quiet: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        _emit_task_lines()
    levels = [(r.levelname, r.getMessage().split(" ")[0]) for r in caplog.records]
    assert levels == [
        ("DEBUG", "Task"),
        ("DEBUG", "Task"),
        ("INFO", "Task"),
        ("ERROR", "Task"),
        ("DEBUG", "Scheduler:"),
        ("INFO", "beat:"),
        ("DEBUG", "HTTP"),
    ]
