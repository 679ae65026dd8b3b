"""Celery beat's periodic jobs: each entry names its queue, cadence and why it exists.

Exactly one beat may schedule (see docs/OPERATIONS.md for how a second one is kept out).
"""

from __future__ import annotations

from typing import Any

from settings import Settings


def build(settings: Settings) -> dict[str, Any]:
    """The schedule for this deployment (cadences that depend on settings come from it)."""
    return {}
