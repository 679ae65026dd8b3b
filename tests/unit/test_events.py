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
    assert payload["v"] == 2 and payload["events"][1][3] == "0.00001230"  # px, exact
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
        (lambda p: p.update(v=3), "version"),
        (lambda p: p.update(v=True), "version"),
        (lambda p: p.update(kind="bogus"), "kind"),
        (lambda p: p.update(events="x"), "list"),
        (lambda p: p["events"][0].__setitem__(3, "abc"), "trades.px"),
        (lambda p: p["events"][0].__setitem__(3, 1.5), "trades.px"),
        (lambda p: p["events"][0].__setitem__(3, "NaN"), "finite"),
        (lambda p: p["events"][0].__setitem__(2, "1"), "trades.tid"),
        (lambda p: p["events"][0].__setitem__(5, "X"), "side"),
        (lambda p: p["events"][0].pop(0), "array of its 9 fields"),
        (lambda p: p["events"].__setitem__(0, {"coin": "ETH"}), "array of its 9 fields"),
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


_ODD_VALUES: list[object] = [
    None, "", "x", "1e3", "NaN", "sNaN", "-Infinity", " 7 ", "1_000", 7, -7, 0, 2**70, 1.5,
    True, False, [], {}, "B", "A", "b", "\x00", -62_135_596_800_001, 253_402_300_800_000,
]  # fmt: skip


@pytest.mark.parametrize("field", [*Trade._fields, "extra"])
def test_given_any_field_value_when_decoded_then_fast_path_agrees_with_generic_rules(
    field: str,
) -> None:
    """decode_batch checks trades inline; the generic per-field rules are the reference."""
    from events import event_from_wire

    base = dict(zip(Trade._fields, encode_batch("trades", [_trade()])["events"][0], strict=True))
    for value in _ODD_VALUES:
        item = {**base, field: value}
        try:
            expected: object = event_from_wire(Trade, item)
        except MalformedPayload as exc:
            expected = f"event 0: {exc}"
        as_objects = {"v": 1, "kind": "trades", "events": [item]}
        wire = [as_objects]
        if field != "extra":  # version 2 arrays have no room for an unknown field
            wire.append({"v": 2, "kind": "trades", "events": [[item[f] for f in Trade._fields]]})
        for payload in wire:
            try:
                got: object = decode_batch(payload).events[0]
            except MalformedPayload as exc:
                got = str(exc)
            assert got == expected, (payload["v"], field, value)
            assert type(got) is type(expected)


def test_given_a_version_1_batch_of_trade_objects_when_decoded_then_read() -> None:
    """Batches queued by an older ingester still run after an upgrade."""
    from events import event_to_wire

    trades = [_trade(), _trade(tid=2, buyer=None)]
    v1 = {"v": 1, "kind": "trades", "events": [event_to_wire(t) for t in trades]}
    assert decode_batch(v1, "trades").events == trades


def test_given_a_liquidation_fill_when_round_tripped_then_it_stays_one_and_old_fills_none() -> None:
    from events import Fill

    fill = Fill(
        user="0x" + "ab" * 20, coin="BTC", time=1, tid=2, oid=3, px=Decimal("80000.5"),
        sz=Decimal("0.25"), side="A", dir="Close Long", start_position=Decimal("0.25"),
        closed_pnl=Decimal("-3"), fee=Decimal("0.1"), fee_token="USDC", crossed=True,
        hash="0x" + "1" * 64, liquidation="backstop", liquidated_user="0x" + "ab" * 20,
        liquidation_mark_px=Decimal("79999.9"),
    )  # fmt: skip
    wire = encode_batch("fills", [fill])
    assert decode_batch(wire).events == [fill]
    assert wire["events"][0]["liquidation_mark_px"] == "79999.9"
    # A fill from a batch queued before these fields existed is no liquidation
    for name in ("liquidation", "liquidated_user", "liquidation_mark_px"):
        del wire["events"][0][name]
    [old] = decode_batch(wire).events
    assert (old.liquidation, old.liquidated_user, old.liquidation_mark_px) == (None, None, None)
