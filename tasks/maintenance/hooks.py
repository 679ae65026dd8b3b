"""The operations hooks every Celery process of the app gets (one call from ``create_app``).

- beat: :class:`~tasks.maintenance.beat_guard.SingleBeatScheduler`, so a second beat never
  double-schedules (``celery -A tasks beat`` needs no ``-S``; an explicit ``-S`` on the
  command line would bypass the guard, so deployment files must not pass one);
- worker: the heartbeat bootstep (``runtime.heartbeat``) and the ``/metrics`` bootstep with
  prefork-safe metric files (``runtime.metrics_export``);
- every process that runs tasks: task duration and failure metrics.
"""

from __future__ import annotations

from celery import Celery

from runtime.heartbeat import HeartbeatStep
from runtime.metrics_export import MetricsServerStep, connect_task_signals, connect_worker_init

SCHEDULER = "tasks.maintenance.beat_guard:SingleBeatScheduler"


def install_operations(app: Celery) -> None:
    app.conf.beat_scheduler = SCHEDULER
    app.steps["worker"].add(HeartbeatStep)
    app.steps["worker"].add(MetricsServerStep)
    connect_worker_init()
    connect_task_signals()
