"""Alert rules: the kinds, a validated definition, and the pure judgement of one rule.

Nothing here does I/O or reads the clock: :func:`evaluate` and :func:`should_rearm` take the
market view and ``now_ms`` (integer milliseconds since the epoch) from the caller.

Kinds and their exact conditions (``T`` = threshold, ``v`` = the measured value):

=============================  ======================================================  =========
kind                           measured value ``v``                                    fires when
=============================  ======================================================  =========
``price_above``                mid or mark price (``price_source``)                    v >= T
``price_below``                mid or mark price (``price_source``)                    v <= T
``price_move_pct``             % move of the mid within ``window_s``, see below        v >= T
``funding_above``              hourly funding rate as Hyperliquid sends it             v >= T
``funding_below``              hourly funding rate as Hyperliquid sends it             v <= T
``oi_change_pct``              % change of open interest within ``window_s``           v >= T
``liquidation_distance_below`` ``|mark - liquidation_px| / mark * 100`` of ``wallet``  v < T
``stale_data``                 seconds since the last ``stream`` event for the coin    v >= T
=============================  ======================================================  =========

A move "within N seconds" is measured against the extremes of the window: up =
``(latest - low) / low * 100``, down = ``(high - latest) / high * 100``; ``direction`` picks
one, ``any`` takes the larger. So a move fires the moment it completes, wherever it started
inside the window.

Unknown is not zero: no fresh value, no position, a null liquidation price, or a window the
history does not cover (when it shows no qualifying move) all give ``UNKNOWN``, which never
fires and never re-arms.

Modes. ``once`` disarms for good after firing. ``recurring`` disarms on firing and re-arms
(:func:`should_rearm`) only after the condition has been false *by the margin*: the margin is
the fraction ``rearm_margin`` of ``|T|`` (0.005 = 0.5 %), so ``price_above`` 100 with margin
0.005 re-arms when the price is below 99.5; ``price_below`` 100 re-arms above 100.5;
``liquidation_distance_below`` 5 with margin 0.2 re-arms at a distance of 6 or more. With a
threshold of 0 the band is 0. A re-armed recurring alert still waits ``cooldown_s`` after its
last firing. ``snooze_until`` and ``expires_at`` (ms) hold a true condition without firing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final, Literal

from domain.alerts.market_state import MarketState, Series, Stream, WindowRange
from settings import ADDRESS_PATTERN, COIN_PATTERN

HOURS_PER_YEAR: Final = Decimal(24 * 365)
# Hyperliquid caps funding at 4 % an hour; a threshold beyond it can never be crossed, and is
# almost always an annualised or percent figure typed where the hourly fraction belongs.
FUNDING_CAP_PER_HOUR: Final = Decimal("0.04")
MAX_WINDOW_S: Final = 86_400
DEFAULT_REARM_MARGIN: Final = Decimal("0.005")
_HUNDRED: Final = Decimal(100)


class InvalidAlert(ValueError):
    """An alert definition that can never be evaluated. ``str()`` is one human sentence."""


class AlertKind(StrEnum):
    """Alert kinds; the values are stored in the database."""

    PRICE_ABOVE = "price_above"
    PRICE_BELOW = "price_below"
    PRICE_MOVE_PCT = "price_move_pct"
    FUNDING_ABOVE = "funding_above"
    FUNDING_BELOW = "funding_below"
    OI_CHANGE_PCT = "oi_change_pct"
    LIQUIDATION_DISTANCE_BELOW = "liquidation_distance_below"
    STALE_DATA = "stale_data"


class PriceSource(StrEnum):
    MID = "mid"
    MARK = "mark"


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    ANY = "any"


class Mode(StrEnum):
    ONCE = "once"
    RECURRING = "recurring"


class Outcome(StrEnum):
    FIRE = "fire"  # condition true and the rule may fire now
    HOLD = "hold"  # condition true but not allowed: disarmed, snoozed, cooling down, expired
    CLEAR = "clear"  # condition known to be false
    UNKNOWN = "unknown"  # data missing or stale: never fires, never re-arms


Comparison = Literal["ge", "le", "lt"]

_COMPARISON: Final[dict[AlertKind, Comparison]] = {
    AlertKind.PRICE_ABOVE: "ge",
    AlertKind.PRICE_BELOW: "le",
    AlertKind.PRICE_MOVE_PCT: "ge",
    AlertKind.FUNDING_ABOVE: "ge",
    AlertKind.FUNDING_BELOW: "le",
    AlertKind.OI_CHANGE_PCT: "ge",
    AlertKind.LIQUIDATION_DISTANCE_BELOW: "lt",
    AlertKind.STALE_DATA: "ge",
}
PRICE_KINDS: Final = frozenset({AlertKind.PRICE_ABOVE, AlertKind.PRICE_BELOW})
FUNDING_KINDS: Final = frozenset({AlertKind.FUNDING_ABOVE, AlertKind.FUNDING_BELOW})
WINDOW_KINDS: Final = frozenset({AlertKind.PRICE_MOVE_PCT, AlertKind.OI_CHANGE_PCT})


def comparison(kind: AlertKind) -> Comparison:
    """How the measured value meets the threshold: ``ge`` v >= T, ``le`` v <= T, ``lt`` v < T."""
    return _COMPARISON[kind]


def annualised(rate: Decimal) -> Decimal:
    """An hourly funding rate as a yearly fraction (rate x 24 x 365), for humans only."""
    return rate * HOURS_PER_YEAR


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One alert definition. Constructing it validates it: an instance is always evaluable.

    ``id`` 0 means "not stored yet". Times are integer ms since the epoch. Fields that a kind
    does not use must be left unset (``window_s``, ``direction``, ``wallet``, ``stream``) or at
    their default (``price_source`` mid), so a misplaced option is refused, not ignored.
    ``threshold`` units: price kinds in quote currency, ``*_pct`` and liquidation distance in
    percent (5 = 5 %), funding as the hourly fraction, ``stale_data`` in seconds.
    """

    id: int
    user_id: int
    kind: AlertKind
    coin: str
    threshold: Decimal
    price_source: PriceSource = PriceSource.MID
    window_s: int | None = None
    direction: Direction | None = None
    wallet: str | None = None
    stream: Stream | None = None
    mode: Mode = Mode.ONCE
    cooldown_s: int = 0
    rearm_margin: Decimal = DEFAULT_REARM_MARGIN
    snooze_until: int | None = None
    expires_at: int | None = None
    armed: bool = True
    last_fired_at: int | None = None

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def effective_direction(self) -> Direction:
        return self.direction or Direction.ANY


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(rule: AlertRule) -> None:
    for check in (_identity_problem, _threshold_problem, _options_problem, _timing_problem):
        problem = check(rule)
        if problem is not None:
            raise InvalidAlert(problem)


