"""Parsing every channel with the reference's exact frames, and the rejections."""

from __future__ import annotations

import json
from decimal import Decimal

import orjson
import pytest

from events import AssetContext, Fill, Mid, Position, Trade
from runtime.hyperliquid.protocol import (
    BAD_DATA,
    BAD_EVENT,
    NO_CHANNEL,
    NOT_JSON,
    NOT_OBJECT,
    channel_label,
    parse_frame,
)
from tests.unit.ingester import frames

NOW = 1_787_052_700_000


def test_trades_frame_gives_typed_trades_with_buyer_and_seller() -> None:
    # Given the reference's two-trade sweep / When parsed
    pf = parse_frame(frames.TRADES, NOW)
    # Then both trades come out with Decimals, the shared hash, distinct tids
    assert pf.kind == "data" and pf.channel == "trades" and pf.malformed is None
    assert pf.stream_key == "ETH"
    first, second = pf.events
    assert isinstance(first, Trade)
    assert first == Trade(
        coin="ETH", time=1787052617384, tid=871204556310942, px=Decimal("4321.7"),
        sz=Decimal("0.8421"), side="B",
        hash="0x3c1f9a0d7e55b21c48a6f0e9d2b7c3a41f0e8d6c5b4a39281706f5e4d3c2b1a0",
        buyer="0x5b2e9c0d4a1f8e7b6c3d2a1908f7e6d5c4b3a291",
        seller="0x0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b",
    )  # fmt: skip
    assert second.tid == 318850271946675 and second.hash == first.hash  # type: ignore[union-attr]


def test_trade_without_users_is_accepted_with_unknown_counterparties() -> None:
    # Given an older-schema trade without `users`
    trade = {"coin": "BTC", "side": "A", "px": "1", "sz": "2", "time": 5, "hash": "0x0", "tid": 7}
    # When parsed / Then buyer and seller are None, not an error
    pf = parse_frame(orjson.dumps({"channel": "trades", "data": [trade]}), NOW)
    assert pf.malformed is None
    assert pf.events[0].buyer is None and pf.events[0].seller is None  # type: ignore[union-attr]


def test_empty_trades_frame_is_valid_and_empty() -> None:
    pf = parse_frame(b'{"channel":"trades","data":[]}', NOW)
    assert pf.kind == "data" and pf.events == [] and pf.malformed is None


def test_all_mids_gives_one_mid_per_coin_stamped_with_receive_time() -> None:
    pf = parse_frame(frames.ALL_MIDS, NOW)
    assert pf.kind == "data" and len(pf.events) == 7
    assert pf.events[0] == Mid("BTC", NOW, Decimal("117342.5"))
    assert {m.coin for m in pf.events} >= {"@107", "PURR/USDC", "#12090", "kPEPE"}


def test_all_mids_of_a_builder_dex_keeps_prefixed_names() -> None:
    pf = parse_frame(frames.ALL_MIDS_DEX, NOW)
    assert [m.coin for m in pf.events] == ["xyz:TSLA", "xyz:NVDA", "xyz:GOLD"]


def test_active_asset_ctx_gives_asset_context_at_receive_time() -> None:
    pf = parse_frame(frames.ASSET_CTX, NOW)
    assert pf.events == [
        AssetContext(
            coin="BTC", time=NOW, funding=Decimal("0.0000125"), open_interest=Decimal("31877.40218"),
            mark_px=Decimal("117340.0"), oracle_px=Decimal("117371.0"), mid_px=Decimal("117342.5"),
            premium=Decimal("-0.0002874113"), day_ntl_vlm=Decimal("3874512093.4471208"),
            prev_day_px=Decimal("115980.0"),
        )
    ]  # fmt: skip
    assert pf.stream_key == "BTC"


def test_null_mid_and_premium_are_unknown_not_zero() -> None:
    ctx = orjson.loads(frames.ASSET_CTX)
    ctx["data"]["ctx"].update(midPx=None, premium=None)
    (event,) = parse_frame(orjson.dumps(ctx), NOW).events
    assert event.mid_px is None and event.premium is None  # type: ignore[union-attr]


def test_spot_context_is_ignored_but_not_malformed() -> None:
    pf = parse_frame(frames.SPOT_CTX, NOW)
    assert pf.kind == "ignored" and pf.channel == "activeSpotAssetCtx" and pf.malformed is None


