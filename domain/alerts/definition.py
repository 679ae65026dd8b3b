"""What an alert is: the kinds, their exact conditions, and a validated definition.

:class:`AlertRule` validates itself on construction (an instance is always evaluable);
:func:`parse_rule` builds one from loose input (a database row, CLI options, JSON). How a
rule is judged against the market is ``domain.alerts.judgement``; how a fired one is worded
for humans, ``domain.alerts.wording``.

Kinds and their exact conditions (``T`` = threshold, ``v`` = the measured value):

=============================  ======================================================  =========
kind                           measured value ``v``                                    fires when
=============================  ======================================================  =========
``price_above``                mid or mark price (``price_source``)                    v >= T
``price_below``                mid or mark price (``price_source``)                    v <= T
``price_move_pct``             % move of the mid within ``window_s`` (judgement)       v >= T
``funding_above``              hourly funding rate as Hyperliquid sends it             v >= T
``funding_below``              hourly funding rate as Hyperliquid sends it             v <= T
``oi_change_pct``              % change of open interest within ``window_s``           v >= T
``liquidation_distance_below`` ``|mark - liquidation_px| / mark * 100`` of ``wallet``  v < T
``stale_data``                 seconds since the last ``stream`` event for the coin    v >= T
``whale_trade``                notional (px x sz, USD) of one public trade, any wallet v >= T
``wallet_position_change``     USD notional of a change of ``wallet``'s position       v >= T
``wallet_liquidated``          USD notional of ``wallet``'s liquidation fills          v >= T
=============================  ======================================================  =========

The last three are *event* kinds (:data:`EVENT_KINDS`): they judge things that happen — a
trade, two consecutive position snapshots, a liquidation fill — not a state, so they have no
re-arm level: a ``recurring`` one stays armed and fires on every qualifying event newer than
its last firing and past its cooldown (``domain.alerts.occurrence``, ``judgement``).

Modes. ``once`` disarms for good after firing; ``recurring`` disarms on firing and re-arms
once the condition has been false by ``rearm_margin`` (a fraction of ``|T|``), then waits
``cooldown_s`` after its last firing. ``snooze_until`` and ``expires_at`` (ms) hold a true
condition without firing. The exact rules are in ``domain.alerts.judgement``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final, Literal

from domain.alerts.view import Stream
from settings import ADDRESS_PATTERN, COIN_PATTERN

# Hyperliquid caps funding at 4 % an hour; a threshold beyond it can never be crossed, and is
# almost always an annualised or percent figure typed where the hourly fraction belongs.
FUNDING_CAP_PER_HOUR: Final = Decimal("0.04")
# Notional thresholds (USD) of the event kinds: to the cent, at most a trillion — beyond it
# no trade or position on Hyperliquid comes near, so it is a unit or typing mistake.
MAX_NOTIONAL_USD: Final = Decimal(10) ** 12
NOTIONAL_DECIMALS: Final = 2
# A whale threshold below this would let nearly every trade through the ingest workers'
# prefilter to the alert workers (tasks.alerts.forward): trades are nearly all the volume.
MIN_WHALE_TRADE_USD: Final = Decimal(1_000)
MAX_WINDOW_S: Final = 86_400
DEFAULT_REARM_MARGIN: Final = Decimal("0.005")

# --- input limits (docs/ALERTS.md "Accepted ranges", docs/SECURITY.md "Input limits") ------
# Every number a subscriber gives is bounded in size *and* in decimals, for three reasons:
# the threshold index keys each level as an int64 at a fixed scale per book
# (domain.alerts.index), so a bounded level always fits and compares exactly; the re-arm level
# T ± |T|·m is computed exactly within REARM_PRECISION digits (judgement.rearm_level); and the
# Money column (models.base: NUMERIC without precision on PostgreSQL, text of 64 characters
# on SQLite) stores the canonical form (:func:`canonical`) in at most 22 characters.
#
# Price thresholds: Hyperliquid quotes no price with more than 8 decimals (spot: 8 minus the
# size decimals, perps: 6 minus them), so 8 decimals fit every coin's price scale; a billion
# (quote currency) is four orders of magnitude above the dearest coin listed.
MAX_PRICE: Final = Decimal(10) ** 9
PRICE_DECIMALS: Final = 8
# Percentages (moves, open-interest changes, liquidation distance): a move of up to 100x,
# to a ten-thousandth of a percent.
MAX_PERCENT: Final = Decimal(10_000)
PERCENT_DECIMALS: Final = 4
# Funding is sent with up to 10 decimals (the hourly rate and its premium, reference §2.3).
FUNDING_DECIMALS: Final = 10
# stale_data: silence is measured from millisecond times, so to the millisecond; 30 days.
MAX_STALE_S: Final = 30 * 86_400
STALE_DECIMALS: Final = 3
# Re-arm margin: a fraction of |T| below 1, to a millionth (0.000001 = 0.0001 %).
REARM_MARGIN_DECIMALS: Final = 6
# Longest cooldown: a month. Longer is a mistaken unit (ms typed as s) or a paused alert.
MAX_COOLDOWN_S: Final = 30 * 86_400
# Latest time a rule may carry (snooze, expiry, last firing), in ms: 9999-12-31T23:59:59.999Z,
# the last instant a datetime can show, far inside BIGINT. How far ahead a *new* alert may be
# snoozed or expire (5 years) is a write-time check relative to now (domain.alerts.manage).
MAX_TIME_MS: Final = 253_402_300_799_999
# A number typed as text: at most as long as the SQLite Money column, ASCII digits only
# (Python's Decimal and int would take Arabic-Indic or fullwidth digits, '1_000', 'Infinity').
MAX_NUMBER_CHARS: Final = 64
_DECIMAL_TEXT: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INT_TEXT: Final = re.compile(r"[+-]?[0-9]{1,18}")  # 18 digits: always within BIGINT
# Digits the exact threshold arithmetic may need: every bounded threshold has at most 19
# significant digits (price: 10 + 8 decimals), a margin 6, their product and sum fewer than 30.
REARM_PRECISION: Final = 60
_EXACT: Final = Context(prec=REARM_PRECISION, traps=[InvalidOperation])
_HUNDRED: Final = Decimal(100)
_ZERO: Final = Decimal(0)


class InvalidAlert(ValueError):
    """An alert definition that can never be evaluated. ``str()`` is one human sentence;
    ``field`` the definition's field it is about (:func:`field_of`), None when no one field
    is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.field = field_of(message)