def _identity_problem(rule: AlertRule) -> str | None:
    if not _is_int(rule.id) or rule.id < 0 or not _is_int(rule.user_id) or rule.user_id < 0:
        return "id and user_id must be whole numbers, zero or more"
    if not isinstance(rule.kind, AlertKind):
        return f"unknown alert kind {rule.kind!r}; expected one of {', '.join(AlertKind)}"
    if not isinstance(rule.coin, str) or not COIN_PATTERN.match(rule.coin):
        return f"{rule.coin!r} is not a coin name as Hyperliquid spells it (e.g. BTC, kPEPE, @107)"
    return None


def _threshold_problem(rule: AlertRule) -> str | None:
    t = rule.threshold
    if not isinstance(t, Decimal) or not t.is_finite():
        return f"the threshold must be a finite decimal number, got {t!r}"
    kind = rule.kind
    if kind in FUNDING_KINDS:
        if abs(t) > FUNDING_CAP_PER_HOUR:
            return (
                f"funding threshold {t} is beyond the {FUNDING_CAP_PER_HOUR} per hour cap, so it "
                "could never fire; give the hourly rate as a fraction (0.0001 = 0.01 % an hour)"
            )
        return None
    if t <= 0:
        return f"{kind} needs a threshold above zero, got {t}"
    if kind in WINDOW_KINDS and rule.direction is Direction.DOWN and t >= _HUNDRED:
        return f"a value cannot fall by {t} % or more, so this {kind} alert could never fire"
    return None


