"""New listings and delistings without a restart: ``meta`` re-read on a thread of its own.

With ``COINS=all`` the ingester subscribes every listed perp of its shard at start. Every
``INGEST_META_REFRESH_S`` this thread asks ``/info`` ``meta`` again (weight 20, taken from
the REST budget every process shares, at routine priority, so it never crowds out
healing or position polls), keeps the shard's coins, and hands the difference to the
sockets (:class:`~workers.ingester.planner.LivePlan` decides where a new coin goes): a
newly listed coin is subscribed on the live socket, a coin gone from the listed universe
(delisted or removed) is unsubscribed. The sockets apply the changes between frames; this
thread never touches a socket, and the socket threads never wait on HTTP.

A failed or refused read changes nothing and is retried at the next period (logged,
throttled). A reply that lists no coin at all is treated as a failed read, not as every
coin delisted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import httpx
import redis

from runtime.clock import Clock
from runtime.hyperliquid.universe import InfoUnavailable, fetch_universe
from runtime.lifecycle import join_in_slices
from runtime.rest_budget import BASE_WEIGHT, Priority, RestBudget
from workers.ingester.planner import ListingChanges, LivePlan, shard_coins
from workers.ingester.throttle import LogThrottle

log = logging.getLogger(__name__)


class MetaRefresher(threading.Thread):
    """Runs until :meth:`stop`; every wait is interruptible."""

    def __init__(
        self,
        info_url: str,
        interval_s: float,
        shard: tuple[int, int],
        live: LivePlan,
        apply: Callable[[ListingChanges], None],
        budget: RestBudget | None,
        clock: Clock,
        timeout_s: float = 10.0,
    ) -> None:
        super().__init__(name="ingest-meta", daemon=True)
        self._info_url = info_url
        self._interval_s = interval_s
        self._shard = shard
        self._live = live
        self._apply = apply
        self._budget = budget
        self._client = httpx.Client(timeout=timeout_s)
        self._stop_event = threading.Event()
        self._throttle = LogThrottle(log, clock)
        self.failure: BaseException | None = None

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop_event.set()
        join_in_slices(self, timeout_s)  # called on the main thread: signals must get through

    def run(self) -> None:
        try:
            while not self._stop_event.wait(self._interval_s):
                self.refresh_once()
        except BaseException as exc:  # a bug here must stop the process, not just this thread
            self.failure = exc
            log.exception("meta refresher failed")
        finally:
            self._client.close()

    def refresh_once(self) -> ListingChanges | None:
        """One read of meta; the changes it caused (None when the read did not happen)."""
        if not self._take_budget():
            return None
        try:
            universe = fetch_universe(self._client, self._info_url)
        except InfoUnavailable as exc:
            self._throttle.log(logging.WARNING, "meta", "meta refresh failed: %s", exc)
            return None
        if not universe.listed:
            self._throttle.log(
                logging.WARNING, "meta-empty", "meta refresh listed no coin at all: ignored"
            )
            return None
        changes = self._live.update(shard_coins(universe.listed, self._shard))
        if changes:
            self._apply(changes)
        return changes

    def _take_budget(self) -> bool:
        if self._budget is None:
            return True
        try:
            if self._budget.take(BASE_WEIGHT, Priority.ROUTINE):
                return True
        except (redis.RedisError, OSError) as exc:
            self._throttle.log(
                logging.WARNING, "budget", "REST budget unreadable (Redis), meta not read: %s", exc
            )
            return False
        self._throttle.log(
            logging.INFO, "budget-spent", "REST budget spent this minute: meta read postponed"
        )
        return False
