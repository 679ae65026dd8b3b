"""REST polling of positions for tracked wallets beyond the WebSocket user limit.

The exchange tracks at most 10 users per IP over WebSocket (reference §1.6); the rest are
polled with ``clearinghouseState`` (weight 2) every ``interval_s``, inside a REST weight
budget per minute shared with every other process through Redis (``runtime.rest_budget``,
at the positions priority). When the budget cannot cover every wallet each interval the cycle
simply stretches (logged once). A failed call yields *nothing* — never an empty position
list, which downstream would read as "flat" and alert on (architecture, "what peers got
wrong"). Parsed states go to the pipeline through its thread-safe inbox.

Logging: a routine poll logs nothing at INFO (httpx's line per request is DEBUG, see
``runtime.observability``); failures are WARNINGs (throttled), and the first success after
a failure says so at INFO.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import httpx
import redis

from runtime.clock import Clock
from runtime.hyperliquid.protocol import ParsedFrame, parse_clearinghouse_state
from runtime.lifecycle import join_in_slices
from runtime.rest_budget import SHARE, Priority, RestBudget
from workers.ingester.throttle import LogThrottle

log = logging.getLogger(__name__)

WEIGHT = 2
BUDGET_RETRY_S = 1.0  # the window is per minute; a second is a fine grain to wait in


class PositionPoller(threading.Thread):
    """Runs until :meth:`stop`; every wait is interruptible."""

    def __init__(
        self,
        wallets: list[str],
        info_url: str,
        interval_s: float,
        budget: RestBudget,
        deliver: Callable[[str, ParsedFrame], None],
        clock: Clock,
        timeout_s: float = 10.0,
    ) -> None:
        super().__init__(name="ingest-poller", daemon=True)
        self._wallets = wallets
        self._info_url = info_url
        self._interval_s = interval_s
        self._budget = budget
        self._deliver = deliver
        self._clock = clock
        self._client = httpx.Client(timeout=timeout_s)
        self._stop_event = threading.Event()
        self._throttle = LogThrottle(log, clock)
        self._failing = False
        needed = len(wallets) * WEIGHT * 60.0 / interval_s
        weight_per_minute = int(budget.per_minute * SHARE[Priority.POSITIONS])
        if needed > weight_per_minute:
            log.warning(
                "%d polled wallets need %.0f REST weight a minute at %.0f s; budget is %d: "
                "each cycle will take longer than POSITION_POLL_INTERVAL_S",
                len(wallets),
                needed,
                interval_s,
                weight_per_minute,
            )

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop_event.set()
        join_in_slices(self, timeout_s)  # called on the main thread: signals must get through

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                started = self._clock.monotonic()
                for wallet in self._wallets:
                    if not self._take_budget():
                        return
                    self.poll_one(wallet)
                rest = self._interval_s - (self._clock.monotonic() - started)
                if rest > 0 and self._stop_event.wait(rest):
                    return
        finally:
            self._client.close()

    def _take_budget(self) -> bool:
        """Wait for weight in the shared budget (every process's /info calls share it)."""
        while True:
            try:
                if self._budget.take(WEIGHT, Priority.POSITIONS):
                    return True
            except (redis.RedisError, OSError) as exc:
                self._throttle.log(
                    logging.WARNING, "budget", "REST budget unreadable (Redis): %s", exc
                )
            if self._stop_event.wait(BUDGET_RETRY_S):
                return False

    def poll_one(self, wallet: str) -> bool:
        """Fetch and deliver one wallet's state; False (and nothing delivered) on failure."""
        try:
            response = self._client.post(
                self._info_url, json={"type": "clearinghouseState", "user": wallet}
            )
            response.raise_for_status()
            state = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            self._failing = True
            self._throttle.log(
                logging.WARNING, "poll", "position poll of %s failed: %s", wallet, exc
            )
            return False
        pf = parse_clearinghouse_state(wallet, state, response.content, "clearinghouseState")
        if pf.kind != "data":
            self._failing = True
            self._throttle.log(
                logging.WARNING, "poll-bad", "bad clearinghouseState for %s: %s", wallet, pf.detail
            )
            return False
        if self._failing:
            self._failing = False
            log.info("position polls answer again (%s)", wallet)
        self._deliver(wallet, pf)
        return True
