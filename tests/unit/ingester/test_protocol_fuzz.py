"""Hypothesis: whatever arrives, parse_frame returns; a rejection always names its reason."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.hyperliquid.protocol import KNOWN_CHANNELS, parse_frame
from tests.unit.ingester import frames, mutations

REASONS = {"not_json", "not_object", "no_channel", "bad_data", "bad_event", "parser_error"}

json_leaf = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text()
json_values = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
channels = st.sampled_from(sorted(KNOWN_CHANNELS)) | st.text(max_size=10)


def _check(raw: str | bytes) -> None:
    pf = parse_frame(raw, 1_787_052_700_000)
    assert pf.kind in {"data", "pong", "ack", "error", "post", "ignored", "malformed"}
    if pf.kind == "malformed":
        assert pf.malformed in REASONS and pf.events == []
    elif pf.malformed is not None:
        assert pf.malformed == "bad_event" and pf.rejected > 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_random_bytes_and_text_never_raise(raw: bytes | str) -> None:
    _check(raw)


@settings(max_examples=300, deadline=None)
@given(channels, json_values)
def test_random_json_under_any_channel_never_raises(channel: str, data: Any) -> None:
    _check(orjson.dumps({"channel": channel, "data": data}, option=orjson.OPT_NON_STR_KEYS))


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(frames.ALL_VALID), st.data(), json_values)
def test_valid_frames_with_one_value_mutated_never_raise(
    raw: bytes, data: st.DataObject, new: Any
) -> None:
    # Given a valid frame of the reference / When any one value in it is replaced
    doc = orjson.loads(raw)
    path = data.draw(st.sampled_from(mutations.paths(doc)))
    mutated = orjson.dumps(mutations.replace(doc, path, new), option=orjson.OPT_NON_STR_KEYS)
    # Then parsing returns normally
    _check(mutated)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(frames.ALL_VALID), st.integers(0, 2000), st.integers(1, 50))
def test_truncated_or_spliced_valid_frames_never_raise(raw: bytes, cut: int, width: int) -> None:
    _check(raw[:cut])
    _check(raw[:cut] + raw[cut + width :])
