"""A task that fails with secrets in its arguments, message and locals (Sentry e2e test).

Loaded into a real worker with ``celery -A tasks worker -I tests.integration.celery.failing_tasks``.
"""

from __future__ import annotations

from celery import shared_task

from tasks.base import HyperwatchTask


@shared_task(name="hyperwatch.maintenance.fail_for_test", bind=True, base=HyperwatchTask)
def fail_for_test(self: HyperwatchTask, webhook_url: str, signing_secret: str, note: str) -> None:
    """Raise an error (the retry policy's "fail" class) quoting everything it was given."""
    api_token = signing_secret  # a local variable holding a secret
    raise RuntimeError(f"delivery to {webhook_url} failed: signing_secret={api_token}; {note}")
