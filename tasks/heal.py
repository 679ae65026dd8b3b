"""Healing: fill closed gaps from what the exchange still serves over REST ``/info``.

``hyperwatch.maintenance.heal_gaps`` (queue maintenance, every ``HEAL_PERIOD`` from beat) takes the
oldest gaps that are closed but not yet settled (``GapRepository.to_heal``) and, inside the
shared REST budget at the highest priority (``runtime.rest_budget``):

- a coin's ``trades`` gap: ``recentTrades`` (the latest trades, no range, no paging). Its
  trades inside the window are stored through the same idempotent repository as live
  data (key (coin, time, tid); bars folded and tracked wallets' activity derived from new
  rows only). If the answer reaches back to the gap's start the window is proven
  complete: ``healed``; otherwise ``partial`` — REST can never reach further back, only
  an archive import can finish it. A partial gap keeps what REST does serve for it: the
  ``candleSnapshot`` 1m candles of the minutes wholly inside it (``rest_bars``, apart from
  the trade bars), and for a window spanning an hour, that hour's ``fundingHistory`` rate
  (``funding_rates``).
- a wallet's ``userFills`` gap: ``userFillsByTime`` from the gap's start to its end,
  paged (at most 2,000 a page, bounds inclusive, so a page boundary is re-read and the
  key (user, tid) absorbs it; a row derived from the public trade is completed). All pages
  read: ``healed``.

The order in which live, healed and archived rows arrive does not matter: they meet on one
key. A failed call leaves the gap ``open`` for the next run and is raised after the others
are done, so it is seen; when the budget runs out the rest waits for the next run.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
from celery import Task, shared_task

from events import Fill, Trade
from models.db import Database, get_database
from models.gap import Gap
from models.repositories import (
    FillRepository,
    GapRepository,
    RestHistoryRepository,
    TradeRepository,
)
from runtime.clock import Clock, SystemClock, utc_now
from runtime.hyperliquid import decoders
from runtime.hyperliquid.rest import InfoCallFailed, post_info
from runtime.metrics_export import count_rows
from runtime.redis_clients import cache_redis
from runtime.rest_budget import BASE_WEIGHT, Priority, RestBudget, items_weight
from runtime.tracked_wallets import TrackedWalletSet, tracked_wallet_set
from settings import Settings

log = logging.getLogger(__name__)

HEAL_LIMIT = 50  # gaps a run looks at; the rest wait for the next run
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
FILLS_PAGE = 2000  # userFillsByTime's most per call (reference §7.5)


class HealFailed(RuntimeError):
    """A call failed or its answer was not what the protocol promises."""


@dataclass(frozen=True, slots=True)
class Window:
    """What healing needs of a gap, read before the session that found it closes."""

    id: str
    stream: str
    key: str
    from_ms: int
    to_ms: int

    @classmethod
    def of(cls, gap: Gap) -> Window:
        assert gap.to_ms is not None
        return cls(gap.id, gap.stream, gap.key, gap.from_ms, gap.to_ms)


@dataclass
class HealResult:
    healed: int = 0
    partial: int = 0
    filled: int = 0
    deferred: int = 0
    failed: dict[str, str] = field(default_factory=dict)


class Healer:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        http: httpx.Client,
        budget: RestBudget,
        clock: Clock | None = None,
        wallets: TrackedWalletSet | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.http = http
        self.budget = budget
        self.clock = clock or SystemClock()
        # Healed trades record tracked wallets' activity as live ones do.
        self.wallets = wallets or tracked_wallet_set(settings)

    def run(self, limit: int = HEAL_LIMIT) -> HealResult:
        result = HealResult()
        with self.database.session() as session:
            windows = [Window.of(g) for g in GapRepository(session).to_heal(limit)]
        for i, window in enumerate(windows):
            if not self.budget.take(BASE_WEIGHT, Priority.HEAL):
                result.deferred = len(windows) - i
                break
            try:
                if window.stream == "trades":
                    status, filled = self.heal_trades(window)
                else:
                    status, filled = self.heal_fills(window)
            except HealFailed as exc:
                result.failed[window.id] = str(exc)
                continue
            with self.database.session() as session:
                GapRepository(session).settle(window.id, status, "rest", filled)
                session.commit()
            result.filled += filled
            if status == "healed":
                result.healed += 1
            else:
                result.partial += 1
        if result.deferred:
            log.info("REST budget spent: %d gap(s) wait for the next heal run", result.deferred)
        return result

    def post(self, body: dict[str, Any]) -> Any:
        try:
            return post_info(self.http, self.settings.hl_info_url, body)
        except InfoCallFailed as exc:
            raise HealFailed(f"{body['type']}: {exc}") from None

    def heal_trades(self, w: Window) -> tuple[str, int]:
        """``recentTrades`` for the coin; the trades inside the window are stored. What it
        cannot reach back to gets the window's 1m candles and hourly funding rates."""
        answer = self.post({"type": "recentTrades", "coin": w.key})
        if answer is None:  # the exchange's answer for a coin it has no trades of
            answer = []
        if not isinstance(answer, list):
            raise HealFailed(f"recentTrades {w.key}: expected a list, got {type(answer).__name__}")
        self.budget.charge(items_weight(len(answer)))
        trades = _decoded(answer, decoders.trade, f"recentTrades {w.key}")
        inside = [t for t in trades if w.from_ms <= t.time <= w.to_ms and t.coin == w.key]
        new = self._store_trades(inside)
        reaches_back = bool(trades) and min(t.time for t in trades) <= w.from_ms
        if not reaches_back:
            self.keep_candles(w)
        self.keep_funding(w)
        return ("healed" if reaches_back else "partial"), new

    def keep_candles(self, w: Window) -> int:
        """``candleSnapshot`` 1m of the minutes wholly inside the window, into ``rest_bars``
        (never into ``trade_bars``: models/rest_history.py says why). Supplementary: no
        budget or a failed call leaves the gap as it is."""
        first = -(-w.from_ms // MINUTE_MS) * MINUTE_MS  # the first minute starting inside
        last = (w.to_ms // MINUTE_MS) * MINUTE_MS  # minutes must also end inside
        if first >= last or not self.budget.take(BASE_WEIGHT, Priority.HEAL):
            return 0
        req = {"coin": w.key, "interval": "1m", "startTime": first, "endTime": last - 1}
        try:
            answer = self.post({"type": "candleSnapshot", "req": req})
        except HealFailed as exc:
            log.warning("candles for gap %s not kept: %s", w.id, exc)
            return 0
        rows = []
        for candle in answer if isinstance(answer, list) else []:
            try:
                row = _candle_row(w.key, candle, utc_now(self.clock))
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("candleSnapshot %s: malformed candle skipped: %s", w.key, exc)
                continue
            if first <= row["minute"] and row["minute"] + MINUTE_MS <= w.to_ms:
                rows.append(row)
        self.budget.charge(items_weight(len(rows), per=60))
        with self.database.session() as session:
            new = RestHistoryRepository(session).add_bars(rows)
            session.commit()
        return new

    def keep_funding(self, w: Window) -> int:
        """``fundingHistory`` for the hours the window spans, into ``funding_rates``."""
        if w.from_ms // HOUR_MS == w.to_ms // HOUR_MS:
            return 0  # funding settles on the hour: a window inside one hour holds none
        if not self.budget.take(BASE_WEIGHT, Priority.HEAL):
            return 0
        body = {"type": "fundingHistory", "coin": w.key, "startTime": w.from_ms, "endTime": w.to_ms}
        try:
            answer = self.post(body)
        except HealFailed as exc:
            log.warning("funding for gap %s not kept: %s", w.id, exc)
            return 0
        rows = []
        for item in answer if isinstance(answer, list) else []:
            try:
                rows.append(
                    {
                        "coin": decoders.coin_name(item["coin"]),
                        "time": decoders.nat(item["time"]),
                        "rate": decoders.dec(item["fundingRate"]),
                        "premium": decoders.opt_dec(item.get("premium")),
                    }
                )
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("fundingHistory %s: malformed row skipped: %s", w.key, exc)
        self.budget.charge(items_weight(len(rows)))
        with self.database.session() as session:
            new = RestHistoryRepository(session).add_funding(
                [r for r in rows if r["coin"] == w.key]
            )
            session.commit()
        return new

    def heal_fills(self, w: Window) -> tuple[str, int]:
        """``userFillsByTime`` over the window, page by page."""
        start, new = w.from_ms, 0
        while True:
            body = {
                "type": "userFillsByTime",
                "user": w.key,
                "startTime": start,
                "endTime": w.to_ms,
                "aggregateByTime": False,
            }
            answer = self.post(body)
            if not isinstance(answer, list):
                raise HealFailed(f"userFillsByTime {w.key}: expected a list")
            self.budget.charge(items_weight(len(answer)))
            fills = _decoded(answer, lambda x: decoders.fill(w.key, x), f"fills {w.key}")
            new += self._store_fills(fills)
            if len(answer) < FILLS_PAGE or not fills:
                return "healed", new
            last = max(f.time for f in fills)
            if last <= start:  # a whole page in one millisecond: cannot page further
                return "partial", new
            if not self.budget.take(BASE_WEIGHT, Priority.HEAL):
                raise HealFailed(f"userFillsByTime {w.key}: REST budget spent mid-way")
            start = last

    def _store_trades(self, trades: list[Trade]) -> int:
        if not trades:
            return 0
        with self.database.session() as session:
            wallets = self.wallets.current(session)
            result = TradeRepository(session).add_batch(trades, fold_bars=True, wallets=wallets)
            session.commit()
        count_rows("trade_snapshots", result.new, result.duplicates)
        count_rows("user_fills", result.activity, result.activity_duplicates)
        return result.new

    def _store_fills(self, fills: list[Fill]) -> int:
        if not fills:
            return 0
        with self.database.session() as session:
            result = FillRepository(session).add_batch(fills)
            session.commit()
        count_rows("user_fills", result.new, result.duplicates)
        return result.new


def _candle_row(coin: str, c: dict[str, Any], fetched_at: dt.datetime) -> dict[str, Any]:
    """A ``candleSnapshot`` element (reference §2.6: strings for prices and volume)."""
    if c.get("s", coin) != coin or c.get("i", "1m") != "1m":
        raise ValueError(f"not a 1m candle of {coin}: {c.get('s')!r} {c.get('i')!r}")
    return {
        "coin": coin,
        "minute": decoders.nat(c["t"]),
        "open": decoders.dec(c["o"]),
        "high": decoders.dec(c["h"]),
        "low": decoders.dec(c["l"]),
        "close": decoders.dec(c["c"]),
        "volume": decoders.dec(c["v"]),
        "trade_count": decoders.nat(c["n"]),
        "fetched_at": fetched_at,
    }


def _decoded(items: list[Any], decode: Any, what: str) -> list[Any]:
    """Decode each element; a malformed one is logged and skipped, never read as absent
    data (the gap then stays short of ``healed`` only if the decoded ones do not reach)."""
    out = []
    for item in items:
        try:
            out.append(decode(item))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("%s: malformed element skipped: %s", what, exc)
    return out


@shared_task(bind=True, name="hyperwatch.maintenance.heal_gaps", ignore_result=True)
def heal_gaps(self: Task) -> dict[str, int]:
    """Queue maintenance, every ``HEAL_PERIOD``. Idempotent (rows key as live data does; a
    gap's status only moves forward). Not retried: an unhealed gap is taken again next run;
    failures are raised after the run so they are seen."""
    settings: Settings = self.app.settings
    client = cache_redis(settings, timeout_s=5.0)
    try:
        with httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0)) as http:
            result = Healer(
                settings,
                get_database(settings),
                http,
                RestBudget(client, settings.rest_weight_per_minute),
            ).run()
    finally:
        client.close()
    if result.failed:
        detail = "; ".join(f"{gid}: {why}" for gid, why in sorted(result.failed.items()))
        raise HealFailed(f"{len(result.failed)} gap(s) not healed: {detail}")
    return {
        "healed": result.healed,
        "partial": result.partial,
        "filled": result.filled,
        "deferred": result.deferred,
    }
