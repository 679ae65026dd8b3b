"""From the ingest queue to the alert workers: the few stored events an alert may want.

Trades are nearly all the volume, so their batches never go to the ``alerts`` queue. After
``hyperwatch.persist.trades`` commits, :func:`forward_new_trades` looks at the trades that
transaction inserted (``BulkResult.inserted``: a replayed or redelivered batch inserts
nothing, so nothing of it is forwarded twice) and sends on, as one ``trades`` batch to
``hyperwatch.alerts.evaluate``, those whose notional (``px x sz``) reaches the smallest
threshold of the armed ``whale_trade`` alerts on their coin. That floor per coin is kept in
the worker process, in an :class:`~domain.alerts.book.AlertBook` of just the forwarded
kinds, synced like the alert workers' books (``keys.ALERTS_VERSION`` and its change log) but
checked at most every :data:`REFRESH_S` — one Redis ``GET`` a second, not one per batch —
so a new or lowered whale alert is seen within that second. A trade on a coin without one,
or below the floor, costs a dictionary lookup and a comparison.

Likewise :func:`forward_new_fills` after ``hyperwatch.persist.fills``: inserted fills that
liquidated their own wallet, when that wallet has an armed ``wallet_liquidated`` alert on
the coin.

Best effort by design, never a reason to fail the stored batch: the rows are committed, and
a retry would insert nothing, so forward nothing. A Redis, database or broker error here is
logged and the events are not forwarded (an alert can miss them), as is an event stored
while the worker died between the commit and the send.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from typing import Any, Final

import kombu.exceptions
import redis
import sqlalchemy.exc

from domain.alerts.book import VERSION_KEY, AlertBook
from domain.alerts.definition import AlertKind
from domain.alerts.occurrence import liquidated_wallet
from events import EventKind, Fill, Trade, encode_batch
from runtime.redis_clients import cache_redis
from tasks.base import HyperwatchTask

log = logging.getLogger(__name__)

EVALUATE_TASK: Final = "hyperwatch.alerts.evaluate"
FORWARDED_KINDS: Final = frozenset({AlertKind.WHALE_TRADE, AlertKind.WALLET_LIQUIDATED})
# How stale the floors may be: a new whale alert is seen by the ingest workers this late.
REFRESH_S: Final = 1.0
_FAILURES: Final = (
    redis.RedisError,
    sqlalchemy.exc.SQLAlchemyError,
    kombu.exceptions.OperationalError,
    OSError,
)


class Forwarder:
    """One ingest worker process's view of the forwarded kinds' alerts. Thread-safe."""

    def __init__(self, task: HyperwatchTask) -> None:
        self.app = task.app
        self.settings = task.settings
        self.clock = task.clock
        self.database = task.database()
        self.book = AlertBook(self.clock, kinds=FORWARDED_KINDS)
        self.lock = threading.Lock()
        self._client: redis.Redis | None = None
        self._checked = -math.inf

    def _refresh(self) -> None:
        now = self.clock.monotonic()
        if now - self._checked < REFRESH_S:
            return
        self._checked = now
        if self._client is None:
            self._client = cache_redis(self.settings)
        version = self._client.get(VERSION_KEY)
        self.book.sync(self._client, self.database.session, int(version or 0))

    def whale_trades(self, inserted: Sequence[Trade]) -> list[Trade]:
        """The inserted trades that reach their coin's whale floor."""
        with self.lock:
            self._refresh()
            floors = self.book.floors(AlertKind.WHALE_TRADE)
        if not floors:
            return []
        out: list[Trade] = []
        for trade in inserted:
            floor = floors.get(trade.coin)
            if floor is not None and trade.px * trade.sz >= floor:
                out.append(trade)
        return out

    def liquidations(self, fills: Sequence[Fill], inserted: Sequence[Any]) -> list[Fill]:
        """The inserted fills that liquidated a wallet some armed alert watches on that coin."""
        own = [f for f in fills if liquidated_wallet(f) is not None]
        if not own:
            return []
        with self.lock:
            self._refresh()
            watched = {
                (rule.wallet, coin)
                for coin in {f.coin for f in own}
                for rule in self.book.event_rules(AlertKind.WALLET_LIQUIDATED, coin)
            }
        # The repository keys fills on the lowercased address.
        new = {(str(user).lower(), int(tid)) for user, tid in inserted}
        return [
            f
            for f in own
            if (f.user.lower(), f.tid) in new and (liquidated_wallet(f), f.coin) in watched
        ]

    def send(self, kind: EventKind, events: Sequence[Trade | Fill]) -> None:
        self.app.send_task(
            EVALUATE_TASK,
            args=[encode_batch(kind, events, source="forward")],
            queue="alerts",
            routing_key="alerts",
        )


def forwarder_for(task: HyperwatchTask) -> Forwarder:
    """This worker process's forwarder (built on first use, after fork)."""
    forwarder: Forwarder | None = getattr(task.app, "_hyperwatch_forwarder", None)
    if forwarder is None:
        forwarder = Forwarder(task)
        task.app._hyperwatch_forwarder = forwarder
    return forwarder


def forward_new_trades(task: HyperwatchTask, inserted: Sequence[Trade]) -> int:
    """After a trade batch committed: forward its new whale candidates (see module).
    Returns how many trades were forwarded."""
    if not inserted:
        return 0
    try:
        forwarder = forwarder_for(task)
        whales = forwarder.whale_trades(inserted)
        if whales:
            forwarder.send("trades", whales)
    except _FAILURES as exc:
        log.warning("new trades not checked for whale alerts: %s", exc)
        return 0
    return len(whales)


def forward_new_fills(task: HyperwatchTask, fills: Sequence[Fill], inserted: Sequence[Any]) -> int:
    """After a fill batch committed: forward its new liquidations (see module). Returns
    how many fills were forwarded."""
    if not inserted:
        return 0
    try:
        forwarder = forwarder_for(task)
        liquidated = forwarder.liquidations(fills, inserted)
        if liquidated:
            forwarder.send("fills", liquidated)
    except _FAILURES as exc:
        log.warning("new fills not checked for liquidation alerts: %s", exc)
        return 0
    return len(liquidated)