# A definition field, and how the messages below name it. The first name in a message is
# the field the message is about ("window_s and direction apply only to …" is window_s's).
_FIELD_NAMES: Final = (
    ("kind", re.compile(r"alert kind|needs a kind")),
    ("coin", re.compile(r"coin name")),
    ("threshold", re.compile(r"\bthreshold\b|cannot fall by")),
    ("price_source", re.compile(r"\bprice[ _]source\b")),
    ("window_s", re.compile(r"\bwindow_s\b")),
    ("direction", re.compile(r"\bdirection\b")),
    ("wallet", re.compile(r"\bwallet\b")),
    ("stream", re.compile(r"\bstream\b")),
    ("mode", re.compile(r"\bmode\b")),
    ("cooldown_s", re.compile(r"\bcooldown_s\b")),
    ("rearm_margin", re.compile(r"\brearm_margin\b")),
    ("snooze_until", re.compile(r"\bsnooze_until\b")),
    ("expires_at", re.compile(r"\bexpires_at\b")),
)


def field_of(message: str) -> str | None:
    """The definition field a refusal's ``message`` names first, or None. Pure."""
    found = [(m.start(), name) for name, p in _FIELD_NAMES if (m := p.search(message))]
    return min(found)[1] if found else None


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
    WHALE_TRADE = "whale_trade"
    WALLET_POSITION_CHANGE = "wallet_position_change"
    WALLET_LIQUIDATED = "wallet_liquidated"


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
    AlertKind.WHALE_TRADE: "ge",
    AlertKind.WALLET_POSITION_CHANGE: "ge",
    AlertKind.WALLET_LIQUIDATED: "ge",
}
PRICE_KINDS: Final = frozenset({AlertKind.PRICE_ABOVE, AlertKind.PRICE_BELOW})
FUNDING_KINDS: Final = frozenset({AlertKind.FUNDING_ABOVE, AlertKind.FUNDING_BELOW})
WINDOW_KINDS: Final = frozenset({AlertKind.PRICE_MOVE_PCT, AlertKind.OI_CHANGE_PCT})
# Judged on events (a trade, a position change, a liquidation), not on the market state.
EVENT_KINDS: Final = frozenset(
    {AlertKind.WHALE_TRADE, AlertKind.WALLET_POSITION_CHANGE, AlertKind.WALLET_LIQUIDATED}
)
# About one tracked wallet: need ``wallet``, which the subscriber must track.
WALLET_KINDS: Final = frozenset(
    {
        AlertKind.LIQUIDATION_DISTANCE_BELOW,
        AlertKind.WALLET_POSITION_CHANGE,
        AlertKind.WALLET_LIQUIDATED,
    }
)
# Take ``direction``: windows (which way the value moved), position changes (which way the
# position's size moved: up = opened or increased, down = reduced or closed).
DIRECTION_KINDS: Final = WINDOW_KINDS | {AlertKind.WALLET_POSITION_CHANGE}


