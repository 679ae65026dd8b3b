"""Archive line parsers and trade derivation on the reference's own sample lines."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from events import Fill, Trade
from runtime.hyperliquid.archive import (
    SYNTHETIC_TID_BASE,
    ArchiveDecoder,
    BadLine,
    BadLineReport,
    LineChunk,
    archive_key,
    fill_from_event,
    format_from_line,
    format_from_path,
    format_iso_ns,
    parse_fills_by_block,
    parse_iso_ns,
    parse_node_fill,
    parse_node_trade,
    sort_key,
)
from tests.unit.archive import samples

BUYER = "0x4622d70c92631f4ae484f82b871f10844e6eeafc"
SELLER = "0xabfae5ef417fec83a63dcdbff5a13f71d09045c5"
TID = 601180746901427


def decode(fmt, lines, wallets=(), **kwargs):
    decoder = ArchiveDecoder(fmt, wallets, **kwargs)
    decoder.feed(LineChunk(1, list(lines), 0))
    out = decoder.take()
    decoder.finish()
    return out, decoder.counts


def block_line(events, number=1, local="2025-08-01T00:00:01.013207614") -> bytes:
    return orjson.dumps(
        {
            "local_time": local,
            "block_time": "2025-08-01T00:00:00.536482059",
            "block_number": number,
            "events": events,
        }
    )


def sample_events() -> list:
    return orjson.loads(samples.FILLS_BY_BLOCK)["events"]


# --- §3.1 node_fills_by_block -------------------------------------------------------------


def test_given_reference_block_line_when_parsed_then_typed_fields_are_exact() -> None:
    block = parse_fills_by_block(samples.FILLS_BY_BLOCK)
    assert block.block_number == 681644303
    assert block.local_time_ns == 1754006401013207614
    assert block.block_time_ns == 1754006400536482059
    bid, ask = block.fills
    assert (bid.user, bid.side, bid.crossed, bid.dir) == (BUYER, "B", True, "Close Short")
    assert (ask.user, ask.side, ask.crossed, ask.fee) == (SELLER, "A", False, Decimal("-0.001527"))
    assert bid.px == Decimal("115725.0") and str(bid.px) == "115725.0"
    assert bid.start_position == Decimal("-113.7036")
    assert bid.tid == ask.tid == TID
    # fill time is the block time truncated to ms (§3.2)
    assert bid.time == block.block_time_ns // 1_000_000


def test_given_reference_block_line_when_decoded_then_one_trade_with_the_taker_side() -> None:
    out, counts = decode("node_fills_by_block", [samples.FILLS_BY_BLOCK])
    assert out.bad == [] and counts.fills == 2
    assert out.trades == [
        Trade(
            coin="BTC",
            time=1754006400536,
            tid=TID,
            px=Decimal("115725.0"),
            sz=Decimal("0.00066"),
            side="B",  # the ask did not cross: the buyer was the taker
            hash="0x2d55821847fd207d576f0428a1110f01bb0087b493eb770fc7521e6190bc19c5",
            buyer=BUYER,
            seller=SELLER,
        )
    ]
    assert str(out.trades[0].px) == "115725.0" and str(out.trades[0].sz) == "0.00066"


def test_given_tracked_wallet_when_decoded_then_its_fill_is_an_event() -> None:
    out, _ = decode("node_fills_by_block", [samples.FILLS_BY_BLOCK], wallets={SELLER.upper()})
    assert out.fills == [
        Fill(
            user=SELLER, coin="BTC", time=1754006400536, tid=TID, oid=124534041015,
            px=Decimal("115725.0"), sz=Decimal("0.00066"), side="A", dir="Close Long",
            start_position=Decimal("0.47663"), closed_pnl=Decimal("0.095766"),
            fee=Decimal("-0.001527"), fee_token="USDC", crossed=False,
            hash="0x2d55821847fd207d576f0428a1110f01bb0087b493eb770fc7521e6190bc19c5",
        )
    ]  # fmt: skip


def test_given_compact_and_spaced_separators_when_decoded_then_same_trades() -> None:
    compact = orjson.dumps(orjson.loads(samples.FILLS_BY_BLOCK))
    assert b", " not in compact
    a, _ = decode("node_fills_by_block", [samples.FILLS_BY_BLOCK])
    b, _ = decode("node_fills_by_block", [compact])
    assert a.trades == b.trades


def test_given_ws_trade_when_rebuilt_as_fills_then_derivation_gives_it_back() -> None:
    ws = orjson.loads(samples.WS_TRADE)
    buyer, seller = ws["users"]
    common = {k: ws[k] for k in ("coin", "px", "sz", "time", "hash", "tid")}
    extra = {"startPosition": "0.0", "dir": "Open Long", "closedPnl": "0.0", "oid": 1}
    fee = {"fee": "0.1", "feeToken": "USDC"}
    taker_is_seller = ws["side"] == "A"
    events = [
        [buyer, {**common, **extra, **fee, "side": "B", "crossed": not taker_is_seller}],
        [seller, {**common, **extra, **fee, "side": "A", "crossed": taker_is_seller}],
    ]
    out, _ = decode("node_fills_by_block", [block_line(events)])
    (trade,) = out.trades
    assert trade.side == ws["side"] and (trade.buyer, trade.seller) == (buyer, seller)
    assert (trade.coin, trade.time, trade.tid, str(trade.px), str(trade.sz), trade.hash) == (
        ws["coin"], ws["time"], ws["tid"], ws["px"], ws["sz"], ws["hash"],
    )  # fmt: skip


# --- §3.2 fill objects --------------------------------------------------------------------


def test_given_builder_fee_event_when_parsed_then_optional_keys_are_read() -> None:
    fill = fill_from_event(orjson.loads(samples.BUILDER_EVENT))
    assert fill.coin == "@142" and fill.side == "A" and fill.dir == "Sell"
    assert fill.builder_fee == Decimal("0.04856712") and fill.fee == Decimal("0.08120422")
    assert fill.builder == "0x1924b8561eef20e70ede628a296175d358be80e5"
    assert fill.twap_id is None and fill.liquidation is None


def test_given_liquidation_fill_with_twap_id_null_when_parsed_then_accepted() -> None:
    fill = fill_from_event(
        ["0x5ef843ccf26810073ee689a954f6d05f5b48fccb", orjson.loads(samples.LIQUIDATION_FILL)]
    )
    assert fill.twap_id is None
    assert fill.liquidation == {
        "liquidatedUser": "0x5ef843ccf26810073ee689a954f6d05f5b48fccb",
        "markPx": "72.149",
        "method": "market",
    }
    assert fill.cloid == "0x00000000000000000000019f08a8bdd8" and fill.tid == 340554939716632


def test_given_unknown_keys_when_parsed_then_tolerated() -> None:
    events = sample_events()
    for _, fill in events:
        fill["deployerFee"] = "0.001"
        fill["somethingNew"] = {"nested": [1, 2]}
        fill["twapId"] = 822427
    line = block_line(events)
    assert [f.twap_id for f in parse_fills_by_block(line).fills] == [822427, 822427]
    out, _ = decode("node_fills_by_block", [line])
    assert len(out.trades) == 1 and out.bad == []


def test_given_dust_conversion_and_zero_size_when_decoded_then_skipped() -> None:
    events = sample_events()
    dust = [
        "0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
        {**events[1][1], "tid": 0, "dir": "Spot Dust Conversion"},
    ]
    zero = [[u, {**f, "sz": "0.0", "tid": 77}] for u, f in events]
    out, counts = decode("node_fills_by_block", [block_line([dust, *zero])])
    assert out.trades == [] and out.bad == []
    assert counts.skipped_dust == 3 and counts.unpaired_fills == 0


# --- §3.3 node_fills ----------------------------------------------------------------------


def test_given_node_fill_line_when_parsed_then_no_envelope_and_no_twap_id() -> None:
    fill = parse_node_fill(samples.NODE_FILL)
    assert fill.user == "0x5dd1c7815889c3515d5bdc1be4e2df5db0ad8d5b"
    assert (fill.side, fill.crossed, fill.tid) == ("A", True, 529138325283768)
    assert fill.twap_id is None and fill.cloid is None


def test_given_node_fills_pair_on_two_lines_when_decoded_then_paired_across_lines() -> None:
    user, ask = orjson.loads(samples.NODE_FILL)
    bid = {
        **ask,
        "side": "B",
        "crossed": False,
        "oid": 1,
        "startPosition": "0.0",
        "dir": "Open Long",
    }
    buyer = "0x" + "12" * 20
    lines = [orjson.dumps([buyer, bid]), b"", orjson.dumps([user, ask])]
    out, counts = decode("node_fills", lines)
    (trade,) = out.trades
    assert (trade.buyer, trade.seller, trade.side) == (buyer, user, "A")
    assert counts.unpaired_fills == 0 and counts.lines == 3


def test_given_unpaired_fill_when_decoding_then_it_holds_the_resume_line_until_expired() -> None:
    user, ask = orjson.loads(samples.NODE_FILL)
    decoder = ArchiveDecoder("node_fills", pair_window=3)
    decoder.feed(LineChunk(1, [samples.NODE_FILL], 0))
    assert decoder.resume_line() == 0  # line 1 waits for its counterpart
    other = orjson.dumps([user, {**ask, "tid": 5}])
    decoder.feed(LineChunk(2, [other, other, other], 0))
    assert decoder.counts.unpaired_fills == 1  # line 1 given up after 3 lines
    assert decoder.counts.duplicate_fills == 2
    assert decoder.resume_line() == 1
    decoder.finish()
    assert decoder.counts.unpaired_fills == 2


# --- §3.4 node_trades ---------------------------------------------------------------------


def test_given_node_trades_lines_when_decoded_then_synthetic_tids_and_buyer_seller() -> None:
    out, _ = decode("node_trades", list(samples.NODE_TRADES))
    first, second = out.trades
    assert (first.coin, first.side, first.time) == ("@107", "B", 1750733796172)
    assert (first.buyer, first.seller) == (
        "0xb65117c1e1006e7b2413fa90e96fcbe3fa83ed75",
        "0x91853bcefbdc3447768413e6db7d6e0a81c4be56",
    )
    assert (str(first.px), str(first.sz)) == ("36.796", "15.0")
    assert second.hash == "0x" + "0" * 64 and second.side == "A"
    for trade in (first, second):
        assert SYNTHETIC_TID_BASE <= trade.tid < 2**63
    again, _ = decode("node_trades", list(samples.NODE_TRADES))
    assert [t.tid for t in again.trades] == [first.tid, second.tid]
    assert first.tid != second.tid


def test_given_node_trade_with_same_key_respelled_when_tid_derived_then_equal() -> None:
    obj = orjson.loads(samples.NODE_TRADES[0])
    respelled = orjson.dumps({**obj, "sz": "15.00", "time": obj["time"][:23]})  # ms only
    assert parse_node_trade(respelled).tid == parse_node_trade(samples.NODE_TRADES[0]).tid


# --- times --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2025-08-01T00:00:01.013207614", 1754006401013207614),
        ("2025-08-01T00:00:01", 1754006401000000000),
        ("2025-08-01T00:00:01Z", 1754006401000000000),
        ("2024-07-26T08:26:25.899", 1721982385899000000),
        ("2025-08-01T00:00:01.5", 1754006401500000000),
        ("2025-07-31T23:59:59.998117072", 1754006399998117072),
    ],
)
def test_given_iso_times_with_0_to_9_digits_when_parsed_then_exact_ns(text: str, ns: int) -> None:
    assert parse_iso_ns(text) == ns


@pytest.mark.parametrize(
    "text",
    [
        "2025-08-01T00:00:01.",
        "2025-08-01T00:00:01.0132076141",
        "2025-02-30T00:00:01",
        "2025-08-01T24:00:00",
        "2025-08-01T00:00:01+02:00",
        "2025-08-01",
        "\uff12\uff10\uff125-08-01T00:00:01",  # full-width digits
        "2025-08-01T00:00:0x",
    ],
)
def test_given_bad_iso_times_when_parsed_then_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_iso_ns(text)


def test_given_ns_when_formatted_then_round_trips() -> None:
    text = "2025-08-01T00:00:00.536482059"
    assert format_iso_ns(parse_iso_ns(text)) == text


# --- bad lines ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2, 3]", "block: expected an object"),
        (b'{"events": 5}', "events: expected a list"),
        (b'{"local_time": "x"}', "events: missing"),
    ],
)
def test_given_bad_block_lines_when_decoded_then_reported_with_line_number(line, reason) -> None:
    out, _ = decode("node_fills_by_block", [samples.FILLS_BY_BLOCK, line, samples.FILLS_BY_BLOCK])
    assert [(b.line, reason in b.reason) for b in out.bad] == [(2, True)]
    assert len(out.trades) == 2  # line 3 repeats line 1: the database keeps one


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"px": "abc"}, "px: not a decimal"),
        ({"px": 115725.0}, "px: expected a decimal string"),
        ({"px": "-1"}, "px: must be positive"),
        ({"sz": "NaN"}, "sz: not a finite decimal"),
        ({"side": "X"}, "side: expected 'B' or 'A'"),
        ({"tid": "601180746901427"}, "tid: expected an integer"),
        ({"crossed": "true"}, "crossed: expected a boolean"),
        ({"time": 10**18}, "time: out of range"),
        ({"coin": None}, "coin: expected a non-empty string"),
        # Bounds of storage: one such line must not fail its whole batch in the database.
        ({"coin": "C" * 41}, "coin: longer than 40 characters"),
        ({"tid": 2**63}, "tid: out of the 64-bit integer range"),
    ],
)
def test_given_one_bad_event_when_decoded_then_line_reported_and_other_events_kept(
    change, reason
) -> None:
    good = sample_events()
    other = [[u, {**f, "tid": 42}] for u, f in sample_events()]
    bad = [good[0][0], {**good[0][1], **change}]
    out, _ = decode("node_fills_by_block", [block_line([bad, good[1], *other])])
    assert len(out.bad) == 1 and out.bad[0].line == 1
    assert out.bad[0].reason.startswith("event 0: ") and reason in out.bad[0].reason
    assert [t.tid for t in out.trades] == [42]
    with pytest.raises(BadLine, match=reason.split(":")[0]):
        parse_fills_by_block(block_line([bad, good[1]]))


@pytest.mark.parametrize(
    ("user", "change", "reason"),
    [
        ("0x" + "a" * 41, {}, "user: longer than 42 characters"),
        (BUYER, {"hash": "0x" + "a" * 65}, "hash: longer than 66 characters"),
        (BUYER, {"oid": -(2**63) - 1}, "oid: out of the 64-bit integer range"),
        (BUYER, {"twapId": 2**64}, "twapId: out of the 64-bit integer range"),
        (BUYER, {"feeToken": "T" * 17}, "feeToken: longer than 16 characters"),
        (BUYER, {"dir": "D" * 33}, "dir: longer than 32 characters"),
    ],
)
def test_given_a_fill_field_storage_cannot_hold_when_parsed_then_refused_alone(
    user, change, reason
) -> None:
    fill = {**sample_events()[0][1], **change}
    with pytest.raises(BadLine, match=reason):
        fill_from_event([user, fill])


def test_given_tracked_fill_with_a_bad_fee_when_decoded_then_trade_kept_and_line_reported() -> None:
    events = sample_events()
    events[1][1]["fee"] = "not-a-fee"
    out, _ = decode("node_fills_by_block", [block_line(events)], wallets={SELLER})
    assert len(out.trades) == 1 and out.fills == []
    assert [b.reason for b in out.bad] == ["event 1: fee: not a decimal: 'not-a-fee'"]


def test_given_node_trade_missing_side_info_when_parsed_then_bad_line() -> None:
    obj = orjson.loads(samples.NODE_TRADES[0])
    del obj["side_info"][1]["oid"]
    with pytest.raises(BadLine, match=r"side_info\[1\]\.oid: missing"):
        parse_node_trade(orjson.dumps(obj))


# --- the two paths agree ------------------------------------------------------------------


def test_given_valid_lines_when_decoded_then_bulk_path_equals_typed_path() -> None:
    import random

    rng = random.Random(7)
    lines = []
    for number in range(200):
        events = []
        for _ in range(rng.randint(0, 4)):
            tid = rng.getrandbits(50) or 1
            base = {
                "coin": rng.choice(["BTC", "@107", "xyz:TSLA"]),
                "px": f"{rng.randint(1, 10**6)}.{rng.randint(0, 99)}",
                "sz": f"0.{rng.randint(1, 9999):04d}",
                "time": 1754006400000 + number,
                "startPosition": "0.0", "dir": "Open Long", "closedPnl": "0.0",
                "hash": "0x" + "0" * 64, "oid": rng.getrandbits(40), "fee": "0.01",
                "tid": tid, "feeToken": "USDC",
            }  # fmt: skip
            ask_crossed = rng.random() < 0.5
            events.append(
                [
                    f"0x{rng.getrandbits(160):040x}",
                    {**base, "side": "B", "crossed": not ask_crossed},
                ]
            )
            events.append(
                [f"0x{rng.getrandbits(160):040x}", {**base, "side": "A", "crossed": ask_crossed}]
            )
        lines.append(block_line(events, number))
    bulk, _ = decode("node_fills_by_block", lines)
    typed = []
    for line in lines:
        fills = parse_fills_by_block(line).fills
        for bid, ask in zip(fills[::2], fills[1::2], strict=True):
            typed.append(
                Trade(
                    ask.coin,
                    ask.time,
                    ask.tid,
                    ask.px,
                    ask.sz,
                    "A" if ask.crossed else "B",
                    ask.hash,
                    bid.user,
                    ask.user,
                )
            )
    assert bulk.trades == typed and len(typed) > 300


# --- formats ------------------------------------------------------------------------------


def test_given_paths_and_lines_when_recognised_then_formats_follow_the_prefix() -> None:
    assert format_from_path("x/node_fills_by_block/hourly/20250801/0.lz4") == "node_fills_by_block"
    assert format_from_path(Path("node_fills/hourly/20250727/8.lz4")) == "node_fills"
    assert format_from_path("archive/node_trades/hourly/20250522/23.lz4") == "node_trades"
    assert format_from_path("downloads/0.lz4") is None
    assert (
        archive_key("/data/hl/node_fills/hourly/20250727/8.lz4")
        == "node_fills/hourly/20250727/8.lz4"
    )
    assert format_from_line(samples.FILLS_BY_BLOCK) == "node_fills_by_block"
    assert format_from_line(samples.NODE_FILL) == "node_fills"
    assert format_from_line(samples.NODE_TRADES[0]) == "node_trades"
    assert format_from_line(b"garbage") is None


def test_given_hour_files_when_sorted_then_hours_are_integers_and_legacy_first() -> None:
    names = [
        "node_fills_by_block/hourly/20250727/10.lz4",
        "node_fills_by_block/hourly/20250727/9.lz4",
        "node_fills/hourly/20250727/8.lz4",
        "node_fills_by_block/hourly/20250727/8.lz4",
        "node_fills_by_block/hourly/20250726/23.lz4",
    ]
    assert sorted(names, key=sort_key) == [
        "node_fills/hourly/20250727/8.lz4",
        "node_fills_by_block/hourly/20250726/23.lz4",
        "node_fills_by_block/hourly/20250727/8.lz4",
        "node_fills_by_block/hourly/20250727/9.lz4",
        "node_fills_by_block/hourly/20250727/10.lz4",
    ]


def test_given_block_fills_out_of_order_when_decoded_then_paired_by_key() -> None:
    (buyer, bid), (seller, ask) = sample_events()
    other_bid, other_ask = {**bid, "tid": 9}, {**ask, "tid": 9}
    events = [[seller, ask], [buyer, other_bid], [buyer, bid], [seller, other_ask]]
    out, counts = decode("node_fills_by_block", [block_line(events)])
    assert sorted(t.tid for t in out.trades) == [9, TID]
    assert {(t.buyer, t.seller, t.side) for t in out.trades} == {(BUYER, SELLER, "B")}
    assert counts.fills == 4 and counts.unpaired_fills == 0


def _mutated_block(data) -> tuple[bytes, frozenset[str]]:
    """A block of B/A pairs, some of them spoiled the ways archive lines can be."""
    from hypothesis import strategies as st

    events = []
    wallets: set[str] = set()
    for index in range(data.draw(st.integers(0, 4))):
        tid = data.draw(st.integers(1, 2**53))
        base = {
            "coin": data.draw(st.sampled_from(["BTC", "@107", "xyz:TSLA"])),
            "px": data.draw(st.sampled_from(["115725.0", "0.00001", "1e3", "2"])),
            "sz": data.draw(st.sampled_from(["0.5", "0.00002", "3"])),
            "time": 1754006400000 + index, "startPosition": "0.0", "dir": "Open Long",
            "closedPnl": "0.0", "hash": "0x" + "ab" * 32, "oid": 7, "fee": "0.01", "tid": tid,
            "feeToken": "USDC",
        }  # fmt: skip
        buyer, seller = f"0x{index:040x}", f"0x{index + 100:040X}"
        bid = {**base, "side": "B", "crossed": True}
        ask = {**base, "side": "A", "crossed": False}
        spoil = data.draw(
            st.sampled_from(
                ["none", "none", "none", "swap", "px", "dust", "tid0", "type", "missing",
                 "track", "lone", "nan", "empty_user", "long_coin", "long_user", "big_tid"]
            )
        )  # fmt: skip
        pair = [[buyer, bid], [seller, ask]]
        if spoil == "swap":
            pair.reverse()
        elif spoil == "px":
            ask["px"] = "115726.0"
        elif spoil == "dust":
            bid["sz"] = ask["sz"] = "0"
        elif spoil == "tid0":
            bid["tid"] = ask["tid"] = 0
        elif spoil == "type":
            ask["time"] = "1754006400000"
        elif spoil == "missing":
            del bid["hash"]
        elif spoil == "track":
            wallets.add(seller.lower())
        elif spoil == "lone":
            pair.pop()
        elif spoil == "nan":
            bid["px"] = ask["px"] = "NaN"
        elif spoil == "empty_user":
            pair[0][0] = ""
        elif spoil == "long_coin":
            bid["coin"] = ask["coin"] = "C" * 41
        elif spoil == "long_user":
            pair[1][0] = "0x" + "a" * 41
        elif spoil == "big_tid":
            bid["tid"] = ask["tid"] = 2**63
        events += pair
    return block_line(events), frozenset(wallets)


def test_given_blocks_of_pairs_when_decoded_then_fast_path_equals_event_by_event() -> None:
    """The block-of-pairs fast path (msgspec) keeps a block only when it would give what
    the event-by-event path gives; any other block goes that path. Same output either way."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.data(), min_size=1, max_size=3))
    def check(draws) -> None:
        lines: list[bytes] = []
        wallets: set[str] = set()
        for data in draws:
            line, tracked = _mutated_block(data)
            lines.append(line)
            wallets |= tracked
        fast = ArchiveDecoder("node_fills_by_block", wallets)
        slow = ArchiveDecoder("node_fills_by_block", wallets)
        fast.feed(LineChunk(1, lines, 0))
        for number, line in enumerate(lines, 1):
            try:
                slow._mixed_block(line, number)
            except BadLine as exc:
                slow.out.bad.append(BadLineReport(number, str(exc)))
        for decoder in (fast, slow):
            decoder.finish()
        got, want = fast.take(), slow.take()
        assert got.trades == want.trades
        assert got.fills == want.fills
        assert got.bad == want.bad
        assert (fast.counts.fills, fast.counts.skipped_dust, fast.counts.unpaired_fills) == (
            slow.counts.fills,
            slow.counts.skipped_dust,
            slow.counts.unpaired_fills,
        )

    check()
