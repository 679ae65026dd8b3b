"""What the event kinds judge: one :class:`Occurrence` per thing that happened. Pure.

An occurrence is made from the events that carry it, with its USD notional computed here,
exactly (Decimal), once:

- **whale trade** (:func:`whale_trade`): one public trade; notional ``px x sz``; the wallet
  is the taker (``users[0]`` when the aggressor side is ``B``, else ``users[1]``; reference
  §2.1), None when the feed did not name the users.
- **position change** (:func:`position_change`): two *consecutive* snapshots of one wallet's
  position in one coin, as the alert workers' shared view applied them (the one it held,
  the newer one that replaced it). Classified by the signed sizes ``before`` → ``after``:
  ``open`` (0 → x), ``close`` (x → 0), ``increase`` / ``reduce`` (same side, larger /
  smaller), ``flip`` (long ↔ short). The size of the change is ``|after - before|`` (a flip
  counts both sides), priced at the mark the snapshot implies — ``positionValue / |szi|``
  (Hyperliquid's ``positionValue`` is ``|szi| x mark``) of the newer snapshot, or of the
  older one for a close (a flat snapshot has no value). No change in size, no occurrence.
- **liquidation** (:func:`liquidations`): a wallet's own liquidation fills (a fill whose
  ``liquidation`` names that wallet as the liquidated user, or names nobody), summed per
  coin and time — one liquidation order fills in one block, often against several makers.
  A fill where the wallet was the *liquidator* (the object names another user) is not its
  liquidation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

from domain.alerts.definition import AlertKind, AlertRule, Direction
from events import Fill, Position, Trade

_ZERO: Final = Decimal(0)


class PositionChange(StrEnum):
    OPEN = "open"
    INCREASE = "increase"
    REDUCE = "reduce"
    CLOSE = "close"
    FLIP = "flip"


# Which changes a wallet_position_change alert's ``direction`` takes: up = the position grew
# on a side (a flip opens the other side), down = it shrank on a side (a flip closes one).
CHANGES_OF: Final[dict[Direction, frozenset[PositionChange]]] = {
    Direction.UP: frozenset({PositionChange.OPEN, PositionChange.INCREASE, PositionChange.FLIP}),
    Direction.DOWN: frozenset({PositionChange.REDUCE, PositionChange.CLOSE, PositionChange.FLIP}),
    Direction.ANY: frozenset(PositionChange),
}


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One thing that happened, as the event kinds judge it.

    ``wallet``: the trade's taker, or the wallet whose position changed or was liquidated.
    ``side``: ``buy`` / ``sell`` (the taker's) for a trade; ``long`` / ``short`` for a
    position (the side after the change, before it for a close) and for a liquidation (the
    side of the position liquidated). ``size`` is in base units, never negative; ``price``
    what it was valued at; ``notional`` = size x price in USD, what thresholds compare.
    """

    kind: AlertKind
    coin: str
    time: int
    wallet: str | None
    side: str
    size: Decimal
    price: Decimal
    notional: Decimal
    change: PositionChange | None = None
    size_before: Decimal | None = None  # position change: signed szi before and after
    size_after: Decimal | None = None
    method: str | None = None  # liquidation: "market", "backstop" (as the fill said)
    mark: Decimal | None = None  # liquidation: the mark price the fill carried


def whale_trade(trade: Trade) -> Occurrence:
    """A public trade as a whale-trade occurrence (any size: the threshold decides)."""
    buy = trade.side == "B"
    taker = trade.buyer if buy else trade.seller
    return Occurrence(
        kind=AlertKind.WHALE_TRADE,
        coin=trade.coin,
        time=trade.time,
        wallet=taker.lower() if taker else None,
        side="buy" if buy else "sell",
        size=trade.sz,
        price=trade.px,
        notional=trade.px * trade.sz,
    )


def _side(szi: Decimal) -> str:
    return "long" if szi > 0 else "short"


def _implied_mark(position: Position) -> Decimal:
    return position.position_value / abs(position.szi) if position.szi else _ZERO


def classify(before: Decimal, after: Decimal) -> PositionChange | None:
    """The change from signed size ``before`` to ``after``; None when the size is the same."""
    if before == after:
        return None
    if before == 0:
        return PositionChange.OPEN
    if after == 0:
        return PositionChange.CLOSE
    if (before > 0) != (after > 0):
        return PositionChange.FLIP
    return PositionChange.INCREASE if abs(after) > abs(before) else PositionChange.REDUCE


def position_change(before: Position, after: Position) -> Occurrence | None:
    """The change between two consecutive snapshots of one wallet's position in one coin
    (``after`` the newer); None when its size did not change (see module)."""
    change = classify(before.szi, after.szi)
    if change is None:
        return None
    size = abs(after.szi - before.szi)
    price = _implied_mark(after if after.szi else before)
    return Occurrence(
        kind=AlertKind.WALLET_POSITION_CHANGE,
        coin=after.coin,
        time=after.time,
        wallet=after.user.lower(),
        side=_side(after.szi if after.szi else before.szi),
        size=size,
        price=price,
        notional=size * price,
        change=change,
        size_before=before.szi,
        size_after=after.szi,
    )


def liquidated_wallet(fill: Fill) -> str | None:
    """The wallet a liquidation fill liquidated, if it is the fill's own (see module)."""
    if fill.liquidation is None:
        return None
    user = fill.user.lower()
    named = fill.liquidated_user
    return user if named is None or named.lower() == user else None


def liquidations(fills: Iterable[Fill]) -> list[Occurrence]:
    """The wallets' own liquidations among ``fills``: one occurrence per (wallet, coin,
    time), sizes and notionals summed, priced at the size-weighted average fill price."""
    groups: dict[tuple[str, str, int], list[Fill]] = {}
    for fill in fills:
        wallet = liquidated_wallet(fill)
        if wallet is not None:
            groups.setdefault((wallet, fill.coin, fill.time), []).append(fill)
    out: list[Occurrence] = []
    for (wallet, coin, time), group in groups.items():
        size = sum((f.sz for f in group), _ZERO)
        notional = sum((f.px * f.sz for f in group), _ZERO)
        first = group[0]
        out.append(
            Occurrence(
                kind=AlertKind.WALLET_LIQUIDATED,
                coin=coin,
                time=time,
                wallet=wallet,
                # Selling closes a long: a liquidated long shows as an "A" fill.
                side="long" if first.side == "A" else "short",
                size=size,
                price=notional / size if size else _ZERO,
                notional=notional,
                method=first.liquidation,
                mark=first.liquidation_mark_px,
            )
        )
    return out


def concerns(rule: AlertRule, occurrence: Occurrence) -> bool:
    """Whether ``occurrence`` is what ``rule`` watches — its kind, coin, wallet and, for a
    position change, a change its ``direction`` takes — whatever its size."""
    if rule.kind is not occurrence.kind or rule.coin != occurrence.coin:
        return False
    if rule.kind is AlertKind.WHALE_TRADE:
        return True
    if rule.wallet != occurrence.wallet:
        return False
    if rule.kind is AlertKind.WALLET_POSITION_CHANGE:
        return occurrence.change in CHANGES_OF[rule.effective_direction]
    return True
