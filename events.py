"""Typed market events and the batch wire format shared by the ingester and the workers.

The ingester turns frames into these events; a batch of one kind travels as one Celery task
message; the worker turns it back into events and hands them to a repository. Numbers that
are money, sizes or rates are ``Decimal`` here and strings on the wire (exactly as
Hyperliquid sends them), times are integer milliseconds since the epoch.

Wire form of a batch (the single positional argument of every ingest task)::

    {"v": 1, "kind": "trades", "source": "<ingester id>", "seq": 17, "events": [{...}, ...]}

``decode_batch`` is total: anything that is not a well-formed batch raises
:class:`MalformedPayload` with the reason, which tasks record and never retry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

WIRE_VERSION: Final = 1

Side = Literal["B", "A"]


class MalformedPayload(ValueError):
    """A batch or event that can never be processed; the reason is the message."""


@dataclass(frozen=True, slots=True)
class Trade:
    """A public trade. Unique on (coin, time, tid); ``hash`` is shared by a whole taker sweep."""

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
    # Field types are strings under `from __future__ import annotations`; map them once.
    return tuple(
        (
            f.name,
            _time if f.name == "time" else _DECODERS[str(f.type)],
            str(f.type) in _ENCODE_AS_STR,
        )
        for f in fields(cls)
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


def encode_batch(
    kind: EventKind, events: Iterable[Event], source: str = "", seq: int = 0
) -> dict[str, Any]:
    """Build the task argument for a batch of one kind."""
    return {
        "v": WIRE_VERSION,
        "kind": kind,
        "source": source,
        "seq": seq,
        "events": [event_to_wire(e) for e in events],
    }


@dataclass(frozen=True, slots=True)
class Batch:
    kind: EventKind
    source: str
    seq: int
    events: list[Any]


def decode_batch(payload: Any, expected_kind: EventKind | None = None) -> Batch:
    """Validate a batch argument and decode every event; all or nothing."""
    if not isinstance(payload, Mapping):
        raise MalformedPayload(f"batch must be an object, got {type(payload).__name__}")
    if payload.get("v") != WIRE_VERSION:
        raise MalformedPayload(f"unsupported batch version {payload.get('v')!r}")
    kind = payload.get("kind")
    if kind not in TYPE_OF:
        raise MalformedPayload(f"unknown batch kind {str(kind)[:40]!r}")
    if expected_kind is not None and kind != expected_kind:
        raise MalformedPayload(f"expected a {expected_kind} batch, got {kind}")
    raw = payload.get("events")
    if not isinstance(raw, list):
        raise MalformedPayload("batch.events must be a list")
    cls = TYPE_OF[kind]
    events = []
    for index, item in enumerate(raw):
        try:
            events.append(event_from_wire(cls, item))
        except MalformedPayload as exc:
            raise MalformedPayload(f"event {index}: {exc}") from None
    source = payload.get("source", "")
    seq = payload.get("seq", 0)
    return Batch(
        kind=kind,
        source=source if isinstance(source, str) else "",
        seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else 0,
        events=events,
    )
