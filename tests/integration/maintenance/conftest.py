"""Fixtures for the maintenance jobs: a Celery app built the way workers build it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from runtime import lifecycle
from settings import Settings
from tasks.application import HyperwatchCelery, create_app


@pytest.fixture()
def make_app() -> Iterator[Callable[[Settings], HyperwatchCelery]]:
    """``create_app(settings)`` as the process's current app; closed at teardown."""
    apps: list[HyperwatchCelery] = []

    def make(settings: Settings) -> HyperwatchCelery:
        app = create_app(settings)
        app.loader.import_default_modules()
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()
    lifecycle.registry.reset()