def test_clearinghouse_state_gives_positions_at_the_state_time() -> None:
    pf = parse_frame(frames.CLEARINGHOUSE, NOW)
    user = "0x5b2e9c0d4a1f8e7b6c3d2a1908f7e6d5c4b3a291"
    assert pf.kind == "data" and pf.stream_key == user and pf.time_ms == 1787052702115
    eth, sol = pf.events
    assert eth == Position(
        user=user, coin="ETH", time=1787052702115, szi=Decimal("0.3421"),
        entry_px=Decimal("4316.58"), position_value=Decimal("1478.4806"),
        unrealized_pnl=Decimal("1.785762"), return_on_equity=Decimal("0.0120928"),
        liquidation_px=None, leverage_type="cross", leverage_value=10,
        margin_used=Decimal("147.84806"),
    )  # fmt: skip
    assert sol.szi == Decimal("-19.45") and sol.leverage_type == "isolated"  # type: ignore[union-attr]
    assert sol.liquidation_px == Decimal("199.4718")  # type: ignore[union-attr]


def test_user_fills_snapshot_is_flagged_and_update_is_not() -> None:
    snap = parse_frame(frames.USER_FILLS_SNAPSHOT, NOW)
    update = parse_frame(frames.USER_FILLS_UPDATE, NOW)
    assert snap.is_snapshot is True and len(snap.events) == 2
    assert update.is_snapshot is False and len(update.events) == 1
    fill = snap.events[0]
    assert isinstance(fill, Fill)
    assert fill.user == "0x5b2e9c0d4a1f8e7b6c3d2a1908f7e6d5c4b3a291"
    assert (fill.tid, fill.oid, fill.crossed, fill.fee) == (
        871204556310942, 402918337451, True, Decimal("1.637713"),
    )  # fmt: skip
    assert fill.dir == "Short > Long" and fill.start_position == Decimal("-0.5")


def _liquidation_frame(liquidation: object) -> bytes:
    fill = {
        "coin": "SOL", "px": "180.1", "sz": "12.5", "side": "A", "time": 1787052701954,
        "startPosition": "12.5", "dir": "Close Long", "closedPnl": "-80.0",
        "hash": "0x" + "1a" * 32, "oid": 402920114872, "crossed": True, "fee": "0.9",
        "tid": 1002339875512364, "feeToken": "USDC", "liquidation": liquidation,
    }  # fmt: skip
    user = "0x5B2E9C0D4A1F8E7B6C3D2A1908F7E6D5C4B3A291"
    return orjson.dumps({"channel": "userFills", "data": {"user": user, "fills": [fill]}})


def test_a_liquidation_fill_keeps_its_method_liquidated_user_and_mark() -> None:
    # Given a userFills update whose fill carries the wire's liquidation object (markPx a
    # string, the liquidated user in mixed case)
    pf = parse_frame(
        _liquidation_frame(
            {"liquidatedUser": "0x5B2E9C0D4A1F8E7B6C3D2A1908F7E6D5C4B3A291",
             "markPx": "180.05", "method": "market"}
        ),
        NOW,
    )  # fmt: skip
    # Then the fill says it was a liquidation, of whom, at which mark
    [fill] = pf.events
    assert isinstance(fill, Fill) and pf.malformed is None
    assert (fill.liquidation, fill.liquidated_user, fill.liquidation_mark_px) == (
        "market", "0x5b2e9c0d4a1f8e7b6c3d2a1908f7e6d5c4b3a291", Decimal("180.05"),
    )  # fmt: skip
    # and a fill without the object (or with null) is no liquidation
    plain = parse_frame(frames.USER_FILLS_UPDATE, NOW).events[0]
    null = parse_frame(_liquidation_frame(None), NOW).events[0]
    for other in (plain, null):
        assert isinstance(other, Fill)
        assert (other.liquidation, other.liquidated_user, other.liquidation_mark_px) == (
            None, None, None,
        )  # fmt: skip


def test_a_liquidation_as_the_docs_type_it_and_a_malformed_one() -> None:
    # The docs type markPx as a number: taken at its shortest repr; no liquidatedUser and
    # no method are allowed (the object alone marks a liquidation)
    [fill] = parse_frame(_liquidation_frame({"markPx": 180.05}), NOW).events
    assert isinstance(fill, Fill)
    assert (fill.liquidation, fill.liquidated_user, fill.liquidation_mark_px) == (
        "unknown", None, Decimal("180.05"),
    )  # fmt: skip
    # A liquidation that is not an object rejects the fill, named, like any bad field
    bad = parse_frame(_liquidation_frame("yes"), NOW)
    assert bad.events == [] and bad.rejected == 1


