"""Fault requests and garbage frames."""

from __future__ import annotations

import random

import orjson
import pytest

from workers.simulator.faults import (
    MALFORMED_VARIANTS,
    FaultPlan,
    FaultRequest,
    FaultRequestError,
    malformed_frame,
)


def test_parse_fault_requests() -> None:
    assert FaultRequest.parse({"kind": "drop"}) == FaultRequest("drop")
    assert FaultRequest.parse({"kind": "stall", "seconds": 3}) == FaultRequest("stall", seconds=3.0)
    assert FaultRequest.parse({"kind": "malformed", "count": 5}) == FaultRequest(
        "malformed", count=5
    )
    assert FaultRequest.parse({"kind": "duplicate"}) == FaultRequest("duplicate")
    assert FaultRequest.parse(
        {"kind": "silence", "channel": "activeAssetCtx", "coin": "ETH"}
    ) == FaultRequest("silence", topic="ctx:ETH")
    assert FaultRequest.parse({"kind": "silence", "channel": "allMids"}).topic == "allMids"
    address = "0x" + "AB" * 20
    assert (
        FaultRequest.parse(
            {"kind": "silence", "channel": "clearinghouseState", "user": address}
        ).topic
        == f"chs:{address.lower()}"
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"kind": "explode"},
        {"kind": "stall", "seconds": 0},
        {"kind": "stall", "seconds": "3"},
        {"kind": "malformed", "count": 0},
        {"kind": "silence"},
        {"kind": "silence", "channel": "l2Book", "coin": "BTC"},
        {"kind": "silence", "channel": "activeAssetCtx"},
        {"kind": "silence", "channel": "userFills", "coin": "BTC"},
        [],
    ],
)
def test_bad_fault_requests(body: object) -> None:
    with pytest.raises(FaultRequestError):
        FaultRequest.parse(body)


def test_every_garbage_variant_is_not_a_valid_trades_frame() -> None:
    # Given many garbage frames from a real trades frame
    rng = random.Random(1)
    sample = orjson.dumps(
        {"channel": "trades", "data": [{"coin": "BTC", "px": "1.0", "sz": "1.0", "tid": 1}]}
    )
    seen = set()
    for _ in range(300):
        variant, frame = malformed_frame(rng, sample)
        seen.add(variant)
        frame.decode("utf-8")  # text frames must stay valid UTF-8
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError:
            continue
        # Then whatever parses is never a well-typed trades array
        if (
            isinstance(message, dict)
            and message.get("channel") == "trades"
            and isinstance(message.get("data"), list)
        ):
            assert all(
                not isinstance(t.get("px"), str) or not isinstance(t.get("tid"), int)
                for t in message["data"]
            )
    assert seen == set(MALFORMED_VARIANTS)


def test_plan_validation() -> None:
    FaultPlan(drop_every_s=5, malformed_rate=0.1).validate()
    with pytest.raises(ValueError, match="malformed-rate"):
        FaultPlan(malformed_rate=2).validate()
    with pytest.raises(ValueError, match="stall-seconds"):
        FaultPlan(stall_seconds=0).validate()
