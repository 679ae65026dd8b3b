"""Frame text → :class:`ParsedFrame`: pure and total over any input.

Contract: :func:`parse_frame` never raises and does no I/O. Whatever arrives (non-JSON
text, JSON of the wrong shape, a good frame with some bad elements) comes back as a
``ParsedFrame`` whose ``malformed`` names a reason from the small fixed set below (it is a
metric label) and whose ``detail`` carries a short sample for the log. Good elements of a
partly bad frame are kept: one broken trade must not cost its neighbours.

Routing follows ``hyperliquid-api.md`` §1.3: ``channel`` first, then the keys of ``data``.
Frames without a time of their own (``allMids``, ``activeAssetCtx``) are stamped with
``received_ms``. The spot context channel is recognised and ignored (not malformed).

``trades`` frames — nearly all the volume — first try a fast path (:func:`_fast_trades`):
msgspec decodes the frame straight into typed structs of the fields a trade takes (types,
lengths and ranges checked in C, no dict per trade), as the archive import does. A frame
it refuses, or one with anything unusual in it (a NUL, a number out of range, ``users`` of
another shape), goes the general path below, which decides and says what is wrong; a
property-based test holds the two equal (tests/unit/ingester/test_protocol_fast.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Annotated, Any, Final, Literal

import msgspec
import orjson

from events import MAX_TIME_MS, Event, Trade
from runtime.hyperliquid import decoders
from runtime.hyperliquid.decoders import MAX_ADDRESS, MAX_COIN, MAX_EXPONENT, MAX_HASH, MAX_INT

FrameKind = Literal["data", "pong", "ack", "error", "post", "ignored", "malformed"]

# Reasons double as Prometheus label values, so the set is closed.
NOT_JSON: Final = "not_json"
NOT_OBJECT: Final = "not_object"
NO_CHANNEL: Final = "no_channel"
BAD_DATA: Final = "bad_data"
BAD_EVENT: Final = "bad_event"
PARSER_ERROR: Final = "parser_error"

KNOWN_CHANNELS: Final = frozenset(
    {
        "trades",
        "allMids",
        "activeAssetCtx",
        "activeSpotAssetCtx",
        "clearinghouseState",
        "userFills",
        "subscriptionResponse",
        "pong",
        "error",
        "post",
    }
)
_GREETING: Final = b"Websocket connection established."
_BAD: Final = (KeyError, TypeError, ValueError, ArithmeticError, AttributeError, IndexError)
_SAMPLE: Final = 160


@dataclass(slots=True)
class ParsedFrame:
    """What one frame said. ``stream_key`` is the coin or user the frame is about."""

    kind: FrameKind
    channel: str = ""
    events: list[Event] = field(default_factory=list)
    stream_key: str | None = None
    is_snapshot: bool = False
    ack: dict[str, Any] | None = None
    ack_method: str | None = None
    error: str | None = None
    post: Any = None
    malformed: str | None = None
    detail: str = ""
    rejected: int = 0
    time_ms: int | None = None


def channel_label(channel: str) -> str:
    """A bounded metric label for a wire channel name (the wire could send anything)."""
    return channel if channel in KNOWN_CHANNELS else ("unknown" if not channel else "other")


def parse_frame(raw: str | bytes, received_ms: int) -> ParsedFrame:
    """Parse one WebSocket text frame. Never raises."""
    try:
        return _parse(raw, received_ms)
    except Exception as exc:  # the safety net that makes the function total
        return _malformed(PARSER_ERROR, f"{type(exc).__name__}: {exc}", raw)


def _sample(raw: str | bytes) -> str:
    text = raw if isinstance(raw, str) else raw[:_SAMPLE].decode("utf-8", "replace")
    return text[:_SAMPLE]


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _malformed(reason: str, why: str, raw: str | bytes, channel: str = "") -> ParsedFrame:
    detail = f"{why}; frame: {_sample(raw)!r}"
    return ParsedFrame("malformed", channel, malformed=reason, detail=detail)


class _WireTrade(msgspec.Struct, gc=False):
    """A ``trades`` element as the fast path takes it (other fields are skipped)."""

    coin: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_COIN)]
    side: Literal["B", "A"]
    px: str
    sz: str
    time: Annotated[int, msgspec.Meta(ge=0, le=MAX_TIME_MS)]
    tid: Annotated[int, msgspec.Meta(ge=0, le=MAX_INT)]
    hash: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_HASH)]
    users: list[str] | None = None


class _WireTrades(msgspec.Struct, gc=False):
    channel: str
    data: list[_WireTrade]


_decode_trades: Final = msgspec.json.Decoder(_WireTrades).decode
_make_trade: Final = partial(tuple.__new__, Trade)  # Trade(*fields) without a Python frame
_TRADES_HEAD: Final = b'{"channel":"trades"'
_TRADES_HEAD_STR: Final = _TRADES_HEAD.decode()


class _Unusual(Exception):
    """The fast path leaves this frame to the general one."""


def _fast_trades(raw: str | bytes) -> ParsedFrame | None:
    """A well-formed ``trades`` frame as the general path parses it; None for anything else
    (module doc)."""
    try:
        frame = _decode_trades(raw)
        if frame.channel != "trades":
            return None
        events: list[Event] = []
        append = events.append
        for w in frame.data:
            coin, hash_ = w.coin, w.hash
            if "\x00" in coin or "\x00" in hash_:
                raise _Unusual
            price, size = Decimal(w.px), Decimal(w.sz)
            if not (
                price.is_finite()
                and size.is_finite()
                and -MAX_EXPONENT <= price.adjusted() <= MAX_EXPONENT
                and -MAX_EXPONENT <= size.adjusted() <= MAX_EXPONENT
            ):
                raise _Unusual
            users = w.users
            if (
                users is not None
                and len(users) == 2
                and len(users[0]) <= MAX_ADDRESS
                and len(users[1]) <= MAX_ADDRESS
            ):
                buyer, seller = users
                append(
                    _make_trade((coin, w.time, w.tid, price, size, w.side, hash_, buyer, seller))
                )
            else:
                append(_make_trade((coin, w.time, w.tid, price, size, w.side, hash_, None, None)))
    except (msgspec.MsgspecError, _Unusual, ArithmeticError, ValueError):
        return None
    out = ParsedFrame("data", "trades", events)
    if events:
        out.stream_key = events[0].coin
    return out


def _parse(raw: str | bytes, received_ms: int) -> ParsedFrame:
    head = _TRADES_HEAD if type(raw) is bytes else _TRADES_HEAD_STR
    if raw.startswith(head):  # type: ignore[arg-type]
        fast = _fast_trades(raw)
        if fast is not None:
            return fast
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
        if body.strip() == _GREETING:
            return ParsedFrame("ignored", "")
        return _malformed(NOT_JSON, "not JSON", raw)
    if type(msg) is not dict:
        return _malformed(NOT_OBJECT, f"JSON {type(msg).__name__}, not an object", raw)
    channel = msg.get("channel")
    if type(channel) is not str or not channel:
        return _malformed(NO_CHANNEL, "no channel", raw)
    handler = _HANDLERS.get(channel)
    if handler is None:
        return ParsedFrame("ignored", channel)
    return handler(msg, received_ms, raw)


def _trades(msg: dict[str, Any], received_ms: int, raw: str | bytes) -> ParsedFrame:
    data = msg.get("data")
    if type(data) is not list:
        return _malformed(BAD_DATA, "trades data is not a list", raw, "trades")
    events: list[Event] = []
    out = ParsedFrame("data", "trades", events)
    trade = decoders.trade
    for item in data:
        try:
            events.append(trade(item))
        except _BAD as exc:
            _reject(out, exc, item)
    if events:
        out.stream_key = events[0].coin
    return out


def _reject(out: ParsedFrame, exc: BaseException, item: Any) -> None:
    out.rejected += 1
    if out.malformed is None:
        out.malformed = BAD_EVENT
        sample = str(item)[:_SAMPLE]
        out.detail = f"{out.channel} element rejected ({_why(exc)}); element: {sample!r}"


def _all_mids(msg: dict[str, Any], received_ms: int, raw: str | bytes) -> ParsedFrame:
    data = msg.get("data")
    mids = data.get("mids") if type(data) is dict else None
    if type(mids) is not dict:
        return _malformed(BAD_DATA, "allMids data has no mids object", raw, "allMids")
    out = ParsedFrame("data", "allMids")
    for coin, px in mids.items():
        try:
            out.events.append(decoders.mid(coin, px, received_ms))
        except _BAD as exc:
            _reject(out, exc, {coin: px})
    return out


def _asset_ctx(msg: dict[str, Any], received_ms: int, raw: str | bytes) -> ParsedFrame:
    data = msg.get("data")
    try:
        event = decoders.asset_context(data["coin"], data["ctx"], received_ms)  # type: ignore[index]
    except _BAD as exc:
        return _malformed(BAD_DATA, _why(exc), raw, "activeAssetCtx")
    return ParsedFrame("data", "activeAssetCtx", [event], stream_key=event.coin)


def _spot_ctx(msg: dict[str, Any], received_ms: int, raw: str | bytes) -> ParsedFrame:
    # Spot contexts have no funding/OI/oracle: not an AssetContext. Counted, not stored.
    return ParsedFrame("ignored", "activeSpotAssetCtx")


def _clearinghouse(msg: dict[str, Any], received_ms: int, raw: str | bytes) -> ParsedFrame:
    data = msg.get("data")
    try:
        user = decoders.user_address(data["user"])  # type: ignore[index]
        state = data["clearinghouseState"]  # type: ignore[index]
    except _BAD as exc:
        return _malformed(BAD_DATA, _why(exc), raw, "clearinghouseState")
    return parse_clearinghouse_state(user, state, raw, "clearinghouseState")


def parse_clearinghouse_state(
    user: str, state: Any, raw: str | bytes = b"", channel: str = ""
) -> ParsedFrame:
    """The inner clearinghouse object (WS push or REST reply) → one Position per asset."""
    try:
        time_ms = decoders.nat(state["time"])
        entries = state["assetPositions"]
        if type(entries) is not list:
            raise TypeError("assetPositions is not a list")
    except _BAD as exc:
        return _malformed(BAD_DATA, f"clearinghouse state: {_why(exc)}", raw, channel)
    out = ParsedFrame("data", channel, stream_key=user, time_ms=time_ms)
    for entry in entries:
        try:
            out.events.append(decoders.position(user, time_ms, entry))
        except _BAD as exc:
            _reject(out, exc, entry)
    return out


def _user_fills(msg: dict[str, Any], received_ms: int, raw: str | bytes) -> ParsedFrame:
    data = msg.get("data")
    try:
        user = decoders.user_address(data["user"])  # type: ignore[index]
        fills = data["fills"]  # type: ignore[index]
        if type(fills) is not list:
            raise TypeError("fills is not a list")
    except _BAD as exc:
        return _malformed(BAD_DATA, _why(exc), raw, "userFills")
    snapshot = data.get("isSnapshot") is True  # type: ignore[union-attr]
    out = ParsedFrame("data", "userFills", stream_key=user, is_snapshot=snapshot)
    for item in fills:
        try:
            out.events.append(decoders.fill(user, item))
        except _BAD as exc:
            _reject(out, exc, item)
    return out


def _subscription_response(msg: dict[str, Any], received_ms: int, raw: str | bytes) -> ParsedFrame:
    data = msg.get("data")
    sub = data.get("subscription") if type(data) is dict else None
    method = data.get("method") if type(data) is dict else None
    if type(sub) is not dict or type(method) is not str:
        why = "subscriptionResponse without subscription"
        return _malformed(BAD_DATA, why, raw, "subscriptionResponse")
    return ParsedFrame("ack", "subscriptionResponse", ack=sub, ack_method=method)


def _pong(msg: dict[str, Any], received_ms: int, raw: str | bytes) -> ParsedFrame:
    return ParsedFrame("pong", "pong")


def _error(msg: dict[str, Any], received_ms: int, raw: str | bytes) -> ParsedFrame:
    # The exchange sends a plain string; anything else is still an error worth surfacing.
    data = msg.get("data")
    message = data if type(data) is str else orjson.dumps(data).decode()
    return ParsedFrame("error", "error", error=message[:1000])


def _post(msg: dict[str, Any], received_ms: int, raw: str | bytes) -> ParsedFrame:
    return ParsedFrame("post", "post", post=msg.get("data"))


_HANDLERS: Final = {
    "trades": _trades,
    "allMids": _all_mids,
    "activeAssetCtx": _asset_ctx,
    "activeSpotAssetCtx": _spot_ctx,
    "clearinghouseState": _clearinghouse,
    "userFills": _user_fills,
    "subscriptionResponse": _subscription_response,
    "pong": _pong,
    "error": _error,
    "post": _post,
}