def _options_problem(rule: AlertRule) -> str | None:
    kind = rule.kind
    if not isinstance(rule.price_source, PriceSource):
        return f"price_source must be mid or mark, got {rule.price_source!r}"
    if rule.price_source is PriceSource.MARK and kind not in PRICE_KINDS:
        return f"{kind} does not take a price source (only price_above and price_below do)"
    if kind in WINDOW_KINDS:
        if rule.window_s is None:
            return f"{kind} needs window_s, the time window in seconds"
        if not _is_int(rule.window_s) or not 1 <= rule.window_s <= MAX_WINDOW_S:
            return f"window_s must be whole seconds from 1 to {MAX_WINDOW_S}, got {rule.window_s!r}"
        if rule.direction is not None and not isinstance(rule.direction, Direction):
            return f"direction must be up, down or any, got {rule.direction!r}"
    elif rule.window_s is not None or rule.direction is not None:
        return f"window_s and direction apply only to price_move_pct and oi_change_pct, not {kind}"
    if kind is AlertKind.LIQUIDATION_DISTANCE_BELOW:
        if rule.wallet is None:
            return "liquidation_distance_below needs the tracked wallet's address"
        if not isinstance(rule.wallet, str) or not ADDRESS_PATTERN.match(rule.wallet):
            return f"wallet must be 0x followed by 40 lower-case hex digits, got {rule.wallet!r}"
    elif rule.wallet is not None:
        return f"a wallet applies only to liquidation_distance_below, not {kind}"
    if kind is AlertKind.STALE_DATA:
        if not isinstance(rule.stream, Stream):
            return f"stale_data needs stream, one of {', '.join(Stream)}"
    elif rule.stream is not None:
        return f"a stream applies only to stale_data, not {kind}"
    return None


def _timing_problem(rule: AlertRule) -> str | None:
    if not isinstance(rule.mode, Mode):
        return f"mode must be once or recurring, got {rule.mode!r}"
    if not _is_int(rule.cooldown_s) or rule.cooldown_s < 0:
        return f"cooldown_s must be whole seconds, zero or more, got {rule.cooldown_s!r}"
    m = rule.rearm_margin
    if not isinstance(m, Decimal) or not m.is_finite() or not 0 <= m < 1:
        return f"rearm_margin must be a fraction from 0 up to (not including) 1, got {m!r}"
    for name in ("snooze_until", "expires_at", "last_fired_at"):
        value = getattr(rule, name)
        if value is not None and (not _is_int(value) or value < 0):
            return f"{name} must be a time in whole milliseconds since the epoch, got {value!r}"
    if not isinstance(rule.armed, bool):
        return f"armed must be true or false, got {rule.armed!r}"
    return None


# --- parsing ------------------------------------------------------------------------------


def _enum(cls: type[StrEnum], name: str, value: Any) -> Any:
    if value is None or isinstance(value, cls):
        return value
    try:
        return cls(str(value).strip().lower())
    except ValueError:
        raise InvalidAlert(f"unknown {name} {value!r}; expected one of {', '.join(cls)}") from None


def _decimal(name: str, value: Any) -> Decimal:
    if isinstance(value, float):
        raise InvalidAlert(f"{name} must be given as a decimal string, not a float ({value!r})")
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InvalidAlert(f"{name} must be a decimal number, got {value!r}")
    try:
        return Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise InvalidAlert(f"{name} must be a decimal number, got {value!r}") from None


def _int_or_none(name: str, value: Any) -> int | None:
    if value is None or _is_int(value):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InvalidAlert(f"{name} must be a whole number, got {value!r}")


def parse_rule(data: Mapping[str, Any]) -> AlertRule:
    """Build a rule from loose input (a DB row, CLI options, JSON): enum names and decimal
    strings are coerced, ``wallet`` is lower-cased, unset keys take the defaults. Floats are
    refused for numbers that are compared exactly. Raises :class:`InvalidAlert`."""
    if data.get("kind") is None:
        raise InvalidAlert("an alert needs a kind")
    if data.get("threshold") is None:
        raise InvalidAlert("an alert needs a threshold")
    wallet = data.get("wallet")
    margin = data.get("rearm_margin")
    source = _enum(PriceSource, "price source", data.get("price_source"))
    return AlertRule(
        id=_int_or_none("id", data.get("id", 0)) or 0,
        user_id=_int_or_none("user_id", data.get("user_id", 0)) or 0,
        kind=_enum(AlertKind, "alert kind", data["kind"]),
        coin=data.get("coin", ""),
        threshold=_decimal("threshold", data["threshold"]),
        price_source=source or PriceSource.MID,
        window_s=_int_or_none("window_s", data.get("window_s")),
        direction=_enum(Direction, "direction", data.get("direction")),
        wallet=wallet.strip().lower() if isinstance(wallet, str) else wallet,
        stream=_enum(Stream, "stream", data.get("stream")),
        mode=_enum(Mode, "mode", data.get("mode")) or Mode.ONCE,
        cooldown_s=_int_or_none("cooldown_s", data.get("cooldown_s")) or 0,
        rearm_margin=DEFAULT_REARM_MARGIN if margin is None else _decimal("rearm_margin", margin),
        snooze_until=_int_or_none("snooze_until", data.get("snooze_until")),
        expires_at=_int_or_none("expires_at", data.get("expires_at")),
        armed=data.get("armed", True),
        last_fired_at=_int_or_none("last_fired_at", data.get("last_fired_at")),
    )


