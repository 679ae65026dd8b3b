"""Celery tasks, one module (or package) per queue / job family.

``tasks.app`` is the Celery application, created lazily (PEP 562) so that importing a pure
module such as ``domain.alerts.judgement`` never reads settings or touches a broker, while
``celery -A tasks …`` still finds the app.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):
        from tasks.app import get_app

        return get_app()
    raise AttributeError(f"module 'tasks' has no attribute {name!r}")
