"""Positions of tracked wallets beyond the WebSocket user limit, polled over REST.

Which wallets: ``TRACKED_WALLETS`` then the database's tracked wallets (oldest first),
minus the first ``WS_USER_LIMIT`` of ``TRACKED_WALLETS`` — those the ingester follows over
the WebSocket. Each is one ``POST {HL_INFO_URL} {"type": "clearinghouseState", ...}``
(weight 2) parsed by the ingester's own parser, so a polled position is exactly what the
WebSocket would have produced (strings → Decimal). A coin that was open in the wallet's
newest stored snapshot and is absent from a complete state is stored as flat (szi 0), as
the ingester does for WebSocket states: downstream must learn that a position closed.

Budget: every call takes weight from a per-minute window shared through Redis
(``keys.REST_WEIGHT``, limit ``REST_WEIGHT_PER_MINUTE``), so several workers — or
any other process using the same key — never exceed it together. When the budget runs out
the remaining wallets wait for the next run; the starting wallet rotates with every run,
so all of them are polled in turn.

Errors are errors: an HTTP failure, a non-JSON or malformed reply is never read as "no
positions". The positions that *were* fetched are stored and evaluated, then the task
raises :class:`PollFailed` naming each wallet that failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from celery import Task, shared_task

from events import Position, encode_batch
from models.db import Database, get_database
from models.repositories import PositionRepository, TrackedWalletRepository
from runtime.clock import SYSTEM_CLOCK, Clock
from runtime.hyperliquid.positions import flat_position
from runtime.hyperliquid.protocol import parse_clearinghouse_state
from runtime.hyperliquid.rest import InfoCallFailed, post_info
from runtime.metrics_export import count_rows
from runtime.redis_clients import quick_redis
from runtime.rest_budget import Priority, RestBudget
from settings import Settings

log = logging.getLogger(__name__)

WEIGHT_PER_CALL = 2
EVALUATE_TASK = "hyperwatch.alerts.evaluate"
SOURCE = "poll_positions"
_ZERO = Decimal(0)


class PollFailed(RuntimeError):
    """At least one wallet's state could not be fetched or parsed."""


@dataclass
class PollResult:
    positions: list[Position] = field(default_factory=list)
    polled: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    deferred: list[str] = field(default_factory=list)  # no budget left this run
    stored: int = 0


def wallets_to_poll(settings: Settings, database_wallets: Sequence[str]) -> list[str]:
    """Wallets tracked in the database (``hyperwatch wallets track``) that the ingester does
    not follow. The ingester owns every ``TRACKED_WALLETS`` address — over WebSocket up to
    ``WS_USER_LIMIT``, by its own REST poller beyond — so polling them here too would spend
    the exchange's REST weight twice for the same positions."""
    followed = set(settings.tracked_wallets)
    seen: set[str] = set()
    out: list[str] = []
    for address in (a.lower() for a in database_wallets):
        if address not in followed and address not in seen:
            seen.add(address)
            out.append(address)
    return out


