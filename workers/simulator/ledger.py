"""Simulated wallets: fills derived from the trade stream, positions that follow them.

Contract:

* :meth:`Ledger.apply` takes trades (wire dicts) and returns the ``WsFill`` dicts of every
  simulated user on either side, in trade order. A user is the taker (``crossed: true``)
  when it sits on the aggressor ``side`` of ``users`` (``[buyer, seller]``). Both sides
  of a trade between two simulated users get a fill with the same ``tid``.
* Positions are one-way, cross margin: a fill opens, adds to, reduces, closes or flips the
  position; the average entry price moves only when the position grows; realised PnL and
  fees go to the account's cash. ``closedPnl`` is before fees, as on Hyperliquid.
* :meth:`Ledger.clearinghouse_state` marks every position at the given mark prices and
  returns the ``clearinghouseState`` object of reference §2.9 (numbers as strings).
* Funding is charged on each hour boundary (:meth:`Ledger.charge_funding`); positive
  ``cumFunding`` means paid.
* :meth:`Ledger.liquidate` closes a wallet's position at the mark with a liquidation fill
  (reference §2.7 ``liquidation``: ``liquidatedUser``, ``markPx`` as a string, ``method``),
  so the alerts on liquidations can be exercised; the generated market never liquidates
  anyone by itself.
* Memory is bounded: each account keeps its ``fills_kept`` most recent fills (default
  :data:`FILLS_KEPT`), older ones are dropped as new ones arrive.

All arithmetic is Decimal; this path runs only for trades that touch a simulated user.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from workers.simulator.money import ZERO, dec_str, quantize
from workers.simulator.universe import Universe

Fill = dict[str, Any]  # the WsFill wire dict

TAKER_FEE = Decimal("0.00045")
MAKER_FEE = Decimal("0.00015")
DEFAULT_BALANCE = Decimal(100_000)
DEFAULT_LEVERAGE = 10
# Fills kept per wallet, newest last. userFills answers at most the 2,000 most recent, and
# each userFillsByTime page at most 2,000 (reference §7.5), so 2,000 serves every first page.
# The exchange keeps 10,000 reachable; keeping that many costs ~30 MB per busy wallet in a
# long run (dicts of strings), hence a small default and `hyperwatch simulate --fills-kept`.
FILLS_KEPT = 2_000
_USD_PLACES = 6
_FIRST_OID = 400_000_000_000
# Liquidation fills match no public trade here: their tids count down from the top of the
# 50-bit range the exchange's tids live in, far from the generated trades' (random) ones.
_FIRST_LIQUIDATION_TID = 2**50 - 1


@dataclass
class _Position:
    szi: Decimal = ZERO
    entry_px: Decimal = ZERO
    funding_all_time: Decimal = ZERO
    funding_since_open: Decimal = ZERO
    funding_since_change: Decimal = ZERO


@dataclass
class _Account:
    cash: Decimal = DEFAULT_BALANCE
    positions: dict[str, _Position] = field(default_factory=dict)
    fills: deque[Fill] = field(default_factory=lambda: deque(maxlen=FILLS_KEPT))

    @classmethod
    def keeping(cls, fills_kept: int) -> _Account:
        return cls(fills=deque(maxlen=fills_kept))


def _direction(start: Decimal, end: Decimal, buy: bool) -> str:
    if start > 0 and end < 0:
        return "Long > Short"
    if start < 0 and end > 0:
        return "Short > Long"
    if buy:
        return "Close Short" if start < 0 else "Open Long"
    return "Close Long" if start > 0 else "Open Short"


class Ledger:
    """Accounts of the simulated users. Not thread-safe; one event loop owns it."""

    def __init__(
        self,
        universe: Universe,
        users: Iterable[str],
        leverage: int = DEFAULT_LEVERAGE,
        fills_kept: int = FILLS_KEPT,
    ) -> None:
        if fills_kept < 1:
            raise ValueError("fills_kept must be at least 1")
        self.universe = universe
        self.accounts: dict[str, _Account] = {user: _Account.keeping(fills_kept) for user in users}
        self.leverage = leverage
        self._next_oid = _FIRST_OID
        self._next_liquidation_tid = _FIRST_LIQUIDATION_TID
        self._taker_oids: dict[tuple[str, str], int] = {}

    @property
    def users(self) -> tuple[str, ...]:
        return tuple(self.accounts)

    def apply(self, trades: Iterable[Mapping[str, Any]]) -> list[tuple[str, Fill]]:
        """Fills (user, WsFill) for every simulated user in ``trades``."""
        if not self.accounts:
            return []
        out: list[tuple[str, Fill]] = []
        accounts = self.accounts
        for trade in trades:
            users = trade.get("users") or ()
            for index, user in enumerate(users):
                if user in accounts:
                    out.append((user, self._fill(user, trade, buyer=index == 0)))
        return out

    def _oid(self, user: str, trade: Mapping[str, Any], crossed: bool) -> int:
        # A taker's sweep is one order: every trade sharing its hash shares its oid.
        if crossed:
            key = (user, str(trade["hash"]))
            oid = self._taker_oids.get(key)
            if oid is not None:
                return oid
        self._next_oid += 1
        if crossed:
            if len(self._taker_oids) > 1024:
                self._taker_oids.clear()
            self._taker_oids[key] = self._next_oid
        return self._next_oid

    def _fill(self, user: str, trade: Mapping[str, Any], buyer: bool) -> Fill:
        coin = str(trade["coin"])
        px, sz = Decimal(trade["px"]), Decimal(trade["sz"])
        crossed = (trade["side"] == "B") == buyer
        account = self.accounts[user]
        position = account.positions.setdefault(coin, _Position())
        start = position.szi
        end = start + (sz if buyer else -sz)
        closed_pnl = self._move_position(position, start, end, px)
        fee = quantize(px * sz * (TAKER_FEE if crossed else MAKER_FEE), _USD_PLACES)
        account.cash += closed_pnl - fee
        fill: Fill = {
            "coin": coin,
            "px": trade["px"],
            "sz": trade["sz"],
            "side": "B" if buyer else "A",
            "time": trade["time"],
            "startPosition": dec_str(start),
            "dir": _direction(start, end, buyer),
            "closedPnl": dec_str(quantize(closed_pnl, _USD_PLACES)),
            "hash": trade["hash"],
            "oid": self._oid(user, trade, crossed),
            "crossed": crossed,
            "fee": dec_str(fee),
            "tid": trade["tid"],
            "feeToken": "USDC",
            "twapId": None,
        }
        account.fills.append(fill)
        return fill

    def liquidate(
        self, user: str, coin: str, mark: Decimal, time_ms: int, method: str = "market"
    ) -> Fill | None:
        """Close ``user``'s ``coin`` position at ``mark`` as a liquidation; the fill, or None
        when the user runs no open position there. Taker fee, realised PnL as any close."""
        account = self.accounts.get(user)
        position = account.positions.get(coin) if account else None
        if account is None or position is None or position.szi == 0:
            return None
        start = position.szi
        buyer = start < 0  # a short is bought back, a long sold
        size = abs(start)
        closed_pnl = self._move_position(position, start, ZERO, mark)
        fee = quantize(mark * size * TAKER_FEE, _USD_PLACES)
        account.cash += closed_pnl - fee
        self._next_oid += 1
        tid = self._next_liquidation_tid
        self._next_liquidation_tid -= 1
        fill: Fill = {
            "coin": coin,
            "px": dec_str(mark),
            "sz": dec_str(size),
            "side": "B" if buyer else "A",
            "time": time_ms,
            "startPosition": dec_str(start),
            "dir": _direction(start, ZERO, buyer),
            "closedPnl": dec_str(quantize(closed_pnl, _USD_PLACES)),
            "hash": f"0x{tid:064x}",
            "oid": self._next_oid,
            "crossed": True,
            "fee": dec_str(fee),
            "tid": tid,
            "feeToken": "USDC",
            "liquidation": {"liquidatedUser": user, "markPx": dec_str(mark), "method": method},
            "twapId": None,
        }
        account.fills.append(fill)
        return fill

    @staticmethod
    def _move_position(position: _Position, start: Decimal, end: Decimal, px: Decimal) -> Decimal:
        """Update size and entry; return the realised PnL of the closed part."""
        closed_pnl = ZERO
        if start == 0 or (start > 0) == (end > start):
            # Opening or adding: the entry is the size-weighted average.
            added = abs(end - start)
            position.entry_px = (abs(start) * position.entry_px + added * px) / abs(end)
        else:
            closed = min(abs(start), abs(end - start))
            closed_pnl = closed * (px - position.entry_px) * (1 if start > 0 else -1)
            if end == 0:
                position.entry_px = ZERO
            elif (end > 0) != (start > 0):
                position.entry_px = px  # flipped: the new side opened at this price
        if end == 0 or (start == 0) or (end > 0) != (start > 0):
            position.funding_since_open = ZERO
        position.funding_since_change = ZERO
        position.szi = end
        return closed_pnl

    def charge_funding(self, rates: Mapping[str, Decimal], oracle: Mapping[str, Decimal]) -> None:
        """Hourly funding: longs pay shorts when the rate is positive (payment = szi * oracle * rate)."""
        for account in self.accounts.values():
            for coin, position in account.positions.items():
                if position.szi == 0 or coin not in rates or coin not in oracle:
                    continue
                paid = quantize(position.szi * oracle[coin] * rates[coin], _USD_PLACES)
                account.cash -= paid
                position.funding_all_time += paid
                position.funding_since_open += paid
                position.funding_since_change += paid

    # --- reads -------------------------------------------------------------------------

    def fills(self, user: str) -> list[Fill]:
        """The user's kept fills, oldest first (empty for a wallet the simulator does not run)."""
        account = self.accounts.get(user)
        return list(account.fills) if account else []

    def clearinghouse_state(
        self, user: str, marks: Mapping[str, Decimal], time_ms: int
    ) -> dict[str, Any]:
        """The §2.9 inner object for ``user`` marked at ``marks``; any other address is empty."""
        account = self.accounts.get(user) or _Account(cash=ZERO)
        entries: list[dict[str, Any]] = []
        total_ntl = total_margin = maintenance = upnl_sum = signed_ntl = ZERO
        open_positions = [(c, p) for c, p in account.positions.items() if p.szi != 0]
        for coin, position in open_positions:
            mark = marks.get(coin, position.entry_px)
            value = abs(position.szi) * mark
            upnl = position.szi * (mark - position.entry_px)
            total_ntl += value
            signed_ntl += position.szi * mark
            upnl_sum += upnl
            spec = self.universe.get(coin)
            max_leverage = spec.max_leverage if spec else self.leverage
            leverage = min(self.leverage, max_leverage)
            margin = value / leverage
            total_margin += margin
            maintenance += value / (2 * max_leverage)
            entries.append(
                {
                    "coin": coin,
                    "position": position,
                    "mark": mark,
                    "value": value,
                    "upnl": upnl,
                    "leverage": leverage,
                    "margin": margin,
                    "max_leverage": max_leverage,
                }
            )
        account_value = account.cash + upnl_sum
        asset_positions = [self._position_json(e, account_value, maintenance) for e in entries]
        summary = {
            "accountValue": dec_str(quantize(account_value, _USD_PLACES)),
            "totalNtlPos": dec_str(quantize(total_ntl, _USD_PLACES)),
            "totalRawUsd": dec_str(quantize(account_value - signed_ntl, _USD_PLACES)),
            "totalMarginUsed": dec_str(quantize(total_margin, _USD_PLACES)),
        }
        return {
            "marginSummary": summary,
            "crossMarginSummary": dict(summary),
            "crossMaintenanceMarginUsed": dec_str(quantize(maintenance, _USD_PLACES)),
            "withdrawable": dec_str(quantize(max(ZERO, account_value - total_margin), _USD_PLACES)),
            "assetPositions": asset_positions,
            "time": time_ms,
        }

    @staticmethod
    def _position_json(
        entry: dict[str, Any], account_value: Decimal, maintenance: Decimal
    ) -> dict[str, Any]:
        position: _Position = entry["position"]
        szi, mark = position.szi, entry["mark"]
        # Cross margin, one position moving alone: liquidation where the account value
        # falls to the maintenance requirement. A long with enough collateral has none.
        liq = mark - (account_value - maintenance) / szi
        initial = abs(szi) * position.entry_px / entry["leverage"]
        roe = entry["upnl"] / initial if initial else ZERO
        return {
            "type": "oneWay",
            "position": {
                "coin": entry["coin"],
                "szi": dec_str(szi),
                "entryPx": dec_str(quantize(position.entry_px, 8)),
                "positionValue": dec_str(quantize(entry["value"], _USD_PLACES)),
                "unrealizedPnl": dec_str(quantize(entry["upnl"], _USD_PLACES)),
                "returnOnEquity": dec_str(quantize(roe, 10)),
                "liquidationPx": dec_str(quantize(liq, 8)) if liq > 0 else None,
                "leverage": {"type": "cross", "value": entry["leverage"]},
                "marginUsed": dec_str(quantize(entry["margin"], _USD_PLACES)),
                "maxLeverage": entry["max_leverage"],
                "cumFunding": {
                    "allTime": dec_str(position.funding_all_time),
                    "sinceOpen": dec_str(position.funding_since_open),
                    "sinceChange": dec_str(position.funding_since_change),
                },
            },
        }
