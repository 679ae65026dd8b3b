"""docs/ALERTS.md's receiver example, run as written against a real signed delivery."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from models.db import Database
from settings import Settings
from tasks.application import HyperwatchCelery
from tests.integration.alerts.support import SECRET, add_channel, add_user, wait_until
from tests.integration.notify.receiver import Receiver
from tests.integration.notify.support import outbox_row

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[3] / "docs" / "ALERTS.md"


def doc_example() -> dict[str, Any]:
    """Execute the code block that follows ``<!-- example: verify -->``."""
    match = re.search(r"<!-- example: verify -->\s*```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, "the verification example is missing from docs/ALERTS.md"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), str(DOC), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


def test_the_documented_receiver_accepts_a_real_delivery_once_and_rejects_forgeries(
    worker: HyperwatchCelery, alert_settings: Settings, pg_database: Database, receiver: Receiver
) -> None:
    # Given a real notification delivered to a webhook
    user_id = add_user(pg_database)
    channel_id = add_channel(pg_database, alert_settings, user_id, receiver.url())
    worker.send_task(
        "hyperwatch.notify.deliver",
        args=[outbox_row(pg_database, alert_settings, user_id, channel_id)],
    )
    [request] = wait_until(lambda: receiver.received(), 10, what="a delivery")
    example = doc_example()
    verify, handle = example["verify_hyperwatch_request"], example["handle"]

    # When the documented receiver code handles it, its retry, and forgeries
    first = handle(SECRET, request.headers, request.body)
    retry = handle(SECRET, request.headers, request.body)
    tampered = handle(SECRET, request.headers, request.body.replace(b"101", b"999"))
    wrong_secret = handle("not-the-secret", request.headers, request.body)
    replayed_later = verify(SECRET, request.headers, request.body, now=time.time() + 3600)

    # Then the real one is accepted (once: the retry is a known key), forgeries are not
    assert (first, retry, tampered, wrong_secret) == (200, 200, 401, 401)
    assert example["processed_keys"] == {request.headers["Idempotency-Key"]}
    assert replayed_later is False
