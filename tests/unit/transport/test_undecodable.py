"""The check that decides whether a popped queue item is delivered or set aside."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from kombu.transport import redis as redis_transport
from kombu.utils import json as kombu_json

from runtime import transport

PROPERTIES: dict[str, Any] = {
    "body_encoding": "base64",
    "delivery_info": {"exchange": "", "routing_key": "ingest"},
    "delivery_tag": "e3f1",
    "priority": 0,
}
GOOD: dict[str, Any] = {
    "body": "W1tdLCB7fSwge31d",
    "content-encoding": "utf-8",
    "content-type": "application/json",
    "headers": {"task": "hyperwatch.persist.trades", "id": "1"},
    "properties": PROPERTIES,
}


@pytest.fixture
def channel() -> Any:
    # The check only decodes: a channel that never connected (no __init__) is enough.
    return redis_transport.Channel.__new__(redis_transport.Channel)


def test_given_install_then_the_transport_reads_through_the_check() -> None:
    transport.install()
    assert redis_transport.Channel._brpop_read is transport._brpop_read


@pytest.mark.parametrize("codec", ["kombu", "orjson"])
def test_given_a_kombu_envelope_then_it_passes_unchanged(
    channel: Any, codec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check decodes with whichever loads the transport has: kombu's own, or ours.
    loads = kombu_json.loads if codec == "kombu" else transport.loads
    monkeypatch.setattr(redis_transport, "loads", loads)
    payload, reason = transport.problem(channel, orjson.dumps(GOOD))
    assert (payload, reason) == (GOOD, None)


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (b"not json", "JSONDecodeError"),
        (b"\xff\xfe", "JSONDecodeError"),  # kombu decodes with errors="replace"
        (b"42", "TypeError"),
        (b'{"body": "x"}', "KeyError: 'properties'"),
        (orjson.dumps({**GOOD, "properties": {**PROPERTIES, "delivery_tag": 7}}),
         "delivery_tag is not a string"),
        (orjson.dumps({**GOOD, "properties": {**PROPERTIES, "delivery_info": None}}),
         "delivery_info lacks exchange and routing_key"),
        (orjson.dumps({**GOOD, "body": "!!not base64!!"}), "Invalid base64"),
    ],
)  # fmt: skip
def test_given_an_item_delivery_would_die_of_then_the_reason_is_given(
    channel: Any, item: bytes, reason: str
) -> None:
    payload, got = transport.problem(channel, item)
    assert payload is None and got is not None and reason in got
