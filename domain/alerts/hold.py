"""Holds: an alert never fires on data that is stale or inside an open gap for its coin.

Pure: no I/O, no clock. The alert worker (``tasks.alerts.evaluate``) reads the inputs —
the shared seen times, the ingesters' open gaps (``keys.GAPS_OPEN``) — and asks here.

**What holds a rule.** Each kind reads some inputs (:func:`inputs_of`): price kinds the
mids (or, with ``price_source`` mark, the asset contexts), funding, open interest and the
mark behind a liquidation distance the asset contexts, liquidation distance also the
wallet's position. A rule is held while

- its coin has an open gap in the ingester's ``trades`` journal (the connection that
  carries the coin ended and no new trade has arrived since: anything may be missing), or
- one of its inputs is older than that input's hold threshold (:class:`HoldPolicy`:
  ``ALERT_HOLD_MIDS_S``, ``ALERT_HOLD_CONTEXTS_S``, ``ALERT_HOLD_POSITIONS_S`` — the last
  is the position cadence: a polled wallet that missed its polls).

Event kinds (whale trades, liquidations, position changes) have no input that can be
stale — a quiet market is not a stale one — so only an open gap holds them. ``stale_data``
alerts are never held: silence is what they report.

A held rule is skipped entirely: it neither fires nor re-arms. Nothing about it is lost:
the condition is judged again on the first fresh data (the next batch of its coin), and
fires then if it still holds.

**Coin holds** (:func:`coin_hold`) are what subscribers are told about: a coin is held
while it has an open gap, or while an input that its active alerts read is stale. ``since``
is when the data stopped: the moment the gap opened, or the time of the newest data of
the stale input (the moment a stream never seen since the view started is that start).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from domain.alerts.definition import (
    FUNDING_KINDS,
    PRICE_KINDS,
    AlertKind,
    AlertRule,
    PriceSource,
)
from domain.alerts.market_state import MarketState
from domain.alerts.view import Stream

log = logging.getLogger(__name__)

Input = Literal["mids", "asset_contexts", "positions"]
MARKET_INPUTS: Final[tuple[Input, ...]] = ("mids", "asset_contexts")
# The gap journal's field for a coin's trades (workers.ingester.gaps.journal_field).
_TRADES_FIELD_PREFIX: Final = "trades|"


@dataclass(frozen=True, slots=True)
class HoldPolicy:
    """How old each input may be before the alerts reading it are held (ms)."""

    mids_ms: int
    contexts_ms: int
    positions_ms: int

    def limit_ms(self, source: Input) -> int:
        if source == "mids":
            return self.mids_ms
        if source == "asset_contexts":
            return self.contexts_ms
        return self.positions_ms


@dataclass(frozen=True, slots=True)
class Hold:
    """Why a coin (or one rule) is held, and since when (ms)."""

    coin: str
    since_ms: int
    reason: str
    # A coin hold: the market inputs its alerts read (what must be fresh again to end it).
    needs: tuple[Input, ...] = ()

    def to_json(self) -> str:
        doc = {"coin": self.coin, "since": self.since_ms, "reason": self.reason}
        return json.dumps({**doc, "needs": list(self.needs)})

    @classmethod
    def from_json(cls, raw: str | bytes) -> Hold:
        doc = json.loads(raw)
        needs = tuple(n for n in doc.get("needs", ()) if n in MARKET_INPUTS)
        return cls(str(doc["coin"]), int(doc["since"]), str(doc["reason"]), needs)


def inputs_of(rule: AlertRule) -> tuple[Input, ...]:
    """The inputs ``rule``'s kind reads whose age can hold it (see module)."""
    return kind_inputs(rule.kind, rule.price_source)


def kind_inputs(kind: AlertKind, price_source: PriceSource) -> tuple[Input, ...]:
    if kind in PRICE_KINDS:
        return ("mids",) if price_source is PriceSource.MID else ("asset_contexts",)
    if kind is AlertKind.PRICE_MOVE_PCT:
        return ("mids",)
    if kind in FUNDING_KINDS or kind is AlertKind.OI_CHANGE_PCT:
        return ("asset_contexts",)
    if kind is AlertKind.LIQUIDATION_DISTANCE_BELOW:
        return ("asset_contexts", "positions")
    return ()


def is_holdable(rule: AlertRule) -> bool:
    return rule.kind is not AlertKind.STALE_DATA


def open_gaps(journals: Iterable[Mapping[bytes, bytes]]) -> dict[str, int]:
    """coin → when its oldest open ``trades`` gap opened (ms), from the gap journal hashes
    of every feed. A field that cannot be read is logged and skipped (it holds nothing:
    the other reasons still apply)."""
    out: dict[str, int] = {}
    for journal in journals:
        for raw_field, raw_doc in journal.items():
            name = raw_field.decode(errors="replace")
            if not name.startswith(_TRADES_FIELD_PREFIX):
                continue
            try:
                doc = json.loads(raw_doc)
                opened = int(doc.get("opened_at") or doc["from_ms"])
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("unreadable open gap %r in the gap journal; ignored", name)
                continue
            coin = name[len(_TRADES_FIELD_PREFIX) :]
            out[coin] = min(opened, out.get(coin, opened))
    return out


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def gap_hold(coin: str, opened_ms: int) -> Hold:
    return Hold(coin, opened_ms, f"the feed for {coin} was cut at {_iso(opened_ms)}")


def stale_hold(coin: str, source: Input, seen_ms: int) -> Hold:
    return Hold(coin, seen_ms, f"no {source} for {coin} since {_iso(seen_ms)}")


def _input_seen(rule: AlertRule, source: Input, view: MarketState) -> int | None:
    if source == "positions":
        return view.position_seen(rule.wallet or "", rule.coin)
    return view.last_seen(rule.coin, Stream(source))


def rule_hold(
    rule: AlertRule,
    view: MarketState,
    gaps: Mapping[str, int],
    policy: HoldPolicy,
    now_ms: int,
) -> Hold | None:
    """Why ``rule`` may not be judged at ``now_ms`` (None: it may). An input the view does
    not hold at all is not a hold: the judgement already finds it unknown."""
    if not is_holdable(rule):
        return None
    opened = gaps.get(rule.coin)
    if opened is not None:
        return gap_hold(rule.coin, opened)
    for source in inputs_of(rule):
        seen = _input_seen(rule, source, view)
        if seen is not None and now_ms - seen > policy.limit_ms(source):
            return stale_hold(rule.coin, source, seen)
    return None


def coin_hold(
    coin: str,
    needs: Iterable[Input],
    seen: Mapping[Input, int | None],
    gap_opened: int | None,
    policy: HoldPolicy,
    started_ms: int,
    now_ms: int,
) -> Hold | None:
    """Whether ``coin`` is held for its subscribers (see module): ``needs`` are the market
    inputs its active alerts read, ``seen`` their newest times (None: never seen since the
    view started at ``started_ms``). Of several reasons, the one that began first."""
    wanted = tuple(s for s in MARKET_INPUTS if s in set(needs))
    reasons: list[Hold] = []
    if gap_opened is not None:
        reasons.append(gap_hold(coin, gap_opened))
    for source in wanted:
        last = seen.get(source)
        since = started_ms if last is None else last
        if now_ms - since > policy.limit_ms(source):
            reasons.append(stale_hold(coin, source, since))
    if not reasons:
        return None
    first = min(reasons, key=lambda h: h.since_ms)
    return Hold(coin, first.since_ms, first.reason, wanted)
