"""Backtest: stored market data replayed through the live rule and firing code. Pure.

:class:`Replay` takes rules (``domain.alerts.definition.AlertRule``) and is fed events in
time order — :class:`events.AssetContext`, :class:`events.Mid`, :class:`events.Position`,
:class:`events.Trade` — as ``hyperwatch alerts backtest`` reads them from storage
(``models.repositories.market_history``). Each event is judged as the alert worker judges
a batch of that one event processed the moment it happened (``now`` = the event's time):

- the same view (:class:`~domain.alerts.market_state.MarketState`: staleness, windows from
  1-second buckets), the same holds (``domain.alerts.hold``: the stored gaps that were open
  at that moment, stale inputs), the same judgement (``judgement.evaluate``,
  ``should_rearm``, ``evaluate_occurrence``) and the same message (``firing.payload``);
- the database's claim, in memory: a firing disarms the rule (a ``once`` rule is done, a
  recurring event rule stays armed and counts its cooldown from the event), a re-arm needs
  data newer than the last firing — what ``AlertRepository.fire_many`` / ``rearm`` do.

Which stream drives which kind is the worker's (``tasks.alerts.evaluate``): mids the
mid-price kinds and ``price_move_pct``; asset contexts the mark-price, funding,
``oi_change_pct`` and liquidation-distance kinds; positions the wallet's liquidation
distance and its position changes; trades ``whale_trade``. ``stale_data`` (judged on the
clock, not on data) and ``wallet_liquidated`` (fills) are not replayed: the report says so.

Pure: the caller reads, feeds and prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Final

from domain.alerts.definition import (
    EVENT_KINDS,
    FUNDING_KINDS,
    PRICE_KINDS,
    AlertKind,
    AlertRule,
    Mode,
    PriceSource,
)
from domain.alerts.firing import Firing, idempotency_key, payload
from domain.alerts.hold import HoldPolicy, inputs_of, rule_hold
from domain.alerts.index import Purpose, ThresholdIndex, index_key
from domain.alerts.judgement import Outcome, evaluate, evaluate_occurrence, should_rearm
from domain.alerts.market_state import MarketState, Quote
from domain.alerts.occurrence import Occurrence, concerns, position_change, whale_trade
from domain.notify.digest import Member, build
from domain.notify.grouping import GroupModel, Windows
from events import AssetContext, Mid, Position, Trade
from runtime.hyperliquid.positions import flat_position

NOT_REPLAYED: Final = frozenset({AlertKind.STALE_DATA, AlertKind.WALLET_LIQUIDATED})
_STREAM: Final[dict[type, str]] = {
    Mid: "mids",
    AssetContext: "asset_contexts",
    Position: "positions",
}
Event = Mid | AssetContext | Position | Trade


@dataclass(frozen=True, slots=True)
class Gap:
    """A stored gap of one coin's trades: open from ``opened_ms`` until ``to_ms`` (None:
    never closed)."""

    coin: str
    opened_ms: int
    to_ms: int | None

    def open_at(self, t: int) -> bool:
        return self.opened_ms <= t and (self.to_ms is None or t < self.to_ms)


@dataclass(frozen=True, slots=True)
class Fired:
    """One firing the replay found: what the live system would have recorded and sent."""

    alert_id: int
    event_time: int
    kind: str
    coin: str
    value: str | None
    message: str
    idempotency_key: str
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "event_time": self.event_time,
            "kind": self.kind,
            "coin": self.coin,
            "value": self.value,
            "message": self.message,
            "idempotency_key": self.idempotency_key,
        }


@dataclass(slots=True)
class Report:
    events: int = 0
    fired: list[Fired] = field(default_factory=list)
    held: int = 0  # judgements skipped by a hold
    rearmed: int = 0
    not_replayed: list[int] = field(default_factory=list)  # rules of kinds not replayed


def _drives(event: Event, rule: AlertRule) -> bool:
    """Whether the worker judges ``rule`` on a batch of ``event``'s stream."""
    kind = rule.kind
    if isinstance(event, Mid):
        mid_price = kind in PRICE_KINDS and rule.price_source is PriceSource.MID
        return mid_price or kind is AlertKind.PRICE_MOVE_PCT
    if isinstance(event, AssetContext):
        mark_price = kind in PRICE_KINDS and rule.price_source is PriceSource.MARK
        return mark_price or kind in FUNDING_KINDS or kind in (
            AlertKind.OI_CHANGE_PCT, AlertKind.LIQUIDATION_DISTANCE_BELOW
        )  # fmt: skip
    if isinstance(event, Position):
        return kind is AlertKind.LIQUIDATION_DISTANCE_BELOW and (
            (rule.wallet or "").lower() == event.user.lower()
        )
    return False