# --- measuring ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement of one rule at one moment.

    ``value`` is the measured quantity compared with the threshold (None when unknown);
    ``detail`` describes the measurement for humans (e.g. ``"up"``); ``reason`` says why a
    true condition is held back or why the value is unknown.
    """

    outcome: Outcome
    value: Decimal | None = None
    detail: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class _Reading:
    value: Decimal | None
    # False when the value only bounds the truth (a window the history does not cover).
    complete: bool = True
    detail: str = ""
    missing: str = ""


def _unknown(why: str) -> _Reading:
    return _Reading(value=None, missing=why)


def _known(value: Decimal | None, why_not: str) -> _Reading:
    return _Reading(value=value) if value is not None else _unknown(why_not)


def _move_pct(window: WindowRange, direction: Direction) -> tuple[Decimal, str] | None:
    up = (window.latest - window.low) / window.low * _HUNDRED if window.low > 0 else None
    down = (window.high - window.latest) / window.high * _HUNDRED if window.high > 0 else None
    if direction is Direction.UP:
        return None if up is None else (up, "up")
    if direction is Direction.DOWN:
        return None if down is None else (down, "down")
    if up is None or down is None:
        return None
    return (up, "up") if up >= down else (down, "down")


def _measure_window(rule: AlertRule, state: MarketState, now_ms: int) -> _Reading:
    series = Series.MID if rule.kind is AlertKind.PRICE_MOVE_PCT else Series.OPEN_INTEREST
    window = state.window(rule.coin, series, (rule.window_s or 0) * 1000, now_ms)
    if window is None:
        return _unknown(f"no fresh {series} for {rule.coin}")
    move = _move_pct(window, rule.effective_direction)
    if move is None:
        return _unknown(f"{rule.coin} {series} has a zero reference, so a percentage is undefined")
    return _Reading(value=move[0], complete=window.covered, detail=move[1])


def _measure_liquidation(rule: AlertRule, state: MarketState, now_ms: int) -> _Reading:
    wallet = rule.wallet or ""
    position = state.position(wallet, rule.coin, now_ms)
    if position is None or position.szi == 0:
        return _unknown(f"no fresh open {rule.coin} position for {wallet}")
    if position.liquidation_px is None:
        return _unknown(f"the {rule.coin} position of {wallet} has no liquidation price")
    mark = state.mark(rule.coin, now_ms)
    if mark is None or mark <= 0:
        return _unknown(f"no fresh mark price for {rule.coin}")
    distance = abs(mark - position.liquidation_px) / mark * _HUNDRED
    return _Reading(value=distance, detail=f"mark {mark}, liquidation {position.liquidation_px}")


def _measure(rule: AlertRule, state: MarketState, now_ms: int) -> _Reading:
    kind = rule.kind
    if kind in PRICE_KINDS:
        read = state.mid if rule.price_source is PriceSource.MID else state.mark
        return _known(
            read(rule.coin, now_ms), f"no fresh {rule.price_source} price for {rule.coin}"
        )
    if kind in FUNDING_KINDS:
        return _known(state.funding(rule.coin, now_ms), f"no fresh funding for {rule.coin}")
    if kind in WINDOW_KINDS:
        return _measure_window(rule, state, now_ms)
    if kind is AlertKind.LIQUIDATION_DISTANCE_BELOW:
        return _measure_liquidation(rule, state, now_ms)
    stream = rule.stream or Stream.MIDS
    silence = Decimal(state.silence_ms(rule.coin, stream, now_ms)) / 1000
    return _Reading(value=silence)


def _holds(kind: AlertKind, value: Decimal, threshold: Decimal) -> bool:
    how = _COMPARISON[kind]
    if how == "ge":
        return value >= threshold
    if how == "le":
        return value <= threshold
    return value < threshold


def _held_back(rule: AlertRule, now_ms: int) -> str | None:
    if rule.expires_at is not None and now_ms >= rule.expires_at:
        return f"expired at {rule.expires_at}"
    if not rule.armed:
        return "disarmed until it re-arms" if rule.mode is Mode.RECURRING else "already fired once"
    if rule.snooze_until is not None and now_ms < rule.snooze_until:
        return f"snoozed until {rule.snooze_until}"
    if rule.mode is Mode.RECURRING and rule.last_fired_at is not None:
        until = rule.last_fired_at + rule.cooldown_s * 1000
        if now_ms < until:
            return f"cooling down until {until}"
    return None


def evaluate(rule: AlertRule, state: MarketState, now_ms: int) -> Verdict:
    """Judge ``rule`` against ``state`` at ``now_ms``: FIRE, HOLD, CLEAR or UNKNOWN.

    FIRE only when the value is known and fresh, the condition holds, and the rule is armed,
    not expired, not snoozed and (recurring) out of its cooldown. The caller then disarms it
    with a conditional update; this function changes nothing.
    """
    reading = _measure(rule, state, now_ms)
    if reading.value is None:
        return Verdict(Outcome.UNKNOWN, reason=reading.missing)
    if not _holds(rule.kind, reading.value, rule.threshold):
        if not reading.complete:
            return Verdict(
                Outcome.UNKNOWN,
                reading.value,
                reading.detail,
                reason=f"history does not cover the {rule.window_s} s window yet",
            )
        return Verdict(Outcome.CLEAR, reading.value, reading.detail)
    held = _held_back(rule, now_ms)
    if held is not None:
        return Verdict(Outcome.HOLD, reading.value, reading.detail, reason=held)
    return Verdict(Outcome.FIRE, reading.value, reading.detail)


def rearm_level(rule: AlertRule) -> Decimal:
    """The value the measurement must pass (strictly) to re-arm: ``T - |T|*m`` for ``ge``
    kinds (re-arm below it), ``T + |T|*m`` for ``le`` kinds (above it) and for ``lt`` kinds
    (at or above it, as equality already makes ``v < T`` false)."""
    band = abs(rule.threshold) * rule.rearm_margin
    return rule.threshold - band if _COMPARISON[rule.kind] == "ge" else rule.threshold + band


def rearm_satisfied(kind: AlertKind, value: Decimal, level: Decimal) -> bool:
    """Whether a measured ``value`` is far enough past ``rearm_level`` to re-arm."""
    how = _COMPARISON[kind]
    if how == "ge":
        return value < level
    if how == "le":
        return value > level
    return value >= level


def should_rearm(rule: AlertRule, state: MarketState, now_ms: int) -> bool:
    """True when a disarmed recurring, unexpired rule has seen its condition false by the
    margin, on a known and complete value. Cooldown does not delay re-arming; it delays the
    next firing (see :func:`evaluate`)."""
    if rule.armed or rule.mode is not Mode.RECURRING:
        return False
    if rule.expires_at is not None and now_ms >= rule.expires_at:
        return False
    reading = _measure(rule, state, now_ms)
    if reading.value is None or not reading.complete:
        return False
    return rearm_satisfied(rule.kind, reading.value, rearm_level(rule))


# --- messages -----------------------------------------------------------------------------


def _num(value: Decimal) -> str:
    """Exact, without exponent or trailing zeros: 117342.50 -> 117342.5, 1E+2 -> 100."""
    return format(value.normalize(), "f")


def _pct(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):f} %"


def _per_year(rate: Decimal) -> str:
    return f"{(annualised(rate) * _HUNDRED).quantize(Decimal('0.01')):f} % a year"


def _span(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


_WORDING: Final[dict[Comparison, str]] = {"ge": "at or above", "le": "at or below", "lt": "below"}


def message(rule: AlertRule, verdict: Verdict) -> str:
    """One human sentence for a fired (or held) alert: coin, what was measured, the value,
    the threshold and the kind; funding also annualised. Needs ``verdict.value``."""
    if verdict.value is None:
        raise ValueError("a message needs a measured value; this verdict is unknown")
    v, t, kind, coin = verdict.value, rule.threshold, rule.kind, rule.coin
    wording = _WORDING[_COMPARISON[kind]]
    if kind in PRICE_KINDS:
        text = f"{coin} {rule.price_source} price {_num(v)} is {wording} {_num(t)}"
    elif kind in FUNDING_KINDS:
        text = (
            f"{coin} funding {_num(v)} an hour ({_per_year(v)}) is {wording} "
            f"{_num(t)} an hour ({_per_year(t)})"
        )
    elif kind in WINDOW_KINDS:
        what = "mid price" if kind is AlertKind.PRICE_MOVE_PCT else "open interest"
        text = (
            f"{coin} {what} moved {verdict.detail} {_pct(v)} within {_span(rule.window_s or 0)}, "
            f"{wording} {_num(t)} %"
        )
    elif kind is AlertKind.LIQUIDATION_DISTANCE_BELOW:
        text = (
            f"wallet {rule.wallet} {coin} position is {_pct(v)} from liquidation "
            f"({verdict.detail}), {wording} {_num(t)} %"
        )
    else:
        text = f"no {rule.stream} data for {coin} for {_num(v)} s, {wording} {_num(t)} s"
    return f"{text} [{kind}]"