def comparison(kind: AlertKind) -> Comparison:
    """How the measured value meets the threshold: ``ge`` v >= T, ``le`` v <= T, ``lt`` v < T."""
    return _COMPARISON[kind]


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One alert definition. Constructing it validates it: an instance is always evaluable.

    ``id`` 0 means "not stored yet". Times are integer ms since the epoch. Fields that a kind
    does not use must be left unset (``window_s``, ``direction``, ``wallet``, ``stream``) or at
    their default (``price_source`` mid), so a misplaced option is refused, not ignored.
    ``threshold`` units: price kinds in quote currency, ``*_pct`` and liquidation distance in
    percent (5 = 5 %), funding as the hourly fraction, ``stale_data`` in seconds, the event
    kinds in USD of notional (to the cent).
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
    if not isinstance(rule.coin, str) or not COIN_PATTERN.fullmatch(rule.coin):
        return (
            f"{shorten(repr(rule.coin))} is not a coin name as Hyperliquid spells it "
            "(e.g. BTC, kPEPE, @107)"
        )
    return None


@dataclass(frozen=True, slots=True)
class Bounds:
    """The thresholds a kind accepts: ``low < T <= high`` (``low <= T`` when ``inclusive``),
    at most ``decimals`` decimal places (by value: ``1.50`` has one), in ``unit``."""

    low: Decimal
    high: Decimal
    decimals: int
    unit: str
    inclusive: bool = False


_PRICE_BOUNDS: Final = Bounds(_ZERO, MAX_PRICE, PRICE_DECIMALS, "quote currency")
_PERCENT_BOUNDS: Final = Bounds(_ZERO, MAX_PERCENT, PERCENT_DECIMALS, "percent")
_NOTIONAL_BOUNDS: Final = Bounds(_ZERO, MAX_NOTIONAL_USD, NOTIONAL_DECIMALS, "USD")
THRESHOLD_BOUNDS: Final[dict[AlertKind, Bounds]] = {
    AlertKind.PRICE_ABOVE: _PRICE_BOUNDS,
    AlertKind.PRICE_BELOW: _PRICE_BOUNDS,
    AlertKind.PRICE_MOVE_PCT: _PERCENT_BOUNDS,
    AlertKind.OI_CHANGE_PCT: _PERCENT_BOUNDS,
    AlertKind.LIQUIDATION_DISTANCE_BELOW: _PERCENT_BOUNDS,
    AlertKind.FUNDING_ABOVE: Bounds(
        -FUNDING_CAP_PER_HOUR, FUNDING_CAP_PER_HOUR, FUNDING_DECIMALS, "hourly fraction", True
    ),
    AlertKind.FUNDING_BELOW: Bounds(
        -FUNDING_CAP_PER_HOUR, FUNDING_CAP_PER_HOUR, FUNDING_DECIMALS, "hourly fraction", True
    ),
    AlertKind.STALE_DATA: Bounds(_ZERO, Decimal(MAX_STALE_S), STALE_DECIMALS, "seconds"),
    AlertKind.WHALE_TRADE: _NOTIONAL_BOUNDS,
    AlertKind.WALLET_POSITION_CHANGE: _NOTIONAL_BOUNDS,
    AlertKind.WALLET_LIQUIDATED: _NOTIONAL_BOUNDS,
}