class Replay:
    """Feed events in time order; read :attr:`report` (see module)."""

    def __init__(
        self,
        rules: Iterable[AlertRule],
        *,
        max_age_ms: int,
        position_max_age_ms: int,
        policy: HoldPolicy,
        gaps: Sequence[Gap] = (),
        history_ms: int = 86_400_000,
    ) -> None:
        self.report = Report()
        self.rules: dict[int, AlertRule] = {}
        self._by_coin: dict[str, list[int]] = {}
        # Event rules per (kind, coin), cheapest threshold first, as the worker's book keeps
        # them: an event is compared with the thresholds it reaches only.
        self._events: dict[tuple[AlertKind, str], list[tuple[Decimal, int]]] = {}
        # Price and funding rules in the worker's threshold indexes: an event judges only
        # the armed ones its value crosses and the disarmed ones past their re-arm level.
        self._fire_index = ThresholdIndex(Purpose.FIRE)
        self._rearm_index = ThresholdIndex(Purpose.REARM)
        for rule in rules:
            if rule.kind in NOT_REPLAYED:
                self.report.not_replayed.append(rule.id)
                continue
            self.rules[rule.id] = rule
            if rule.kind in EVENT_KINDS:
                self._events.setdefault((rule.kind, rule.coin), []).append(
                    (rule.threshold, rule.id)
                )
            elif index_key(rule) is not None:
                self._fire_index.add(rule)
                self._rearm_index.add(rule)
            else:
                self._by_coin.setdefault(rule.coin, []).append(rule.id)
        for ladder in self._events.values():
            ladder.sort()
        self._whale_floor = {
            coin: ladder[0][0]
            for (kind, coin), ladder in self._events.items()
            if kind is AlertKind.WHALE_TRADE
        }
        self.max_age_ms = max_age_ms
        self.position_max_age_ms = position_max_age_ms
        self.policy = policy
        self._gaps: dict[str, list[Gap]] = {}
        for gap in gaps:
            self._gaps.setdefault(gap.coin, []).append(gap)
        self.view = MarketState(
            max_age_ms=max_age_ms, position_max_age_ms=position_max_age_ms, history_ms=history_ms
        )
        self._drive_cache: dict[tuple[str, str], list[tuple[int, bool]]] = {}
        self._positions: dict[tuple[str, str], Position] = {}
        self._wallet_first: dict[str, int] = {}

    # --- feeding ---------------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        self.report.events += 1
        if isinstance(event, Trade):
            floor = self._whale_floor.get(event.coin)
            # The ingest workers' prefilter (tasks.alerts.forward): below every threshold.
            if floor is not None and event.px * event.sz >= floor:
                self._occurrences([whale_trade(event)], event.time)
            return
        before = self._replaced(event) if isinstance(event, Position) else None
        if not self.view.apply(event):
            return
        self._judge_states(event)
        if before is not None and isinstance(event, Position):
            change = position_change(before, event)
            if change is not None:
                self._occurrences([change], event.time)

    def feed_all(self, events: Iterable[Event]) -> Report:
        for event in events:
            self.feed(event)
        return self.report

    def _replaced(self, position: Position) -> Position | None:
        """The snapshot ``position`` replaces, as the shared view answers it: the previous
        one; or, for a coin first seen after the wallet's first state, a flat one."""
        wallet = position.user.lower()
        key = (wallet, position.coin)
        previous = self._positions.get(key)
        first = self._wallet_first.setdefault(wallet, position.time)
        if previous is not None and position.time < previous.time:
            return None
        self._positions[key] = position
        if previous is not None:
            return previous
        return flat_position(position, position.time) if position.time > first else None

    # --- judging ---------------------------------------------------------------------------

    def _gaps_open(self, coin: str, now_ms: int) -> dict[str, int]:
        for gap in self._gaps.get(coin, ()):
            if gap.open_at(now_ms):
                return {coin: gap.opened_ms}
        return {}

    def _driven(self, event: Mid | AssetContext | Position) -> list[tuple[int, bool]]:
        """(alert id, whether the event is its only input) of the rules a batch of
        ``event``'s stream drives on its coin; computed once per coin and stream."""
        stream = _STREAM[type(event)]
        key = (event.coin, stream)
        driven = self._drive_cache.get(key)
        if driven is None:
            driven = []
            for alert_id in self._by_coin.get(event.coin, ()):
                rule = self.rules.get(alert_id)
                if rule is not None and (stream == "positions" or _drives(event, rule)):
                    driven.append((alert_id, inputs_of(rule) == (stream,)))
            self._drive_cache[key] = driven
        return driven

    def _candidates(self, event: Mid | AssetContext | Position) -> list[tuple[int, bool]]:
        """The direct rules the event's stream drives, and the indexed ones its value
        crosses — as the worker's batch of this one event would find them."""
        driven = self._driven(event)
        now, coin = event.time, event.coin
        if isinstance(event, Mid):
            quote = Quote(mid=self.view.mid(coin, now), mark=None, funding=None)
        elif isinstance(event, AssetContext):
            mark, funding = self.view.mark(coin, now), self.view.funding(coin, now)
            quote = Quote(mid=None, mark=mark, funding=funding)
        else:
            return driven
        quotes = {coin: quote}
        crossed = self._fire_index.candidates_for_tick(quotes, direct=False)
        crossed += self._rearm_index.candidates_for_tick(quotes, direct=False)
        if not crossed:
            return driven
        return driven + [(i, True) for i in sorted(set(crossed))]

    def _place(self, rule: AlertRule | None, alert_id: int) -> None:
        """Keep the indexes where the worker's book would have the rule now."""
        self._fire_index.remove(alert_id)
        self._rearm_index.remove(alert_id)
        if rule is not None and index_key(rule) is not None:
            self._fire_index.add(rule)
            self._rearm_index.add(rule)

    def _judge_states(self, event: Mid | AssetContext | Position) -> None:
        now = event.time
        gaps = self._gaps_open(event.coin, now)
        for alert_id, only_this in self._candidates(event):
            rule = self.rules.get(alert_id)
            if rule is None or (isinstance(event, Position) and not _drives(event, rule)):
                continue
            if rule.expires_at is not None and now >= rule.expires_at:
                continue
            # The event is the rule's only input and is as old as now: only a gap holds it.
            if (gaps or not only_this) and rule_hold(
                rule, self.view, gaps, self.policy, now
            ) is not None:
                self.report.held += 1
                continue
            # As the worker: a disarmed rule cannot fire (evaluate would HOLD it), an armed
            # one cannot re-arm; so each asks only its own question.
            if rule.armed:
                verdict = evaluate(rule, self.view, now)
                if verdict.outcome is Outcome.FIRE:
                    self._fire(Firing(rule, verdict, None, now), now)
            elif should_rearm(rule, self.view, now) and (
                rule.last_fired_at is None or rule.last_fired_at < now
            ):
                self.rules[alert_id] = replace(rule, armed=True)
                self._place(self.rules[alert_id], alert_id)
                self.report.rearmed += 1

    def _occurrences(self, occurrences: Sequence[Occurrence], now: int) -> None:
        for occurrence in occurrences:
            gaps = self._gaps_open(occurrence.coin, now)
            for threshold, alert_id in self._events.get((occurrence.kind, occurrence.coin), ()):
                if threshold > occurrence.notional:
                    break  # cheapest first: none further on is reached either
                rule = self.rules.get(alert_id)
                if rule is None or not concerns(rule, occurrence):
                    continue
                if rule.expires_at is not None and now >= rule.expires_at:
                    continue
                if gaps:
                    self.report.held += 1
                    continue
                wallet_kind = rule.wallet is not None
                max_age = self.position_max_age_ms if wallet_kind else self.max_age_ms
                verdict = evaluate_occurrence(rule, occurrence, now, max_age)
                if verdict.outcome is Outcome.FIRE:
                    self._fire(Firing(rule, verdict, None, occurrence.time), now)

    def _fire(self, firing: Firing, now: int) -> None:
        rule = firing.rule
        fired_at = firing.fired_at(now)
        body = payload(firing, now)
        self.report.fired.append(
            Fired(
                alert_id=rule.id,
                event_time=fired_at,
                kind=str(rule.kind),
                coin=rule.coin,
                value=body["value"],
                message=str(body["message"]),
                idempotency_key=idempotency_key(rule.id, fired_at),
                payload=body,
            )
        )
        if rule.mode is Mode.ONCE:
            self.rules.pop(rule.id, None)
            self._place(None, rule.id)
            return
        # A recurring event rule stays armed (each event is its own arm cycle).
        armed = rule.kind in EVENT_KINDS
        self.rules[rule.id] = replace(rule, armed=armed, last_fired_at=fired_at)
        self._place(self.rules[rule.id], rule.id)


