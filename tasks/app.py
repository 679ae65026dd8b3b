"""The Celery application.

``celery -A tasks worker|beat|flower`` resolves ``tasks.app`` (see ``tasks/__init__.py``),
which builds the app from the validated Settings on first use — that is the process start
for every Celery process. Tests build their own with :func:`create_app`.

Task modules define their tasks with ``shared_task`` so they bind to whichever app the
process created; ``TASK_MODULES`` is what a worker imports.
"""

from __future__ import annotations

import sys

from celery import Celery

import beat_schedule
import celeryconfig
from settings import Settings, SettingsError, load_settings

# Every module that defines tasks; a worker imports all of them at start.
TASK_MODULES: list[str] = []


class HyperwatchCelery(Celery):
    """A Celery app that carries the process's Settings (``app.settings``)."""

    settings: Settings


def create_app(settings: Settings) -> HyperwatchCelery:
    app = HyperwatchCelery("hyperwatch", set_as_current=True)
    app.settings = settings
    app.config_from_object(celeryconfig)
    app.conf.update(celeryconfig.from_settings(settings))
    app.conf.beat_schedule = beat_schedule.build(settings)
    app.conf.include = list(TASK_MODULES)
    return app


_app: HyperwatchCelery | None = None


def get_app() -> HyperwatchCelery:
    """The process's app, built from the environment once. A bad setting exits 2."""
    global _app
    if _app is None:
        try:
            settings = load_settings()
        except SettingsError as exc:
            print(f"hyperwatch: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        _app = create_app(settings)
    return _app
