"""Batch wire format: exact round trip, and malformed payloads refused with a reason."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events import AssetContext, MalformedPayload, Trade, decode_batch, encode_batch


def _trade(**kw: object) -> Trade:
    base: dict[str, object] = {
        "coin": "ETH", "time": 1787052617384, "tid": 871204556310942, "px": Decimal("4321.7"),
        "sz": Decimal("0.8421"), "side": "B", "hash": "0x" + "3c" * 32,
        "buyer": "0x" + "5b" * 20, "seller": "0x" + "0a" * 20,
    }  # fmt: skip
    base.update(kw)
    return Trade(**base)  # type: ignore[arg-type]


def test_given_trades_when_encoded_and_decoded_then_equal_and_decimals_exact() -> None:
    trades = [_trade(), _trade(tid=1, px=Decimal("0.00001230"), buyer=None)]
    payload = encode_batch("trades", trades, source="ing-1", seq=7)
    assert payload["events"][1]["px"] == "0.00001230"
    batch = decode_batch(payload, "trades")
    assert batch.events == trades
    assert (batch.source, batch.seq) == ("ing-1", 7)


def test_given_optional_decimals_when_round_tripped_then_none_survives() -> None:
    ctx = AssetContext(
        "BTC",
        1,
        Decimal("0.0000125"),
        Decimal(1),
        Decimal(2),
        Decimal(3),
        None,
        None,
        Decimal(4),
        Decimal(5),
    )
    assert decode_batch(encode_batch("asset_contexts", [ctx])).events == [ctx]


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda p: p.update(v=2), "version"),
        (lambda p: p.update(kind="bogus"), "kind"),
        (lambda p: p.update(events="x"), "list"),
        (lambda p: p["events"][0].update(px="abc"), "trades.px"),
        (lambda p: p["events"][0].update(px=1.5), "trades.px"),
        (lambda p: p["events"][0].update(px="NaN"), "finite"),
        (lambda p: p["events"][0].update(tid="1"), "trades.tid"),
        (lambda p: p["events"][0].update(side="X"), "side"),
        (lambda p: p["events"][0].pop("coin"), "trades.coin"),
    ],
)
def test_given_malformed_batch_when_decoded_then_refused_with_reason(mutate, fragment: str) -> None:
    payload = encode_batch("trades", [_trade()])
    mutate(payload)
    with pytest.raises(MalformedPayload, match=fragment):
        decode_batch(payload, "trades")


def test_given_wrong_kind_for_task_when_decoded_then_refused() -> None:
    with pytest.raises(MalformedPayload, match="expected a positions batch"):
        decode_batch(encode_batch("trades", [_trade()]), "positions")


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_given_any_json_when_decoded_then_only_malformed_payload_escapes(value: object) -> None:
    with contextlib.suppress(MalformedPayload):
        decode_batch(value)
