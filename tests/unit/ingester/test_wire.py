"""The fast trades encoder writes exactly what events.encode_batch writes."""

from __future__ import annotations

from decimal import Decimal

import orjson
from hypothesis import given
from hypothesis import strategies as st

from events import Mid, Trade, decode_batch, encode_batch
from workers.ingester.wire import batch_json

decimals = st.decimals(
    allow_nan=False, allow_infinity=False, places=None, min_value=-(10**12), max_value=10**12
)
trades = st.builds(
    Trade,
    coin=st.sampled_from(["BTC", "kPEPE", "xyz:TSLA"]),
    time=st.integers(0, 2**45),
    tid=st.integers(0, 2**50),
    px=decimals,
    sz=decimals,
    side=st.sampled_from(["B", "A"]),
    hash=st.text(min_size=1, max_size=70),
    buyer=st.none() | st.text(min_size=1, max_size=42),
    seller=st.none() | st.text(min_size=1, max_size=42),
)


@given(st.lists(trades, max_size=20), st.integers(0, 10**9))
def test_trades_batch_is_byte_for_byte_encode_batch(events: list[Trade], seq: int) -> None:
    ours = batch_json("trades", events, "ing-1", seq)
    assert ours == orjson.dumps(encode_batch("trades", events, "ing-1", seq))
    assert decode_batch(orjson.loads(ours), "trades").events == events


def test_other_kinds_use_encode_batch_itself() -> None:
    mids = [Mid("BTC", 1, Decimal("1.50"))]
    assert batch_json("mids", mids, "s", 2) == orjson.dumps(encode_batch("mids", mids, "s", 2))
