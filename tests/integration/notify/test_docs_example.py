"""docs/ALERTS.md's receiver (docs/examples/webhook_receiver.py, shown verbatim there), run
as the HTTP server a user would run, against real deliveries of the worker's delivery path:
acted on once, a replay with a new Idempotency-Key header refused, a non-ASCII signature
answered 401, and a secret rotation during which the old and the new secret both verify
and after which only the new one does."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from domain.notify.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, idempotency_key
from models.db import Database
from models.notification_channel import NotificationChannel
from models.repositories import ChannelRepository
from runtime.clock import SYSTEM_CLOCK, Clock
from settings import Settings
from tasks.notify.deliver import Deliverer
from tasks.notify.outbox import redis_client as make_redis
from tests.integration.alerts.support import SECRET, add_channel, add_user
from tests.integration.notify.receiver import Receiver
from tests.integration.notify.support import outbox_row, row
from tests.support.docs_examples import load_example

pytestmark = pytest.mark.integration

NEW_SECRET = "whsec-rotated-0123456789abcdef"


class RunningExample:
    """The example's server on a free loopback port, in a thread, with ``act`` recorded."""

    def __init__(self, secrets: list[str]) -> None:
        self.module: ModuleType = load_example("docs/examples/webhook_receiver.py")
        self.acted: list[dict[str, Any]] = []
        self.module.__dict__["act"] = self.acted.append  # what a user's act() would do
        self.server = self.module.server(secrets, port=0)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def run_example() -> Iterator[Callable[[list[str]], RunningExample]]:
    running: list[RunningExample] = []

    def start(secrets: list[str]) -> RunningExample:
        running.append(RunningExample(secrets))
        return running[-1]

    yield start
    for example in running:
        example.close()


def deliver(
    settings: Settings, db: Database, notification_id: int, clock: Clock | None = None
) -> str:
    deliverer = Deliverer(settings, db, make_redis(settings), clock or SYSTEM_CLOCK)
    try:
        return deliverer.attempt(notification_id).action
    finally:
        deliverer.close()


def test_the_example_acts_once_on_a_real_delivery_and_refuses_a_replay_with_a_new_key(
    alert_settings: Settings,
    pg_database: Database,
    receiver: Receiver,
    run_example: Callable[[list[str]], RunningExample],
) -> None:
    # Given the example server, and one real delivery captured on its way (a second channel
    # to the recording receiver, the same notification shape)
    example = run_example([SECRET])
    user_id = add_user(pg_database)
    to_example = add_channel(pg_database, alert_settings, user_id, example.url)
    captured = add_channel(pg_database, alert_settings, user_id, receiver.url())

    # When a notification is delivered to the example, and one captured is sent there too,
    # twice (a retry), then replayed with another Idempotency-Key header
    first = outbox_row(pg_database, alert_settings, user_id, to_example)
    assert deliver(alert_settings, pg_database, first) == "sent"
    second = outbox_row(pg_database, alert_settings, user_id, captured)
    assert deliver(alert_settings, pg_database, second) == "sent"
    [request] = receiver.received()
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
    retry = httpx.post(example.url, content=request.body, headers=headers)
    again = httpx.post(example.url, content=request.body, headers=headers)
    replay = httpx.post(
        example.url,
        content=request.body,
        headers={**headers, IDEMPOTENCY_HEADER: idempotency_key(second + 1000)},
    )

    # Then the real delivery was acted on, the captured one once, and the replay refused
    assert row(pg_database, first).status == "sent"
    assert (retry.status_code, again.status_code, replay.status_code) == (200, 200, 401)
    keys = [n["idempotency_key"] for n in example.acted]
    assert keys == [idempotency_key(first), idempotency_key(second)]


def test_a_non_ascii_signature_gets_401_from_the_running_example(
    alert_settings: Settings,
    pg_database: Database,
    receiver: Receiver,
    run_example: Callable[[list[str]], RunningExample],
) -> None:
    # Given a real signed request, captured
    example = run_example([SECRET])
    user_id = add_user(pg_database)
    channel = add_channel(pg_database, alert_settings, user_id, receiver.url())
    deliver(alert_settings, pg_database, outbox_row(pg_database, alert_settings, user_id, channel))
    [request] = receiver.received()

    # When it is sent to the example with its signature's bytes replaced by non-ASCII ones
    # (raw bytes on the wire: an HTTP client would refuse to send them)
    signature = b"v1=" + "é".encode() * 32
    lines = [b"POST /hook HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    for name, value in request.headers.items():
        if name.lower() not in ("host", "connection", SIGNATURE_HEADER.lower()):
            lines.append(f"{name}: {value}".encode("latin-1"))
    lines.append(SIGNATURE_HEADER.encode() + b": " + signature)
    with socket.create_connection(("127.0.0.1", example.server.server_address[1]), 5) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + request.body)
        answer = sock.makefile("rb").readline()

    # Then 401, the server still serves, and nothing was acted on
    assert answer.split()[1] == b"401"
    assert httpx.post(example.url, content=b"{}", headers={}).status_code == 401
    assert example.acted == []


def test_during_a_rotation_both_secrets_verify_and_after_it_only_the_new_one(
    alert_settings: Settings,
    pg_database: Database,
    run_example: Callable[[list[str]], RunningExample],
) -> None:
    # Given three example receivers — one still on the old secret, one already on the new,
    # one holding both — each the target of a webhook channel whose secret was just rotated
    # with a one-hour overlap
    examples = {
        "old": run_example([SECRET]),
        "new": run_example([NEW_SECRET]),
        "both": run_example([NEW_SECRET, SECRET]),
    }
    user_id = add_user(pg_database)
    channels = {
        name: add_channel(pg_database, alert_settings, user_id, example.url)
        for name, example in examples.items()
    }
    now = dt.datetime.now(dt.UTC)
    with pg_database.session() as s:
        for channel in channels.values():
            ChannelRepository(s).rotate_secret(channel, NEW_SECRET, now + dt.timedelta(hours=1))

    def deliver_to_each() -> dict[str, str]:
        return {
            name: deliver(
                alert_settings,
                pg_database,
                outbox_row(pg_database, alert_settings, user_id, channel),
            )
            for name, channel in channels.items()
        }

    # When a notification is delivered to each inside the window, and again once it ended
    during = deliver_to_each()
    with pg_database.session() as s:
        s.execute(
            update(NotificationChannel)
            .where(NotificationChannel.id.in_(channels.values()))
            .values(previous_secret_until=now - dt.timedelta(seconds=1))
        )
    after = deliver_to_each()

    # Then inside the window every receiver verified it; after it, the one on the old
    # secret answered 401 (a permanent failure) and the others accepted it
    assert during == {"old": "sent", "new": "sent", "both": "sent"}
    assert after == {"old": "failed", "new": "sent", "both": "sent"}
    assert [len(e.acted) for e in examples.values()] == [1, 2, 2]
