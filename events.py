"""Typed market events and the batch wire format shared by the ingester and the workers.

The ingester turns frames into these events; a batch of one kind travels as one Celery task
message; the worker turns it back into events and hands them to a repository. Numbers that
are money, sizes or rates are ``Decimal`` here and strings on the wire (exactly as
Hyperliquid sends them), times are integer milliseconds since the epoch.

Wire form of a batch (the single positional argument of every ingest task)::

    {"v": 2, "kind": "trades", "source": "<ingester id>", "seq": 17, "events": [...]}

Events are objects keyed by field name, except trades from version 2 on: each trade is an
array of its fields in ``Trade._fields`` order. Trades are nearly all the volume, and
without the keys a batch is a fifth smaller — bytes that Redis stores, the worker's main
process receives and hands to its pool child, and both parse. Workers read version 1
(trades as objects) too, so batches queued by an older ingester still run after an
upgrade.

``decode_batch`` is total: anything that is not a well-formed batch raises
:class:`MalformedPayload` with the reason, which tasks record and never retry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final, ForwardRef, Literal, NamedTuple

import orjson

WIRE_VERSION: Final = 2
READABLE_VERSIONS: Final = (1, 2)

# Content type of the ingester's task messages. Their bodies are plain JSON — strings,
# numbers, lists, objects, never kombu's {"__type__": …} markers — so workers decode them
# with orjson, two to three times faster than kombu's json with its per-object hook.
# Celery's main process decodes every body (to tell protocol 1 from 2) and the pool child
# decodes it again; the batch inside is JSON text the task parses once (batch_argument).
BATCH_CONTENT_TYPE: Final = "application/x-hyperwatch-batch+json"

Side = Literal["B", "A"]


class MalformedPayload(ValueError):
    """A batch or event that can never be processed; the reason is the message."""


class Trade(NamedTuple):
    """A public trade. Unique on (coin, time, tid); ``hash`` is shared by a whole taker sweep.

    A NamedTuple, not a frozen dataclass like the other events: trades are nearly all the
    volume, made once in the ingester and once in the worker, and a NamedTuple costs about
    a third of a frozen dataclass, which sets every field through ``object.__setattr__``
    (0.7 vs 1.8 to 3.2 µs measured). It is just as immutable.
    """

    coin: str
    time: int
    tid: int
    px: Decimal
    sz: Decimal
    side: Side
    hash: str
    buyer: str | None = None
    seller: str | None = None


@dataclass(frozen=True, slots=True)
class AssetContext:
    """A perp's context at ``time`` (the ingester's receive time: the frame carries none)."""

    coin: str
    time: int
    funding: Decimal
    open_interest: Decimal
    mark_px: Decimal
    oracle_px: Decimal
    mid_px: Decimal | None
    premium: Decimal | None
    day_ntl_vlm: Decimal
    prev_day_px: Decimal


@dataclass(frozen=True, slots=True)
class Mid:
    """One coin's mid price from an ``allMids`` push, stamped with the receive time."""

    coin: str
    time: int
    px: Decimal


@dataclass(frozen=True, slots=True)
class Position:
    """One tracked wallet's position in one coin at ``time``. A flat position has szi 0."""

    user: str
    coin: str
    time: int
    szi: Decimal
    entry_px: Decimal | None
    position_value: Decimal
    unrealized_pnl: Decimal
    return_on_equity: Decimal
    liquidation_px: Decimal | None
    leverage_type: str
    leverage_value: int
    margin_used: Decimal


@dataclass(frozen=True, slots=True)
class Fill:
    """One of a tracked wallet's fills. Unique per user on ``tid``."""

    user: str
    coin: str
    time: int
    tid: int
    oid: int
    px: Decimal
    sz: Decimal
    side: Side
    dir: str
    start_position: Decimal
    closed_pnl: Decimal
    fee: Decimal
    fee_token: str
    crossed: bool
    hash: str
    # A liquidation fill (reference §2.7 ``liquidation``): the method ("market", "backstop"),
    # whose position was liquidated (the wire may leave it out) and the mark price then.
    # None on every other fill, and on batches from before these fields existed.
    liquidation: str | None = None
    liquidated_user: str | None = None
    liquidation_mark_px: Decimal | None = None


Event = Trade | AssetContext | Mid | Position | Fill

EventKind = Literal["trades", "asset_contexts", "mids", "positions", "fills"]

