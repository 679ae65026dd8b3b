"""``from tasks import app`` is the Celery application, built lazily; pure imports stay pure.

Each case runs in a fresh interpreter: the app is process-wide state (current app, kombu
transport hooks) that the other unit tests must not inherit.
"""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import tasks.persist, tasks.application  # importing task modules must not build the app
assert tasks.application._app is None, "importing a task module built the app"
from tasks import app
from tasks.application import HyperwatchCelery
assert isinstance(app, HyperwatchCelery), type(app)
import tasks
assert tasks.app is app and tasks.celery is app
print(app.main)
"""


def test_given_the_task_modules_imported_when_from_tasks_import_app_then_the_celery_app() -> None:
    # Given a fresh interpreter that imported task modules (once this shadowed `app` with a
    # submodule of that name)
    # When it runs `from tasks import app`
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60
    )
    # Then it gets the Celery application, the same object `celery -A tasks` finds
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hyperwatch"


def test_given_celery_cli_when_finding_the_app_of_tasks_then_it_is_ours() -> None:
    code = (
        "from celery.app.utils import find_app\n"
        "from tasks.application import HyperwatchCelery\n"
        "assert isinstance(find_app('tasks'), HyperwatchCelery)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