@dataclass(frozen=True, slots=True)
class Sent:
    """One message the channel would have received: a firing alone, or a digest."""

    at: int
    firings: tuple[Fired, ...]
    text: str

    @property
    def digest(self) -> bool:
        return len(self.firings) > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "digest": self.digest,
            "count": len(self.firings),
            "alert_ids": [f.alert_id for f in self.firings],
            "event_times": [f.event_time for f in self.firings],
            "message": self.text,
        }


def messages(fired: Sequence[Fired], windows: Windows, channel_kind: str) -> list[Sent]:
    """What one channel would have received for ``fired``: each firing offered for delivery
    the moment it happened, through the channel's grouping windows and budget
    (``GroupModel``, the in-memory twin of the workers' ``Gate``), digests when they were
    due (``domain.notify.digest`` builds their text)."""
    model = GroupModel(windows)
    by_id = {n: f for n, f in enumerate(sorted(fired, key=lambda f: f.event_time), 1)}
    out: list[Sent] = []

    def flush_due(until: int | None) -> None:
        while model.flush_at is not None and (until is None or model.flush_at <= until):
            at = model.flush_at
            decision = model.flush(at)
            if not decision.go:
                continue
            members = [by_id[m] for m in decision.members]
            model.settled(decision.members, [f.alert_id for f in members], at)
            out.append(_sent(at, members, channel_kind))

    for n, firing in by_id.items():
        flush_due(firing.event_time)
        if model.admit(n, firing.alert_id, firing.event_time).send:
            out.append(Sent(firing.event_time, (firing,), firing.message))
    flush_due(None)
    return out


def _sent(at: int, members: Sequence[Fired], channel_kind: str) -> Sent:
    if len(members) == 1:
        return Sent(at, (members[0],), members[0].message)
    parts = [Member(i, f.idempotency_key, f.payload, f.event_time) for i, f in enumerate(members)]
    text = str(build(0, channel_kind, parts, at)["message"])
    return Sent(at, tuple(members), text)
