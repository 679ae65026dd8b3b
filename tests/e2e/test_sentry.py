"""Sentry from real processes to a local HTTP receiver standing in for sentry.io.

The worker runs ``celery -A tasks worker`` with SENTRY_DSN pointing here; the SDK sends
real envelopes (gzip, ``/api/<project>/envelope/``) which the receiver records.
"""

# ruff: noqa: F811 - pytest fixtures imported from the shared module are parameters here

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tasks.application import HyperwatchCelery
from tests.integration.celery.fixtures import (  # noqa: F401 - fixtures
    celery_settings,
    publisher,
    spawn_worker,
    worker_env,
)
from tests.integration.celery.support import WorkerProcess, wait_until
from tests.support.sentry import SentryReceiver

pytestmark = pytest.mark.e2e

SLACK_PATH = "T0AAA/B0BBB/XXXXsecretpath"
SIGNING_SECRET = "whsec_9f8e7d6c5b4a"
DB_PASSWORD = "hunter2pass"
FLOWER_PASSWORD = "flowerpass123"


@pytest.fixture()
def receiver() -> Iterator[SentryReceiver]:
    server = SentryReceiver()
    yield server
    server.close()


def test_failing_task_reaches_sentry_as_an_envelope_without_its_secrets(
    receiver: SentryReceiver,
    spawn_worker: Callable[..., WorkerProcess],
    publisher: HyperwatchCelery,
) -> None:
    # Given a real worker with Sentry on, a Flower password configured, and a task that
    # fails quoting a Slack webhook URL, a signing secret, a database URL with a password
    # and the Flower password (its locals hold the secret too)
    worker = spawn_worker(
        {"sentry_dsn": receiver.dsn, "flower_basic_auth": f"ops:{FLOWER_PASSWORD}"},
        queues="maintenance",
        extra_args=("-I", "tests.integration.celery.failing_tasks"),
    ).wait_ready()

    # When the task runs and fails
    publisher.send_task(
        "hyperwatch.maintenance.fail_for_test",
        args=[
            f"https://hooks.slack.com/services/{SLACK_PATH}",
            SIGNING_SECRET,
            f"db postgresql://app:{DB_PASSWORD}@db.internal:5432/hw, operator {FLOWER_PASSWORD}",
        ],
    )

    # Then a real Sentry envelope arrives with the exception
    def error_event() -> dict[str, Any] | None:
        for item in receiver.items():
            for exc in (item.get("exception") or {}).get("values", []):
                if exc.get("type") == "RuntimeError" and item.get("extra", {}).get("celery-job"):
                    return item
        return None

    event = wait_until(error_event, 30, interval=0.2, what="the task's error event")
    exc = event["exception"]["values"][-1]
    assert exc["mechanism"]["type"] == "celery"
    assert exc["value"].startswith("delivery to https://hooks.slack.com/services/[Filtered]")
    assert "signing_secret=[Filtered]" in exc["value"]
    assert "postgresql://[Filtered]@db.internal:5432/hw" in exc["value"]
    assert event["extra"]["celery-job"]["args"] == "[Filtered]"
    assert event["tags"]["process"] == "worker"
    assert all("vars" not in frame for frame in exc["stacktrace"]["frames"])

    # And no secret is anywhere in anything sent (the worker's error log line included)
    wait_until(lambda: worker.log().count("raised unexpected") >= 1, 10)
    everything = b"\n".join(receiver.bodies)
    for secret in (SLACK_PATH, SIGNING_SECRET, DB_PASSWORD, FLOWER_PASSWORD):
        assert secret.encode() not in everything, secret


def test_beat_initialises_sentry(
    receiver: SentryReceiver, worker_env: dict[str, str], tmp_path: Any
) -> None:
    # Given SENTRY_DSN; When `celery -A tasks beat` starts; Then Sentry is on for beat
    import subprocess

    from tests.integration.celery.support import CELERY

    log = tmp_path / "beat.log"
    env = {**worker_env, "SENTRY_DSN": receiver.dsn}
    with log.open("wb") as out:
        beat = subprocess.Popen(
            [CELERY, "-A", "tasks", "beat", "--loglevel=INFO", "-s", str(tmp_path / "sched")],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_until(lambda: "Sentry enabled for beat" in log.read_text(), 30)
        finally:
            beat.terminate()
            beat.wait(15)