def shorten(value: object) -> str:
    """A value for a one-line message: a number of thousands of digits is cut short."""
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}…{text[-8:]} ({len(text)} characters)"


def has_places(value: Decimal, decimals: int) -> bool:
    """Whether ``value`` (finite, of bounded size: at most ~40 digits before the point) has
    at most ``decimals`` decimal places by value (``1.50`` has one). Exact: the quantized
    value has far fewer digits than the context's precision."""
    return value == value.quantize(Decimal(1).scaleb(-decimals), context=_EXACT)


def canonical(value: Decimal, decimals: int) -> Decimal:
    """``value`` (already within its bounds) as it is stored: no exponent above zero and no
    trailing zeros past ``decimals`` places, so ``1E+3`` is stored as ``1000`` and
    ``1.000000000000`` as ``1.00000000`` — equal as Decimal, and a few characters long."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return value.quantize(Decimal(1), context=_EXACT)
    if isinstance(exponent, int) and exponent < -decimals:
        return value.quantize(Decimal(1).scaleb(-decimals), context=_EXACT)
    return value


def _threshold_problem(rule: AlertRule) -> str | None:
    t = rule.threshold
    if not isinstance(t, Decimal) or not t.is_finite():
        return f"the threshold must be a finite decimal number, got {shorten(repr(t))}"
    kind = rule.kind
    bounds = THRESHOLD_BOUNDS[kind]
    if kind in FUNDING_KINDS:
        if t.copy_abs() > FUNDING_CAP_PER_HOUR:
            return (
                f"funding threshold {shorten(t)} is beyond the {FUNDING_CAP_PER_HOUR} per hour cap, "
                "so it could never fire; give the hourly rate as a fraction (0.0001 = 0.01 % an hour)"
            )
    elif t <= 0:
        return f"{kind} needs a threshold above zero, got {shorten(t)}"
    elif kind in EVENT_KINDS:
        return _notional_problem(kind, t)
    elif t > bounds.high:
        return (
            f"{kind} threshold {shorten(t)} is above the limit of {bounds.high:,f} ({bounds.unit})"
        )
    # Size first: has_places is exact only for a bounded value.
    if not has_places(t, bounds.decimals):
        return (
            f"{kind} threshold takes at most {bounds.decimals} decimals ({bounds.unit}), "
            f"got {shorten(t)}"
        )
    if kind in WINDOW_KINDS and rule.direction is Direction.DOWN and t >= _HUNDRED:
        return f"a value cannot fall by {t} % or more, so this {kind} alert could never fire"
    return None


def _notional_problem(kind: AlertKind, t: Decimal) -> str | None:
    if t > MAX_NOTIONAL_USD:
        return (
            f"{kind} threshold {shorten(t)} USD is above the {MAX_NOTIONAL_USD:,f} USD limit; give "
            "the notional in USD (1000000 = one million)"
        )
    if not has_places(t, NOTIONAL_DECIMALS):
        return (
            f"{kind} threshold is USD to the cent: at most {NOTIONAL_DECIMALS} decimals, "
            f"got {shorten(t)}"
        )
    if kind is AlertKind.WHALE_TRADE and t < MIN_WHALE_TRADE_USD:
        return (
            f"whale_trade needs a threshold of at least {MIN_WHALE_TRADE_USD} USD, got {t}: "
            "a lower one would pass nearly every trade"
        )
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
            return (
                f"window_s must be whole seconds from 1 to {MAX_WINDOW_S}, "
                f"got {shorten(repr(rule.window_s))}"
            )
    if (rule.window_s is not None and kind not in WINDOW_KINDS) or (
        rule.direction is not None and kind not in DIRECTION_KINDS
    ):
        return (
            "window_s and direction apply only to price_move_pct and oi_change_pct (direction "
            f"also to wallet_position_change), not {kind}"
        )
    if rule.direction is not None and not isinstance(rule.direction, Direction):
        return f"direction must be up, down or any, got {rule.direction!r}"
    if kind in WALLET_KINDS:
        if rule.wallet is None:
            return f"{kind} needs the tracked wallet's address"
        if not isinstance(rule.wallet, str) or not ADDRESS_PATTERN.fullmatch(rule.wallet):
            return (
                "wallet must be 0x followed by 40 lower-case hex digits, "
                f"got {shorten(repr(rule.wallet))}"
            )
    elif rule.wallet is not None:
        return f"a wallet applies only to {', '.join(sorted(WALLET_KINDS))}, not {kind}"
    if kind is AlertKind.STALE_DATA:
        if not isinstance(rule.stream, Stream):
            return f"stale_data needs stream, one of {', '.join(Stream)}"
    elif rule.stream is not None:
        return f"a stream applies only to stale_data, not {kind}"
    return None


def _timing_problem(rule: AlertRule) -> str | None:
    if not isinstance(rule.mode, Mode):
        return f"mode must be once or recurring, got {rule.mode!r}"
    if not _is_int(rule.cooldown_s) or not 0 <= rule.cooldown_s <= MAX_COOLDOWN_S:
        return (
            f"cooldown_s must be whole seconds from 0 to {MAX_COOLDOWN_S} (30 days), "
            f"got {shorten(repr(rule.cooldown_s))}"
        )
    m = rule.rearm_margin
    if not isinstance(m, Decimal) or not m.is_finite() or not 0 <= m < 1:
        return f"rearm_margin must be a fraction from 0 up to (not including) 1, got {shorten(repr(m))}"
    if not has_places(m, REARM_MARGIN_DECIMALS):
        return f"rearm_margin takes at most {REARM_MARGIN_DECIMALS} decimals, got {shorten(m)}"
    for name in ("snooze_until", "expires_at", "last_fired_at"):
        value = getattr(rule, name)
        if value is not None and (not _is_int(value) or not 0 <= value <= MAX_TIME_MS):
            return (
                f"{name} must be a time in whole milliseconds since the epoch, up to "
                f"{MAX_TIME_MS} (year 9999), got {shorten(repr(value))}"
            )
    if not isinstance(rule.armed, bool):
        return f"armed must be true or false, got {rule.armed!r}"
    return None


def _enum(cls: type[StrEnum], name: str, value: Any) -> Any:
    if value is None or isinstance(value, cls):
        return value
    try:
        return cls(str(value).strip().lower())
    except ValueError:
        raise InvalidAlert(
            f"unknown {name} {shorten(repr(value))}; expected one of {', '.join(cls)}"
        ) from None


def _decimal(name: str, value: Any) -> Decimal:
    if isinstance(value, float):
        raise InvalidAlert(f"{name} must be given as a decimal string, not a float ({value!r})")
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InvalidAlert(f"{name} must be a decimal number, got {shorten(repr(value))}")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_NUMBER_CHARS or not _DECIMAL_TEXT.fullmatch(text):
            raise InvalidAlert(
                f"{name} must be a decimal number (a finite decimal in ASCII digits, at most "
                f"{MAX_NUMBER_CHARS} characters, e.g. 117000.5), got {shorten(repr(value))}"
            )
        value = text
    try:
        return Decimal(value)
    except InvalidOperation:  # an exponent beyond what Decimal holds: 1e99999999999999999999
        raise InvalidAlert(f"{name} must be a decimal number, got {shorten(repr(value))}") from None


def _int_or_none(name: str, value: Any) -> int | None:
    if value is None or _is_int(value):
        return value
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    raise InvalidAlert(f"{name} must be a whole number, got {shorten(repr(value))}")


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