def test_subscription_ack_carries_the_normalised_echo() -> None:
    pf = parse_frame(frames.ACK_L2, NOW)
    assert pf.kind == "ack" and pf.ack_method == "subscribe"
    assert pf.ack == {
        "type": "l2Book",
        "coin": "BTC",
        "nSigFigs": None,
        "mantissa": None,
        "fast": False,
    }


def test_error_frame_is_a_string_and_not_malformed() -> None:
    pf = parse_frame(frames.ERROR_ALREADY, NOW)
    assert pf.kind == "error" and pf.malformed is None
    assert pf.error is not None and pf.error.startswith('Already subscribed: {"type":"l2Book"')


def test_pong_and_greeting() -> None:
    assert parse_frame(frames.PONG, NOW).kind == "pong"
    greeting = parse_frame(frames.GREETING, NOW)
    assert greeting.kind == "ignored" and greeting.malformed is None


def test_str_input_parses_like_bytes() -> None:
    assert parse_frame(frames.TRADES.decode(), NOW).events == parse_frame(frames.TRADES, NOW).events


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"hello", NOT_JSON),
        (b"[1,2]", NOT_OBJECT),
        (b'{"data":[]}', NO_CHANNEL),
        (b'{"channel":"trades","data":{}}', BAD_DATA),
        (b'{"channel":"allMids","data":{"mid":{}}}', BAD_DATA),
        (b'{"channel":"activeAssetCtx","data":{"coin":"BTC"}}', BAD_DATA),
        (b'{"channel":"userFills","data":{"fills":[]}}', BAD_DATA),
        (
            b'{"channel":"clearinghouseState","data":{"user":"0xab","clearinghouseState":{}}}',
            BAD_DATA,
        ),
        (b'{"channel":"subscriptionResponse","data":"x"}', BAD_DATA),
    ],
)
def test_malformed_frames_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    pf = parse_frame(raw, NOW)
    assert pf.kind == "malformed" and pf.malformed == reason and pf.events == []
    assert "frame:" in pf.detail


@pytest.mark.parametrize(
    "bad",
    [
        {"px": 4321.7},  # a float has already lost digits
        {"px": "NaN"},
        {"px": "abc"},
        {"side": "S"},
        {"tid": True},
        {"time": -1},
        {"coin": ""},
        {"hash": None},
    ],
)
def test_one_bad_trade_is_rejected_and_its_neighbours_kept(bad: dict[str, object]) -> None:
    # Given a frame whose first trade has one bad field
    frame = orjson.loads(frames.TRADES)
    frame["data"][0].update(bad)
    # When parsed
    pf = parse_frame(orjson.dumps(frame), NOW)
    # Then the frame is flagged, one element rejected, the good one kept
    assert pf.malformed == BAD_EVENT and pf.rejected == 1
    assert [t.tid for t in pf.events] == [318850271946675]  # type: ignore[union-attr]


def test_unknown_channels_are_ignored_with_a_bounded_label() -> None:
    pf = parse_frame(b'{"channel":"l2Book","data":{}}', NOW)
    assert pf.kind == "ignored" and pf.malformed is None
    assert channel_label(pf.channel) == "other"
    assert channel_label("trades") == "trades" and channel_label("") == "unknown"


def test_given_elements_storage_cannot_hold_when_parsed_then_only_they_are_rejected() -> None:
    # Given one trades frame mixing good trades with values no column can hold
    good = {
        "coin": "ETH",
        "side": "B",
        "px": "4321.7",
        "sz": "1",
        "time": 1787052617384,
        "tid": 1,
        "hash": "0xab",
    }
    bad = [
        {**good, "tid": 2**64},
        {**good, "px": "1e999999"},
        {**good, "coin": "X" * 41},
        {**good, "coin": "ET\x00H"},
        {**good, "hash": "0x" + "a" * 100},
        {**good, "time": 2**62},
    ]
    frame = json.dumps({"channel": "trades", "data": [good, *bad, {**good, "tid": 3}]})
    # When it is parsed
    parsed = parse_frame(frame, 1787052617400)
    # Then the good trades survive and each bad element is refused alone
    assert [e.tid for e in parsed.events if isinstance(e, Trade)] == [1, 3]
    assert len(parsed.events) == 2
