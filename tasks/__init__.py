"""Celery tasks, one module (or package) per queue / job family.

``from tasks import app`` (or ``tasks.app``) is the Celery application. It is built lazily
(PEP 562) by :func:`tasks.application.get_app`, so that importing a pure module such as
``domain.alerts.judgement`` never reads settings or touches a broker, while ``celery -A tasks …``
still finds the app. The module that builds it is ``tasks.application``, not ``tasks.app``:
a submodule of that name would become the package attribute ``app`` once imported and
shadow the application.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):
        from tasks.application import get_app

        return get_app()
    raise AttributeError(f"module 'tasks' has no attribute {name!r}")
