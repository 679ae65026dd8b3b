"""Client request parsing: the exchange's grammar, normalised echoes, silent-close cases."""

from __future__ import annotations

import orjson
import pytest

from workers.simulator.protocol import (
    ParseError,
    Ping,
    Post,
    SilentClose,
    Subscribe,
    Unsubscribe,
    ack,
    already_subscribed,
    parse_request,
)
from workers.simulator.universe import Universe

U = Universe.build(["BTC", "ETH", "kPEPE"], ["MATIC"])
USER = "0x5B2E9C0D4A1F8E7B6C3D2A1908F7E6D5C4B3A291"


def sub(subscription: object, method: str = "subscribe") -> str:
    return orjson.dumps({"method": method, "subscription": subscription}).decode()


def test_ping() -> None:
    assert isinstance(parse_request('{"method":"ping"}', U), Ping)


@pytest.mark.parametrize(
    ("subscription", "echo"),
    [
        ({"type": "trades", "coin": "BTC"}, {"type": "trades", "coin": "BTC"}),
        ({"type": "activeAssetCtx", "coin": "kPEPE"}, {"type": "activeAssetCtx", "coin": "kPEPE"}),
        ({"type": "allMids"}, {"type": "allMids"}),
        ({"type": "allMids", "dex": ""}, {"type": "allMids", "dex": ""}),
        (
            {"type": "clearinghouseState", "user": USER},
            {"type": "clearinghouseState", "user": USER.lower(), "dex": ""},
        ),
        (
            {"type": "userFills", "user": USER},
            {"type": "userFills", "user": USER.lower(), "aggregateByTime": False},
        ),
        (
            {"type": "userFills", "user": USER, "aggregateByTime": True},
            {"type": "userFills", "user": USER.lower(), "aggregateByTime": True},
        ),
    ],
)
def test_subscribe_is_normalised(subscription: dict, echo: dict) -> None:
    # Given a valid subscribe frame, When parsed, Then the echo fills defaults and lowercases users
    request = parse_request(sub(subscription), U)
    assert isinstance(request, Subscribe)
    assert request.subscription.echo == echo
    assert request.subscription.key == orjson.dumps(echo).decode()


def test_ack_echo_wire_shape() -> None:
    request = parse_request(sub({"type": "trades", "coin": "ETH"}), U)
    assert isinstance(request, Subscribe)
    assert ack("subscribe", request.subscription) == (
        b'{"channel":"subscriptionResponse","data":{"method":"subscribe",'
        b'"subscription":{"type":"trades","coin":"ETH"}}}'
    )
    assert already_subscribed(request.subscription) == (
        b'{"channel":"error","data":"Already subscribed: {\\"type\\":\\"trades\\",\\"coin\\":\\"ETH\\"}"}'
    )


def test_delisted_coin_is_a_normal_subscription() -> None:
    assert isinstance(parse_request(sub({"type": "trades", "coin": "MATIC"}), U), Subscribe)


@pytest.mark.parametrize("coin", ["NOPE", "btc", "Btc", "KPEPE", "xyz:BTC"])
def test_unknown_or_miscased_coin_is_a_silent_close(coin: str) -> None:
    assert isinstance(parse_request(sub({"type": "trades", "coin": coin}), U), SilentClose)
    assert isinstance(parse_request(sub({"type": "activeAssetCtx", "coin": coin}), U), SilentClose)


def test_unknown_dex_is_a_silent_close() -> None:
    assert isinstance(parse_request(sub({"type": "allMids", "dex": "xyz"}), U), SilentClose)


def test_unsubscribe_of_unknown_coin_is_only_a_parse_error() -> None:
    assert isinstance(
        parse_request(sub({"type": "trades", "coin": "NOPE"}, "unsubscribe"), U), ParseError
    )


def test_unsubscribe() -> None:
    request = parse_request(sub({"type": "trades", "coin": "BTC"}, "unsubscribe"), U)
    assert isinstance(request, Unsubscribe) and request.subscription.topic == "trades:BTC"


@pytest.mark.parametrize(
    "frame",
    [
        "hello",
        "",
        "[1,2]",
        '{"method":"subscribe"}',
        '{"method":"subscribe","subscription":{"type":"trades","coin":["BTC","ETH"]}}',
        '{"method":"subscribe","subscription":{"type":"trades"}}',
        '{"method":"subscribe","subscription":{"type":"nope","coin":"BTC"}}',
        '{"method":"subscribe","subscription":{"type":"l2Book","coin":"BTC"}}',
        '{"method":"subscribe","subscription":{"type":"userFills","user":"0x12"}}',
        '{"method":"subscribe","subscription":{"type":"userFills","user":"'
        + USER
        + '","aggregateByTime":"yes"}}',
        '{"method":"shout"}',
        '{"method":"post","request":{"type":"info","payload":{"type":"meta"}}}',
        '{"method":"post","id":"7","request":{"type":"info","payload":{"type":"meta"}}}',
        '{"method":"subscribe","subscription":{"type":"trades","coin":1}}',
    ],
)
def test_parse_errors_quote_the_frame(frame: str) -> None:
    request = parse_request(frame, U)
    assert isinstance(request, ParseError)
    assert request.message == "Error parsing JSON into valid websocket request: " + frame


def test_bytes_frames_are_accepted() -> None:
    assert isinstance(parse_request(b'{"method":"ping"}', U), Ping)
    bad = parse_request(b"\xff\xfe", U)
    assert isinstance(bad, ParseError)


def test_post_info() -> None:
    request = parse_request(
        '{"method":"post","id":3,"request":{"type":"info","payload":{"type":"meta"}}}', U
    )
    assert request == Post(3, "info", {"type": "meta"})
