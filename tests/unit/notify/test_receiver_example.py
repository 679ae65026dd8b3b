"""The webhook receiver users copy (docs/examples/webhook_receiver.py, shown verbatim in
docs/ALERTS.md), run as code against requests signed the way hyperwatch signs them
(``domain.notify.signing.build_headers``). Real deliveries through the worker's delivery
path and over HTTP: tests/integration/notify/test_docs_example.py."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from domain.notify.channels.base import Outgoing
from domain.notify.signing import build_headers, idempotency_key
from tests.support.docs_examples import ROOT, included_examples, load_example

EXAMPLE = "docs/examples/webhook_receiver.py"
NEW, OLD = "whsec-new-0123456789abcdef", "whsec-old-0123456789abcdef"
NOW = 1_795_554_442


@pytest.fixture()
def acted() -> list[dict[str, Any]]:
    """What the example acted on (its ``act``, which a user replaces), in order."""
    return []


@pytest.fixture()
def example(acted: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = load_example(EXAMPLE)
    monkeypatch.setattr(module, "act", acted.append)
    return module


def delivery(notification_id: int = 7, *, at: int = NOW, secrets: tuple[str, ...] = (NEW,)):
    """Headers and body of one attempt, exactly as the webhook channel builds them."""
    out = Outgoing(
        notification_id=notification_id,
        idempotency_key=idempotency_key(notification_id),
        user_id=1,
        target="https://hooks.example.com/hw",
        secret=secrets[0],
        payload={"message": "BTC mid price 101 is at or above 100", "alert_id": 3},
    )
    body = out.body()
    headers = build_headers(secrets[0], body, out.idempotency_key, at, also=secrets[1:])
    return headers, body


def test_the_docs_show_the_example_file_verbatim() -> None:
    blocks = included_examples(ROOT / "docs" / "ALERTS.md")
    assert EXAMPLE in blocks, "docs/ALERTS.md must include the receiver example"
    assert blocks[EXAMPLE] == (ROOT / EXAMPLE).read_text()


def test_a_signed_delivery_is_acted_on_once_and_its_retries_are_not(
    example: ModuleType, acted: list[dict[str, Any]]
) -> None:
    headers, body = delivery()
    retry_headers, _ = delivery(at=NOW + 30)  # a retry: new timestamp and signature, same body

    assert example.handle([NEW], headers, body, now=NOW) == 200
    assert example.handle([NEW], retry_headers, body, now=NOW + 30) == 200
    assert acted == [json.loads(body)]
    assert example.processed_keys == {idempotency_key(7)}


def test_a_replay_with_a_new_idempotency_key_header_is_refused(
    example: ModuleType, acted: list[dict[str, Any]]
) -> None:
    # Given a delivery that was processed
    headers, body = delivery()
    assert example.handle([NEW], headers, body, now=NOW) == 200

    # When it is replayed (within the tolerance) with another Idempotency-Key header, which
    # the signature does not cover
    replay = {**headers, "Idempotency-Key": idempotency_key(999)}
    lower = {k.lower(): v for k, v in replay.items()}

    # Then it is refused, whatever the case of the header names, and not acted on again
    assert example.handle([NEW], replay, body, now=NOW + 1) == 401
    assert example.handle([NEW], lower, body, now=NOW + 1) == 401
    assert len(acted) == 1


@pytest.mark.parametrize(
    "signature",
    ["v1=é" + "0" * 63, "v1=\u0661" * 3, "v1=\udcff", "v1=" + "\u017f" * 64, "v2=abc,v1=ä"],
)
def test_a_non_ascii_signature_is_refused_not_a_crash(
    example: ModuleType, acted: list[dict[str, Any]], signature: str
) -> None:
    headers, body = delivery()
    assert example.handle([NEW], {**headers, "X-Hyperwatch-Signature": signature}, body, NOW) == 401
    assert acted == []


@pytest.mark.parametrize(
    ("change", "now"),
    [
        ({"X-Hyperwatch-Timestamp": str(NOW + 1)}, NOW),  # the signature was for another time
        ({"X-Hyperwatch-Timestamp": "9" * 5000}, NOW),  # int() would raise past 4,300 digits
        ({"X-Hyperwatch-Timestamp": "\u0661\u0662"}, NOW),
        ({"X-Hyperwatch-Timestamp": ""}, NOW),
        ({"X-Hyperwatch-Signature": ""}, NOW),
        ({}, NOW + 301),  # stale: a replay after the tolerance
        ({}, NOW - 301),
    ],
)
def test_a_forged_stale_or_malformed_request_is_refused(
    example: ModuleType, acted: list[dict[str, Any]], change: dict[str, str], now: int
) -> None:
    headers, body = delivery()
    assert example.handle([NEW], {**headers, **change}, body, now=now) == 401
    assert acted == []


def test_missing_headers_and_a_tampered_body_are_refused(
    example: ModuleType, acted: list[dict[str, Any]]
) -> None:
    headers, body = delivery()
    assert example.handle([NEW], {}, body, now=NOW) == 401
    assert example.handle([NEW], headers, body.replace(b"101", b"999"), now=NOW) == 401
    assert example.handle(["not-the-secret-0123456"], headers, body, now=NOW) == 401
    assert acted == []


def test_during_a_rotation_either_secret_verifies_and_after_it_only_the_new_one(
    example: ModuleType,
) -> None:
    # Given a delivery in the overlap (signed by the new and the old secret) and one after
    during, body = delivery(secrets=(NEW, OLD))
    after, _ = delivery(secrets=(NEW,))
    verify = example.verify_hyperwatch_request

    # Then a receiver still on the old secret, one already on the new, and one holding both
    # accept the first; only those holding the new secret accept the second
    assert [verify(s, during, body, NOW) for s in ([OLD], [NEW], [NEW, OLD])] == [True] * 3
    assert [verify(s, after, body, NOW) for s in ([OLD], [NEW], [NEW, OLD])] == [
        False,
        True,
        True,
    ]


def test_the_server_refuses_to_start_without_a_secret(example: ModuleType) -> None:
    with pytest.raises(ValueError, match="at least one signing secret"):
        example.server([], port=0)
    with pytest.raises(ValueError, match="none empty"):
        example.server(["whsec-new-0123456789abcdef", ""], port=0)


def test_the_example_needs_nothing_beyond_the_standard_library() -> None:
    source = Path(ROOT / EXAMPLE).read_text()
    for module in ("hyperwatch", "domain", "settings", "requests", "flask", "httpx"):
        assert f"import {module}" not in source and f"from {module}" not in source
