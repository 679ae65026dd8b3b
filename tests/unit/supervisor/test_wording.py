"""What `hyperwatch up` shows of a child's output: Celery's shutdown prints, said plainly."""

from __future__ import annotations

import re

from workers.supervisor.wording import CELERY_WORKER, reword

ALARMING = re.compile(rb"cold shutdown|terminat", re.IGNORECASE)


def test_given_the_workers_soft_shutdown_prints_when_reworded_then_nothing_alarming_is_left() -> (
    None
):
    printed = [
        b"",
        b"worker: Hitting Ctrl+C again will terminate all running tasks!",
        b"",
        b"worker: Cold shutdown (MainProcess)",
        b"[2026-12-05 06:14:54,663: WARNING/MainProcess] Initiating Soft Shutdown, "
        b"terminating in 45.0 seconds",
    ]

    shown = [line for line in (reword(p, CELERY_WORKER) for p in printed) if line is not None]

    assert shown == [
        b"worker: soft shutdown (MainProcess): no new tasks; running ones may finish",
        b"[2026-12-05 06:14:54,663: WARNING/MainProcess] soft shutdown: running tasks get 45.0 s "
        b"to finish, then go back to the queue",
    ]
    assert not [line for line in shown if ALARMING.search(line)]


def test_given_the_celery_texts_when_compared_with_celerys_source_then_they_still_match() -> None:
    import inspect

    from celery.apps import worker as apps_worker
    from celery.worker import worker as worker_worker

    apps = inspect.getsource(apps_worker)
    assert "safe_say(f'worker: {how} shutdown (MainProcess)'" in apps
    assert "'worker: Hitting Ctrl+C again will terminate all running tasks!'" in apps
    assert "Initiating Soft Shutdown, terminating in {" in inspect.getsource(worker_worker)


def test_given_other_lines_when_reworded_then_they_pass_unchanged() -> None:
    for line in (
        b"worker: Warm shutdown (MainProcess)",  # no remap: must stay visible as it is
        b"[2026-12-05: ERROR/ForkPoolWorker-1] Task x[1] raised unexpected: boom",
        b"  indented traceback line",
    ):
        assert reword(line, CELERY_WORKER) == line
    assert reword(b"   ", ()) is None
