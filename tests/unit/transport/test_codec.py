"""The orjson envelope codec reads and writes exactly what kombu's own JSON does."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import pytest
from kombu.utils import json as kombu_json

from runtime import transport

ENVELOPES: list[Any] = [
    {
        "body": b'[[{"v":1,"kind":"trades","events":[{"px":"1.5"}]}],{},{}]',
        "content-encoding": "utf-8",
        "content-type": "application/x-hyperwatch-batch+json",
        "headers": {"id": "6b1c", "eta": None, "retries": 0, "timelimit": [None, None]},
        "properties": {
            "body_encoding": "utf-8",
            "delivery_info": {"exchange": "", "routing_key": "ingest"},
            "delivery_tag": "e3f1",
            "priority": 0,
        },
    },
    [{"body": "eyJhIjogMX0=", "headers": {"nested": [{"when": dt.datetime(2026, 11, 24, 22, 0, tzinfo=dt.UTC)}]}}, "", "ingest"],
    {"amount": Decimal("0.000012300"), "day": dt.date(2026, 11, 24), "at": dt.time(1, 2, 3)},
    {"not_utf8": b"\xff\xfe", "big": 2**80, 3: "int key"},
    {"__type__": "decimal", "__value__": "1.25"},
    ["\u00e9\u4e2d\U0001f600", "quote\" backslash\\ tab\t", -0.5, 1e300, True, None],
]  # fmt: skip


@pytest.mark.parametrize("value", ENVELOPES)
def test_given_a_value_when_written_by_either_then_read_by_either_the_same(value: Any) -> None:
    ours = transport.dumps(value)
    theirs = kombu_json.dumps(value)
    expected = kombu_json.loads(theirs)
    assert kombu_json.loads(ours) == expected
    assert transport.loads(theirs) == expected
    assert transport.loads(ours) == expected
    assert transport.loads(ours.encode()) == expected


def test_given_nan_from_the_standard_library_when_read_then_kombu_rules_apply() -> None:
    text = kombu_json.dumps({"x": float("nan")})
    assert math.isnan(transport.loads(text)["x"])


def test_given_install_then_kombu_redis_transport_uses_the_codec() -> None:
    from kombu.transport import redis as redis_transport

    # The transport's hot paths look these module globals up at call time; a kombu that
    # stops doing so would silently bypass the codec, so this pins it (and so does the
    # start-up check, transport.check).
    assert "dumps" in redis_transport.Channel._put.__code__.co_names
    assert "dumps" in redis_transport.QoS.append.__code__.co_names
    # kombu's own read, and the replacement that checks an item first
    assert "loads" in transport.KOMBU_BRPOP_READ.__code__.co_names
    assert "loads" in transport.problem.__code__.co_names
    transport.install()
    assert redis_transport.dumps is transport.dumps
    assert redis_transport.loads is transport.loads