def rotated(wallets: list[str], now_s: float, period_s: float, per_run: int) -> list[str]:
    """Start where the previous run's budget would have stopped, so every wallet gets turns."""
    if not wallets:
        return wallets
    start = (int(now_s // period_s) * per_run) % len(wallets)
    return wallets[start:] + wallets[:start]


class PositionPoller:
    """One polling run. ``send`` publishes the positions batch for alert evaluation."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        http: httpx.Client,
        budget: RestBudget,
        send: Callable[[dict[str, Any]], None],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.database = database
        self.http = http
        self.budget = budget
        self.send = send
        self._clock = clock

    def run(self) -> PollResult:
        result = PollResult()
        with self.database.session() as session:
            known = TrackedWalletRepository(session).all_addresses()
        period = self.settings.position_poll_interval_s
        per_run = max(1, int(self.settings.rest_weight_per_minute * period / 60) // WEIGHT_PER_CALL)
        states: dict[str, tuple[int, list[Position], bool]] = {}
        for user in rotated(
            wallets_to_poll(self.settings, known), self._clock.time(), period, per_run
        ):
            if not self.budget.take(WEIGHT_PER_CALL, Priority.POSITIONS):
                result.deferred.append(user)
                continue
            try:
                states[user] = self.fetch(user)
            except PollFailed as exc:
                result.failed[user] = str(exc)
                continue
            result.polled.append(user)
        if result.deferred:
            log.warning("REST budget spent: %d wallets wait for the next run", len(result.deferred))
        result.positions = self._with_flats(states)
        if result.positions:
            self._store_and_send(result)
        if result.failed:
            detail = "; ".join(f"{u}: {e}" for u, e in sorted(result.failed.items()))
            raise PollFailed(f"{len(result.failed)} wallet(s) not polled: {detail}")
        return result

    def fetch(self, user: str) -> tuple[int, list[Position], bool]:
        """(state time, positions, complete) for one wallet; raises PollFailed."""
        body = {"type": "clearinghouseState", "user": user, "dex": ""}
        try:
            state = post_info(self.http, self.settings.hl_info_url, body)
        except InfoCallFailed as exc:
            raise PollFailed(str(exc)) from None
        parsed = parse_clearinghouse_state(user, state, channel="clearinghouseState")
        if parsed.kind != "data" or parsed.time_ms is None:
            raise PollFailed(f"malformed clearinghouse state: {parsed.detail[:200]}")
        if parsed.rejected:
            log.warning("%s: %d position entries rejected as malformed", user, parsed.rejected)
        positions: list[Position] = parsed.events  # type: ignore[assignment]
        return parsed.time_ms, positions, parsed.rejected == 0

    def _with_flats(self, states: dict[str, tuple[int, list[Position], bool]]) -> list[Position]:
        if not states:
            return []
        with self.database.session() as session:
            latest = PositionRepository(session).latest_for_users(list(states))
        open_before: dict[str, list[Any]] = {}
        for snap in latest:
            if snap.szi != _ZERO:
                open_before.setdefault(snap.user, []).append(snap)
        out: list[Position] = []
        for user, (time_ms, positions, complete) in states.items():
            out += positions
            if not complete:
                continue  # an unparseable entry might be the "missing" coin: unknown, not flat
            now_open = {p.coin for p in positions}
            for snap in open_before.get(user, []):
                if snap.coin not in now_open and snap.time < time_ms:
                    out.append(flat_position(snap, time_ms))
        return out

    def _store_and_send(self, result: PollResult) -> None:
        with self.database.session() as session:
            stored = PositionRepository(session).add_batch(result.positions)
        count_rows("position_snapshots", stored.new, stored.duplicates)
        result.stored = stored.new
        self.send(encode_batch("positions", result.positions, source=SOURCE))


@shared_task(bind=True, name="hyperwatch.maintenance.poll_positions", ignore_result=True)
def poll_positions(self: Task) -> dict[str, int]:
    """Queue maintenance, every ``POSITION_POLL_INTERVAL_S``. Idempotent per state (positions
    key on (user, coin, time)). Not retried: a failed wallet is polled again next run; the
    failure is raised so it is seen (Sentry, tasks_failed), never hidden as "no positions"."""
    settings: Settings = self.app.settings
    client = quick_redis(settings.redis_url, timeout_s=5.0)

    def send(batch: dict[str, Any]) -> None:
        self.app.send_task(EVALUATE_TASK, args=[batch], queue="alerts", routing_key="alerts")

    timeout = httpx.Timeout(10.0, connect=5.0)
    try:
        with httpx.Client(timeout=timeout) as http:
            poller = PositionPoller(
                settings,
                get_database(settings),
                http,
                RestBudget(client, settings.rest_weight_per_minute),
                send,
            )
            result = poller.run()
    finally:
        client.close()
    return {
        "polled": len(result.polled),
        "deferred": len(result.deferred),
        "positions": len(result.positions),
        "stored": result.stored,
    }
