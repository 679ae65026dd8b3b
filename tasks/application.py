"""The Celery application.

``celery -A tasks worker|beat|flower`` resolves ``tasks.app`` (see ``tasks/__init__.py``),
which builds the app from the validated Settings on first use — that is the process start
for every Celery process. Tests build their own with :func:`create_app`.

Task modules define their tasks with ``shared_task`` so they bind to whichever app the
process created; ``TASK_MODULES`` is what a worker imports.

Process hooks (Celery signals, connected once at import, acting only for apps built here):

- worker main process, before the pool forks (``celeryd_init``): Sentry. Children inherit
  it; their database pools are re-created after fork by ``models.db`` (one engine per
  process, never a connection shared across a fork).
- beat (``beat_init``): Sentry, which also turns beat entries into Crons monitors.
- every pool child as it exits (``worker_process_shutdown``) and the main process last
  (``worker_shutdown`` on a warm shutdown, at interpreter exit otherwise — a cold shutdown
  sends no signal): the shutdown handlers of ``runtime.lifecycle`` — database pools
  disposed, the broker producer pool (Redis connections) closed, Sentry flushed.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery import Celery, signals

import beat_schedule
import celeryconfig
from events import register_batch_serializer
from models.db import dispose_all
from runtime import brokers, lifecycle, transport
from runtime.observability import init_sentry, quiet_routine_records
from settings import Settings, SettingsError, load_settings
from tasks.maintenance.hooks import install_operations

log = logging.getLogger(__name__)

# Every module that defines tasks; a worker imports all of them at start.
TASK_MODULES: list[str] = [
    "tasks.persist",
    "tasks.heal",
    "tasks.maintenance.retention",
    "tasks.maintenance.recordings",
    "tasks.maintenance.partitions",
    "tasks.maintenance.health_snapshot",
    "tasks.maintenance.positions_poll",
    "tasks.maintenance.dead_letters",
    "tasks.alerts.evaluate",
    "tasks.notify.deliver",
    "tasks.notify.digest",
    "tasks.notify.outbox",
]


class HyperwatchCelery(Celery):
    """A Celery app that carries the process's Settings (``app.settings``)."""

    settings: Settings
    # The broker kind's shortest delay (runtime/brokers/: 1 s on RabbitMQ, none on Redis)
    min_countdown_s: float = 0.0

    def countdown(self, seconds: float) -> float:
        """The delay a message asked to wait ``seconds`` really gets on this broker."""
        return self.min_countdown_s if 0 < seconds < self.min_countdown_s else seconds

    def send_task(self, name: str, *args: Any, **options: Any) -> Any:
        countdown = options.get("countdown")
        if countdown is not None:
            options["countdown"] = self.countdown(countdown)
        return super().send_task(name, *args, **options)


def create_app(settings: Settings) -> HyperwatchCelery:
    register_batch_serializer()  # before any message is decoded (accept_content lists it)
    # The broker kind's kombu changes (runtime/brokers/): on Redis, hyperwatch's envelope
    # codec and junk on a queue set aside instead of stopping the worker; TransportMismatch
    # if the installed kombu is not the one those patches were written against.
    broker = brokers.for_settings(settings)
    broker.install()
    # Per-task "received"/"succeeded" and beat's per-entry lines at DEBUG, in every Celery
    # process of the app (worker, beat, Flower), however it was started.
    quiet_routine_records()
    app = HyperwatchCelery("hyperwatch", set_as_current=True)
    app.settings = settings
    app.min_countdown_s = broker.min_countdown_s
    app.config_from_object(celeryconfig)
    app.conf.update(celeryconfig.from_settings(settings))
    app.conf.beat_schedule = beat_schedule.build(settings)
    app.conf.include = list(TASK_MODULES)
    install_operations(app)  # single-beat scheduler, worker heartbeat and /metrics bootsteps
    lifecycle.register("database-pools", dispose_all)
    lifecycle.register("broker-producer-pool", app.close)
    return app


_app: HyperwatchCelery | None = None


def get_app() -> HyperwatchCelery:
    """The process's app, built from the environment once. A bad setting, or a kombu the
    transport was not written against, exits 2 with one line."""
    global _app
    if _app is None:
        try:
            _app = create_app(load_settings())
        except (SettingsError, transport.TransportMismatch) as exc:
            print(f"hyperwatch: {exc}", file=sys.stderr)
            raise SystemExit(lifecycle.EXIT_USAGE) from None
    return _app


def _ours(app: Any) -> HyperwatchCelery | None:
    return app if isinstance(app, HyperwatchCelery) else None


@signals.celeryd_init.connect(weak=False)
def _on_worker_init(sender: Any = None, instance: Any = None, **_: Any) -> None:
    app = _ours(getattr(instance, "app", None))
    if app is not None:
        init_sentry(app.settings, "worker")
        if app.settings.channel_secret_keys is None and "postgresql" in app.settings.database_url:
            # Workers are what read channel credentials; say once, where operators look.
            log.warning(
                "CHANNEL_SECRET_KEYS is not set: notification channel secrets and targets "
                "are stored in plain text (docs/SECURITY.md)"
            )
        # A cold shutdown (SIGTERM remapped to SIGQUIT) sends no worker_shutdown.
        lifecycle.run_at_exit()


@signals.beat_init.connect(weak=False)
def _on_beat_init(sender: Any = None, **_: Any) -> None:
    app = _ours(getattr(sender, "app", None))
    if app is not None:
        init_sentry(app.settings, "beat")
        lifecycle.run_at_exit()


@signals.worker_process_shutdown.connect(weak=False)
def _on_child_exit(**_: Any) -> None:
    lifecycle.run_shutdown_handlers()


@signals.worker_shutdown.connect(weak=False)
def _on_worker_exit(sender: Any = None, **_: Any) -> None:
    if _ours(getattr(sender, "app", None)) is not None:
        lifecycle.run_shutdown_handlers()
