"""The ``trades`` fast path (msgspec structs) parses a frame exactly as the general path does,
or leaves it to the general path: never a different answer."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.hyperliquid import protocol
from runtime.hyperliquid.protocol import _fast_trades, parse_frame

GOOD = {
    "coin": "BTC", "side": "B", "px": "117342.5", "sz": "0.00123", "time": 1787052600000,
    "hash": "0x" + "ab" * 32, "tid": 123456789, "users": ["0x" + "a" * 40, "0x" + "b" * 40],
}  # fmt: skip

# Field → values a wire element may carry instead of the good one, good and bad.
VARIANTS: dict[str, list[Any]] = {
    "coin": ["ETH", "@107", "xyz:TSLA", "", "C" * 40, "C" * 41, "B\x00TC", 7, None, "é"],
    "side": ["A", "b", "", None, 1],
    "px": ["2", "1e3", "0.00001", "NaN", "Infinity", "1e39", "1e-39", "", "abc", 2, 1.5,
           " 1.5", "1_000", "-3"],
    "sz": ["0", "3", "1E+2", "-0.5", "sNaN", 4, None],
    "time": [0, -1, 253402300799999, 253402300800000, "1787052600000", 1.0, True, 2**63],
    "tid": [0, -5, 2**63 - 1, 2**63, "7", False, 3.0],
    "hash": ["0x1", "", "h" * 66, "h" * 67, "0x\x00", None],
    "users": [None, [], ["0xa"], ["0xa", "0xb", "0xc"], ["0xa", 5], "0xa", ["a" * 43, "0xb"],
              ["a" * 42, "b" * 42], ["", ""]],
}  # fmt: skip


@st.composite
def elements(draw: st.DrawFn) -> dict[str, Any]:
    element = dict(GOOD)
    for name in draw(st.lists(st.sampled_from(sorted(VARIANTS)), max_size=3)):
        element[name] = draw(st.sampled_from(VARIANTS[name]))
    if draw(st.booleans()):
        element.pop(draw(st.sampled_from(sorted(element))))
    if draw(st.booleans()):
        element["extra"] = draw(st.sampled_from([1, "x", None, {"a": [1]}]))
    return element


def general(raw: bytes) -> protocol.ParsedFrame:
    return protocol._trades(orjson.loads(raw), 0, raw)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(elements(), st.just(GOOD)), max_size=4), st.booleans())
def test_fast_path_equals_the_general_path_or_leaves_the_frame_to_it(
    data: list[dict[str, Any]], as_str: bool
) -> None:
    raw = orjson.dumps({"channel": "trades", "data": data})
    fast = _fast_trades(raw.decode() if as_str else raw)
    want = general(raw)
    if fast is not None:
        assert fast == want
        assert want.malformed is None  # the fast path only takes what is wholly good
    assert parse_frame(raw.decode() if as_str else raw, 0) == want


def test_the_usual_frame_takes_the_fast_path_and_odd_ones_do_not() -> None:
    usual = orjson.dumps({"channel": "trades", "data": [GOOD, {**GOOD, "tid": 1, "px": "2"}]})
    assert _fast_trades(usual) == general(usual)
    assert _fast_trades(usual) is not None
    for odd in (
        {**GOOD, "px": 5},  # a number where the wire sends a string: the general path decides
        {**GOOD, "users": ["0xa", 5]},
        {**GOOD, "coin": "B\x00TC"},
        {**GOOD, "px": "NaN"},
    ):
        raw = orjson.dumps({"channel": "trades", "data": [odd]})
        assert _fast_trades(raw) is None
        assert parse_frame(raw, 0) == general(raw)
    assert _fast_trades(b'{"channel":"trades","data":{"coin":"ETH"}}') is None
    assert _fast_trades(b'{"channel":"tradesX","data":[]}') is None
