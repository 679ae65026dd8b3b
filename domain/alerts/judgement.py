"""How one alert rule is judged against the market: pure, no I/O, no clock.

:func:`evaluate` and :func:`should_rearm` take the rule (``domain.alerts.definition``), any
:class:`~domain.alerts.view.MarketView` and ``now_ms`` (integer milliseconds since the
epoch) from the caller, and change nothing. The measured value of each kind and the
comparison with its threshold are the table in ``domain.alerts.definition``.

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

Event kinds (``definition.EVENT_KINDS``) are judged by :func:`evaluate_occurrence`, one
:class:`~domain.alerts.occurrence.Occurrence` at a time: the occurrence must be what the
rule watches (``occurrence.concerns``) and no older than ``max_age_ms`` (older is UNKNOWN:
a backlog or a late backfill does not notify about the past), and its notional must reach
``T``. There is no condition to be false by a margin, so a recurring event rule never
disarms and never re-arms: every event is an arm cycle of its own, held back only while the
rule cools down — counted in event time, ``last_fired_at + cooldown_s`` — and for an event
no newer than the last firing (a redelivered one). An event that happens while the rule is
snoozed is held and never fires later (it is not a state that can still be true).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow
from enum import StrEnum
from typing import Final

from domain.alerts.definition import (
    EVENT_KINDS,
    FUNDING_KINDS,
    PRICE_KINDS,
    REARM_PRECISION,
    WINDOW_KINDS,
    AlertKind,
    AlertRule,
    Direction,
    Mode,
    PriceSource,
    comparison,
)
from domain.alerts.occurrence import Occurrence, concerns
from domain.alerts.view import MarketView, Series, Stream, WindowRange

_HUNDRED: Final = Decimal(100)
# Traps Inexact too: a rounded re-arm level would be a bug in the bounds, not a value to use.
_EXACT: Final = Context(prec=REARM_PRECISION, traps=[InvalidOperation, Overflow, Inexact])


class Outcome(StrEnum):
    FIRE = "fire"  # condition true and the rule may fire now
    HOLD = "hold"  # condition true but not allowed: disarmed, snoozed, cooling down, expired
    CLEAR = "clear"  # condition known to be false
    UNKNOWN = "unknown"  # data missing or stale: never fires, never re-arms


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement of one rule at one moment.

    ``value`` is the measured quantity compared with the threshold (None when unknown);
    ``detail`` describes the measurement for humans (e.g. ``"up"``); ``reason`` says why a
    true condition is held back or why the value is unknown. ``occurrence``: the event an
    event kind was judged on (what its notification describes).
    """

    outcome: Outcome
    value: Decimal | None = None
    detail: str = ""
    reason: str = ""
    occurrence: Occurrence | None = None


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


def _measure_window(rule: AlertRule, state: MarketView, now_ms: int) -> _Reading:
    series = Series.MID if rule.kind is AlertKind.PRICE_MOVE_PCT else Series.OPEN_INTEREST
    window = state.window(rule.coin, series, (rule.window_s or 0) * 1000, now_ms)
    if window is None:
        return _unknown(f"no fresh {series} for {rule.coin}")
    move = _move_pct(window, rule.effective_direction)
    if move is None:
        return _unknown(f"{rule.coin} {series} has a zero reference, so a percentage is undefined")
    return _Reading(value=move[0], complete=window.covered, detail=move[1])


def _measure_liquidation(rule: AlertRule, state: MarketView, now_ms: int) -> _Reading:
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


def _measure(rule: AlertRule, state: MarketView, now_ms: int) -> _Reading:
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
    how = comparison(kind)
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


def evaluate(rule: AlertRule, state: MarketView, now_ms: int) -> Verdict:
    """Judge ``rule`` against ``state`` at ``now_ms``: FIRE, HOLD, CLEAR or UNKNOWN.

    FIRE only when the value is known and fresh, the condition holds, and the rule is armed,
    not expired, not snoozed and (recurring) out of its cooldown. The caller then disarms it
    with a conditional update; this function changes nothing.
    """
    if rule.kind in EVENT_KINDS:
        return Verdict(Outcome.UNKNOWN, reason=f"{rule.kind} is judged on events, not a state")
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
    # Exact whatever the caller's decimal context: a rule's threshold and margin are bounded
    # (definition: at most 19 and 6 significant digits), so the product and the sum have
    # far fewer digits than REARM_PRECISION — never rounded, never an overflow.
    band = _EXACT.multiply(rule.threshold.copy_abs(), rule.rearm_margin)
    if comparison(rule.kind) == "ge":
        return _EXACT.subtract(rule.threshold, band)
    return _EXACT.add(rule.threshold, band)


def rearm_satisfied(kind: AlertKind, value: Decimal, level: Decimal) -> bool:
    """Whether a measured ``value`` is far enough past ``rearm_level`` to re-arm."""
    how = comparison(kind)
    if how == "ge":
        return value < level
    if how == "le":
        return value > level
    return value >= level


def should_rearm(rule: AlertRule, state: MarketView, now_ms: int) -> bool:
    """True when a disarmed recurring, unexpired rule has seen its condition false by the
    margin, on a known and complete value. Cooldown does not delay re-arming; it delays the
    next firing (see :func:`evaluate`)."""
    if rule.armed or rule.mode is not Mode.RECURRING or rule.kind in EVENT_KINDS:
        return False
    if rule.expires_at is not None and now_ms >= rule.expires_at:
        return False
    reading = _measure(rule, state, now_ms)
    if reading.value is None or not reading.complete:
        return False
    return rearm_satisfied(rule.kind, reading.value, rearm_level(rule))


def _event_held_back(rule: AlertRule, event_ms: int, now_ms: int) -> str | None:
    if rule.expires_at is not None and now_ms >= rule.expires_at:
        return f"expired at {rule.expires_at}"
    if not rule.armed:
        return "already fired once" if rule.mode is Mode.ONCE else "disarmed"
    if rule.snooze_until is not None and now_ms < rule.snooze_until:
        return f"snoozed until {rule.snooze_until}"
    last = rule.last_fired_at
    if last is not None and event_ms <= last:
        return f"already fired on an event at or after {event_ms}"
    if rule.mode is Mode.RECURRING and last is not None:
        until = last + rule.cooldown_s * 1000
        if event_ms < until:
            return f"cooling down until {until}"
    return None


def evaluate_occurrence(
    rule: AlertRule, occurrence: Occurrence, now_ms: int, max_age_ms: int
) -> Verdict:
    """Judge an event kind's ``rule`` on one ``occurrence`` (see module): FIRE, HOLD, CLEAR
    (not what the rule watches, or below the threshold) or UNKNOWN (older than
    ``max_age_ms``). The value is the occurrence's notional; the verdict carries it."""
    if not concerns(rule, occurrence):
        return Verdict(Outcome.CLEAR, reason="not an event this alert watches")
    value = occurrence.notional
    detail = str(occurrence.change or occurrence.side)
    if now_ms - occurrence.time > max_age_ms:
        return Verdict(
            Outcome.UNKNOWN, value, detail, reason=f"the event is older than {max_age_ms} ms"
        )
    if not _holds(rule.kind, value, rule.threshold):
        return Verdict(Outcome.CLEAR, value, detail, occurrence=occurrence)
    held = _event_held_back(rule, occurrence.time, now_ms)
    if held is not None:
        return Verdict(Outcome.HOLD, value, detail, reason=held, occurrence=occurrence)
    return Verdict(Outcome.FIRE, value, detail, occurrence=occurrence)