KIND_OF: Final[dict[type, EventKind]] = {
    Trade: "trades",
    AssetContext: "asset_contexts",
    Mid: "mids",
    Position: "positions",
    Fill: "fills",
}
TYPE_OF: Final[dict[str, type]] = {kind: cls for cls, kind in KIND_OF.items()}


# --- field codecs -------------------------------------------------------------------------


def _dec(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedPayload(f"expected a decimal string, got {type(value).__name__}")
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise MalformedPayload(f"not a decimal: {str(value)[:40]!r}") from None
    if not d.is_finite():
        raise MalformedPayload(f"not a finite decimal: {str(value)[:40]!r}")
    return d


def _opt_dec(value: Any) -> Decimal | None:
    return None if value is None else _dec(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedPayload(f"expected an integer, got {type(value).__name__}")
    return value


# Event times must fall on a calendar day: the worker files each row under its day (the
# day partition on PostgreSQL), and a time no date can hold is poison, not a crash.
MIN_TIME_MS: Final = -62_135_596_800_000  # 0001-01-01T00:00:00Z
MAX_TIME_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def _time(value: Any) -> int:
    ms = _int(value)
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        raise MalformedPayload("time out of range: not a date in the years 1 to 9999")
    return ms


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise MalformedPayload(f"expected a non-empty string, got {type(value).__name__}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _side(value: Any) -> str:
    if value not in ("B", "A"):
        raise MalformedPayload(f"side must be 'B' or 'A', got {str(value)[:10]!r}")
    return str(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise MalformedPayload(f"expected a boolean, got {type(value).__name__}")
    return value


_DECODERS: Final[dict[str, Callable[[Any], Any]]] = {
    "Decimal": _dec,
    "Decimal | None": _opt_dec,
    "int": _int,
    "str": _str,
    "str | None": _opt_str,
    "Side": _side,
    "bool": _bool,
}

_ENCODE_AS_STR: Final = {"Decimal", "Decimal | None"}


def _plan(cls: type) -> tuple[tuple[str, Callable[[Any], Any], bool], ...]:
    # Field types are strings under `from __future__ import annotations` (a NamedTuple
    # wraps them in ForwardRef), in definition order; map them once.
    def spelled(kind: Any) -> str:
        return kind.__forward_arg__ if isinstance(kind, ForwardRef) else str(kind)

    return tuple(
        (
            name,
            _time if name == "time" else _DECODERS[spelled(kind)],
            spelled(kind) in _ENCODE_AS_STR,
        )
        for name, kind in cls.__annotations__.items()
    )


_PLANS: Final = {cls: _plan(cls) for cls in KIND_OF}


def event_to_wire(event: Event) -> dict[str, Any]:
    """Event → JSON-ready dict; Decimals become their exact string form."""
    out: dict[str, Any] = {}
    for name, _decode, as_str in _PLANS[type(event)]:
        value = getattr(event, name)
        out[name] = str(value) if as_str and value is not None else value
    return out


def event_from_wire(cls: type[Event], data: Any) -> Event:
    """JSON dict → event of ``cls``; raises MalformedPayload naming the bad field."""
    if not isinstance(data, Mapping):
        raise MalformedPayload(f"event must be an object, got {type(data).__name__}")
    kwargs: dict[str, Any] = {}
    for name, decode, _as_str in _PLANS[cls]:
        try:
            kwargs[name] = decode(data.get(name))
        except MalformedPayload as exc:
            raise MalformedPayload(f"{KIND_OF[cls]}.{name}: {exc}") from None
    return cls(**kwargs)


def trade_to_wire(trade: Trade) -> list[Any]:
    """A trade as its version-2 wire array; Decimals become their exact string form."""
    return [
        trade.coin, trade.time, trade.tid, str(trade.px), str(trade.sz), trade.side,
        trade.hash, trade.buyer, trade.seller,
    ]  # fmt: skip


def encode_batch(
    kind: EventKind, events: Iterable[Event], source: str = "", seq: int = 0
) -> dict[str, Any]:
    """Build the task argument for a batch of one kind."""
    encode: Callable[[Any], Any] = trade_to_wire if kind == "trades" else event_to_wire
    return {
        "v": WIRE_VERSION,
        "kind": kind,
        "source": source,
        "seq": seq,
        "events": [encode(e) for e in events],
    }


@dataclass(frozen=True, slots=True)
class Batch:
    kind: EventKind
    source: str
    seq: int
    events: list[Any]


def batch_argument(payload: Any) -> Any:
    """A task's batch argument as an object: the ingester sends it as JSON text (see
    ``runtime.transport.task_body``), other publishers and tests as the object."""
    if isinstance(payload, str | bytes):
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise MalformedPayload(f"batch is not JSON: {exc}") from None
    return payload


def decode_batch(payload: Any, expected_kind: EventKind | None = None) -> Batch:
    """Validate a batch argument (JSON text or the object) and decode every event; all or
    nothing."""
    payload = batch_argument(payload)
    if not isinstance(payload, Mapping):
        raise MalformedPayload(f"batch must be an object, got {type(payload).__name__}")
    version = payload.get("v")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise MalformedPayload(f"unsupported batch version {version!r}")
    kind = payload.get("kind")
    if kind not in TYPE_OF:
        raise MalformedPayload(f"unknown batch kind {str(kind)[:40]!r}")
    if expected_kind is not None and kind != expected_kind:
        raise MalformedPayload(f"expected a {expected_kind} batch, got {kind}")
    raw = payload.get("events")
    if not isinstance(raw, list):
        raise MalformedPayload("batch.events must be a list")
    cls = TYPE_OF[kind]
    if cls is Trade:
        events: list[Any] = _trades_from_wire(raw, arrays=version >= 2)
    else:
        events = [_from_wire_at(cls, index, item) for index, item in enumerate(raw)]
    source = payload.get("source", "")
    seq = payload.get("seq", 0)
    return Batch(
        kind=kind,
        source=source if isinstance(source, str) else "",
        seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else 0,
        events=events,
    )


def register_batch_serializer() -> None:
    """Teach kombu to decode :data:`BATCH_CONTENT_TYPE` in this process (idempotent)."""
    from kombu.serialization import register

    register(
        "hyperwatch-batch",
        orjson.dumps,
        orjson.loads,
        content_type=BATCH_CONTENT_TYPE,
        content_encoding="utf-8",
    )


def _from_wire_at(cls: type[Event], index: int, item: Any) -> Event:
    try:
        return event_from_wire(cls, item)
    except MalformedPayload as exc:
        raise MalformedPayload(f"event {index}: {exc}") from None


def _trades_from_wire(raw: list[Any], arrays: bool) -> list[Trade]:
    """``event_from_wire(Trade, …)`` for every item, without a call per field.

    Trades are nearly all the volume, so well-formed ones are checked inline. The inline
    check is stricter than the generic rules — exact ``str``/``int`` types, string decimals
    only — so whatever it does not accept whole goes through ``event_from_wire``, which
    accepts it or refuses it with the reason. Either way the result is the same; a unit
    test holds the two paths equal. ``arrays``: version 2, each trade an array of its
    fields in ``Trade._fields`` order (version 1: an object).
    """
    out: list[Trade] = []
    append = out.append
    width = len(Trade._fields)
    for index, item in enumerate(raw):
        if arrays:
            if type(item) is not list or len(item) != width:
                raise MalformedPayload(
                    f"event {index}: a trade must be an array of its {width} fields"
                )
            coin, time, tid, px, sz, side, hash_, buyer, seller = item
        elif type(item) is dict:
            get = item.get
            coin, time, tid = get("coin"), get("time"), get("tid")
            px, sz, side, hash_ = get("px"), get("sz"), get("side"), get("hash")
            buyer, seller = get("buyer"), get("seller")
        else:
            append(_from_wire_at(Trade, index, item))  # type: ignore[arg-type]
            continue
        if (
            type(coin) is str
            and coin
            and type(time) is int
            and MIN_TIME_MS <= time <= MAX_TIME_MS
            and type(tid) is int
            and type(px) is str
            and type(sz) is str
            and (side == "B" or side == "A")
            and type(hash_) is str
            and hash_
            and (buyer is None or (type(buyer) is str and buyer))
            and (seller is None or (type(seller) is str and seller))
        ):
            try:
                px_d, sz_d = Decimal(px), Decimal(sz)
            except InvalidOperation:
                pass
            else:
                if px_d.is_finite() and sz_d.is_finite():
                    append(Trade(coin, time, tid, px_d, sz_d, side, hash_, buyer, seller))
                    continue
        fields = dict(zip(Trade._fields, item, strict=True)) if arrays else item
        append(_from_wire_at(Trade, index, fields))  # type: ignore[arg-type]
    return out
