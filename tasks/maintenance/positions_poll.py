"""Positions of tracked wallets beyond the WebSocket users, polled over REST: the one poller.

Which wallets: ``TRACKED_WALLETS`` and the database's tracked wallets, minus those an
ingester follows over WebSocket (``runtime.wallets``: up to ``WS_USER_LIMIT`` of
``TRACKED_WALLETS`` per shard). Nothing else polls positions: the ingesters do not (with a
leader and standbys side by side they would each poll), so this beat job, run by one worker
at a time, is the only spender of ``clearinghouseState`` weight.

One run (beat sends one every ``position_poll_tick_s``: half of ``POSITION_POLL_HOT_S``):

1. takes ``keys.POLL_LOCK`` (an owner token, :data:`LOCK_TTL_S`, renewed while it polls); a
   run that finds it held returns at once, so two runs never poll the same wallets — a
   worker busy with a slow run simply skips the next ones;
2. ranks the wallets (:mod:`tasks.maintenance.poll_schedule`): hot, active, idle, from
   the active wallet alerts and the shared market view (last known liquidation distance),
   the newest fill in ``user_fills`` and the per-wallet state in ``keys.POLL_WALLETS``;
3. polls the due ones, most urgent first, up to the run's allowance (the positions share of
   ``REST_WEIGHT_PER_MINUTE`` accrued since the previous run), each call taking its weight
   (2) from the budget every process shares (``runtime.rest_budget``) first;
   :data:`CONCURRENCY` calls at a time, no new call after :data:`MAX_RUN_S`;
4. stores the positions (a coin open in the newest stored snapshot and absent from a
   complete state is stored flat, as the ingester does for WebSocket states) and sends
   them to alert evaluation; writes each wallet's state back, the interval since its
   previous poll to ``hyperwatch_wallet_poll_interval_seconds{class}``, and the wallets and
   overdue wallets per class to ``keys.POLL_GAUGES`` (served by every worker's /metrics);
5. when the budget cannot cover every class at its cadence, logs a WARNING saying which
   cadence it can keep (at most every :data:`WARN_EVERY_S`, across workers).

Each ``POST {HL_INFO_URL} {"type": "clearinghouseState", ...}`` (weight 2) is parsed by the
ingester's own parser, so a polled position is exactly what the WebSocket would have
produced (strings → Decimal).

Errors are errors: an HTTP failure, a non-JSON or malformed reply is never read as "no
positions". The positions that *were* fetched are stored and evaluated, the failed wallet
is tried again after its cadence, and the task raises :class:`PollFailed` naming each one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import httpx
import redis
from celery import Task, shared_task

from domain.alerts.shared_state import SharedMarket
from events import Position, encode_batch
from models.db import Database, get_database
from models.repositories import PollingRepository, PositionRepository, TrackedWalletRepository
from runtime import keys
from runtime.clock import SYSTEM_CLOCK, Clock
from runtime.hyperliquid.positions import flat_position
from runtime.hyperliquid.protocol import parse_clearinghouse_state
from runtime.hyperliquid.rest import InfoCallFailed, post_info
from runtime.metrics import WALLET_POLL_OVERDUE, WALLET_POLL_WALLETS
from runtime.metrics_export import (
    POLL_GAUGES_KEY,
    count_rows,
    observe_poll_interval,
    write_snapshot,
)
from runtime.redis_clients import cache_redis
from runtime.rest_budget import Priority, RestBudget
from runtime.wallets import polled_wallets
from settings import Settings
from tasks.maintenance.beat_guard import ScheduleLock, owner_id
from tasks.maintenance.poll_schedule import (
    CLASSES,
    LIQUIDATION_KIND,
    WEIGHT_PER_CALL,
    Cadence,
    CadenceClass,
    Candidate,
    WalletAlert,
    WalletState,
    alert_classes,
    allowance,
    classify,
    count_classes,
    due_wallets,
    fingerprint,
    liquidation_distance_pct,
    overdue,
    shortfall,
    state_after_poll,
)

log = logging.getLogger(__name__)

EVALUATE_TASK = "hyperwatch.alerts.evaluate"
SOURCE = "poll_positions"
LOCK_KEY: Final = keys.POLL_LOCK.name()
WALLETS_KEY: Final = keys.POLL_WALLETS.name()
RUN_KEY: Final = keys.POLL_RUN.name()
LOCK_TTL_S: Final = 60.0
MAX_RUN_S: Final = 30.0  # no call starts later; with the HTTP timeout, well inside the lock
CONCURRENCY: Final = 8  # calls in flight: 400 a minute at up to ~1 s each
WARN_EVERY_S: Final = 600
GAUGES_TTL_S: Final = 60.0
_ZERO = Decimal(0)


class PollFailed(RuntimeError):
    """At least one wallet's state could not be fetched or parsed."""


@dataclass
class PollResult:
    positions: list[Position] = field(default_factory=list)
    polled: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    deferred: list[str] = field(default_factory=list)  # due, but past this run's allowance
    stored: int = 0
    skipped: bool = False  # another run held the lock
    classes: dict[str, CadenceClass] = field(default_factory=dict)
    overdue: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        return {
            "polled": len(self.polled),
            "deferred": len(self.deferred),
            "failed": len(self.failed),
            "positions": len(self.positions),
            "stored": self.stored,
            "skipped": int(self.skipped),
        }


@dataclass(frozen=True)
class _Fetched:
    time_ms: int
    positions: list[Position]
    complete: bool


class PositionPoller:
    """One polling run. ``send`` publishes the positions batch for alert evaluation."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        http: httpx.Client,
        budget: RestBudget,
        send: Callable[[dict[str, Any]], None],
        cache: redis.Redis,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.database = database
        self.http = http
        self.budget = budget
        self.send = send
        self.cache = cache
        self._clock = clock
        self.cadence = Cadence.from_settings(settings)

    # --- one run ---------------------------------------------------------------------------
    def run(self) -> PollResult:
        lock = ScheduleLock(self.cache, LOCK_TTL_S, owner_id(), key=LOCK_KEY)
        if not lock.hold():
            log.debug("another position poll is running: this one skips")
            return PollResult(skipped=True)
        try:
            return self._run(lock)
        finally:
            try:
                lock.release()
            except (redis.RedisError, OSError) as exc:
                log.warning("poll lock not released (it expires by itself): %s", exc)

    def _run(self, lock: ScheduleLock) -> PollResult:
        now_ms = self._clock.time_ms()
        started = self._clock.monotonic()
        tick_s = self.settings.position_poll_tick_s
        wallets, wallet_alerts, fills = self._read_database(now_ms)
        states, previous_start, warned_ms = self._read_states(now_ms)
        classes = self._classify(wallets, wallet_alerts, fills, states, now_ms)
        candidates = due_wallets(classes, states, self.cadence, now_ms, int(tick_s * 500))
        elapsed = None if previous_start is None else (now_ms - previous_start) / 1000
        allowed = allowance(self.settings.rest_weight_per_minute, elapsed, tick_s)
        result = PollResult(classes=classes)
        fetched = self._poll(candidates[:allowed], result, lock, started)
        result.deferred += [c.wallet for c in candidates[allowed:]]
        result.positions = self._with_flats(fetched)
        if result.positions:
            self._store_and_send(result)
        result.overdue = overdue(candidates, result.polled, now_ms)
        self._write_states(wallets, states, classes, fetched, result, now_ms)
        self._report(result, now_ms, warned_ms)
        if result.failed:
            detail = "; ".join(f"{u}: {e}" for u, e in sorted(result.failed.items()))
            raise PollFailed(f"{len(result.failed)} wallet(s) not polled: {detail}")
        return result

    def _read_database(self, now_ms: int) -> tuple[list[str], list[WalletAlert], dict[str, int]]:
        since = now_ms - int(self.settings.position_poll_active_window_s * 1000)
        with self.database.session() as session:
            known = TrackedWalletRepository(session).all_addresses()
            wallets = polled_wallets(self.settings, known)
            polled = set(wallets)
            alerts = [
                WalletAlert(w.lower(), coin, kind, threshold)
                for w, coin, kind, threshold in PollingRepository(session).wallet_alerts()
                if w.lower() in polled
            ]
            fills = PollingRepository(session).newest_fills(wallets, since_ms=since)
        return wallets, alerts, fills

    def _read_states(self, now_ms: int) -> tuple[dict[str, WalletState], int | None, int | None]:
        # The run's start is the same reading its elapsed time is measured from: a later one
        # would shave the database reads off the next run's share of the budget.
        pipe = self.cache.pipeline(transaction=False)
        pipe.hgetall(WALLETS_KEY)
        pipe.hmget(RUN_KEY, ["started_ms", "warned_ms"])
        pipe.hset(RUN_KEY, "started_ms", now_ms)
        raw_states, (started, warned), _ = pipe.execute()
        states = {_text(k): WalletState.from_json(v) for k, v in raw_states.items()}
        return states, _int_or_none(started), _int_or_none(warned)

    def _classify(
        self,
        wallets: list[str],
        wallet_alerts: list[WalletAlert],
        fills: dict[str, int],
        states: dict[str, WalletState],
        now_ms: int,
    ) -> dict[str, CadenceClass]:
        distances: dict[tuple[str, str], Decimal | None] = {}
        pairs = sorted({(a.wallet, a.coin) for a in wallet_alerts if a.kind == LIQUIDATION_KIND})
        if pairs:
            market = SharedMarket(self.cache)
            positions = {(p.user.lower(), p.coin): p for p in market.positions(pairs)}
            marks = {c.coin: c.mark_px for c in market.contexts({coin for _w, coin in pairs})}
            for wallet, coin in pairs:
                distances[(wallet, coin)] = liquidation_distance_pct(
                    positions.get((wallet, coin)), marks.get(coin)
                )
        alerted = alert_classes(wallet_alerts, distances)
        window_ms = int(self.settings.position_poll_active_window_s * 1000)
        return {
            w: classify(w, states.get(w, WalletState()), alerted, fills, now_ms, window_ms)
            for w in wallets
        }

    def _poll(
        self, chosen: list[Candidate], result: PollResult, lock: ScheduleLock, started: float
    ) -> dict[str, _Fetched]:
        fetched: dict[str, _Fetched] = {}
        with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="poll") as pool:
            for index in range(0, len(chosen), CONCURRENCY):
                chunk = chosen[index : index + CONCURRENCY]
                late = self._clock.monotonic() - started > MAX_RUN_S
                if index and (late or not lock.hold()):
                    # Out of time, or the lock expired under us (a frozen worker): another
                    # run may be polling now, so stop rather than poll the same wallets.
                    result.deferred += [c.wallet for c in chosen[index:]]
                    break
                granted = []
                for candidate in chunk:
                    if not self.budget.take(WEIGHT_PER_CALL, Priority.POSITIONS):
                        break
                    granted.append(candidate.wallet)
                for wallet, outcome in zip(
                    granted, pool.map(self._fetch_or_error, granted), strict=True
                ):
                    if isinstance(outcome, _Fetched):
                        fetched[wallet] = outcome
                        result.polled.append(wallet)
                    else:
                        result.failed[wallet] = outcome
                if len(granted) < len(chunk):
                    result.deferred += [c.wallet for c in chosen[index + len(granted) :]]
                    log.debug(
                        "REST budget spent for this minute: %d wallets wait",
                        len(chosen) - index - len(granted),
                    )
                    break
        return fetched

    def _fetch_or_error(self, user: str) -> _Fetched | str:
        try:
            return self.fetch(user)
        except PollFailed as exc:
            return str(exc)

    def fetch(self, user: str) -> _Fetched:
        """One wallet's state (time, positions, complete); raises PollFailed."""
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
        return _Fetched(parsed.time_ms, positions, parsed.rejected == 0)

    def _with_flats(self, states: dict[str, _Fetched]) -> list[Position]:
        if not states:
            return []
        with self.database.session() as session:
            latest = PositionRepository(session).latest_for_users(list(states))
        open_before: dict[str, list[Any]] = {}
        for snap in latest:
            if snap.szi != _ZERO:
                open_before.setdefault(snap.user, []).append(snap)
        out: list[Position] = []
        for user, state in states.items():
            out += state.positions
            if not state.complete:
                continue  # an unparseable entry might be the "missing" coin: unknown, not flat
            now_open = {p.coin for p in state.positions}
            for snap in open_before.get(user, []):
                if snap.coin not in now_open and snap.time < state.time_ms:
                    out.append(flat_position(snap, state.time_ms))
        return out

    def _store_and_send(self, result: PollResult) -> None:
        with self.database.session() as session:
            stored = PositionRepository(session).add_batch(result.positions)
        count_rows("position_snapshots", stored.new, stored.duplicates)
        result.stored = stored.new
        self.send(encode_batch("positions", result.positions, source=SOURCE))

    def _write_states(
        self,
        wallets: list[str],
        states: dict[str, WalletState],
        classes: dict[str, CadenceClass],
        fetched: dict[str, _Fetched],
        result: PollResult,
        now_ms: int,
    ) -> None:
        updates: dict[str | bytes, bytes | float | int | str] = {}
        for wallet in [*result.polled, *result.failed]:
            before = states.get(wallet, WalletState())
            cadence_class = classes[wallet]
            got = fetched.get(wallet)
            digest = fingerprint(got.positions) if got is not None and got.complete else None
            after = state_after_poll(before, cadence_class, now_ms, got is not None, digest)
            updates[wallet] = after.to_json()
            if got is not None and before.last is not None:
                observe_poll_interval(cadence_class.value, (now_ms - before.last) / 1000)
        gone = set(states) - set(wallets)
        pipe = self.cache.pipeline(transaction=False)
        if updates:
            pipe.hset(WALLETS_KEY, mapping=updates)
        if gone:
            pipe.hdel(WALLETS_KEY, *sorted(gone))
        counts = count_classes(classes.values())
        samples = [
            *((WALLET_POLL_WALLETS.name, float(counts[c]), {"class": c.value}) for c in CLASSES),
            *(
                (WALLET_POLL_OVERDUE.name, float(n), {"class": c})
                for c, n in result.overdue.items()
            ),
        ]
        pipe.execute()
        write_snapshot(
            self.cache,
            samples,
            max(GAUGES_TTL_S, 3 * self.settings.position_poll_tick_s),
            POLL_GAUGES_KEY,
        )

    def _report(self, result: PollResult, now_ms: int, warned_ms: int | None) -> None:
        counts = count_classes(result.classes.values())
        short = shortfall(counts, self.cadence, self.settings.rest_weight_per_minute)
        if short is None:
            return
        if warned_ms is not None and now_ms - warned_ms < WARN_EVERY_S * 1000:
            return
        # Runs never overlap (the lock), so the time in Redis throttles across workers.
        self.cache.hset(RUN_KEY, "warned_ms", now_ms)
        log.warning(
            "%s; overdue now: %s",
            short.message(counts, self.cadence),
            ", ".join(f"{c} {n}" for c, n in result.overdue.items()),
        )


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _int_or_none(value: str | bytes | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def run_once(
    settings: Settings, send: Callable[[dict[str, Any]], None], clock: Clock = SYSTEM_CLOCK
) -> PollResult:
    """One run with its own Redis and HTTP clients (the task's body; benches call it)."""
    client = cache_redis(settings, timeout_s=5.0)
    timeout = httpx.Timeout(10.0, connect=5.0)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    try:
        with httpx.Client(timeout=timeout, limits=limits) as http:
            poller = PositionPoller(
                settings,
                get_database(settings),
                http,
                RestBudget(client, settings.rest_weight_per_minute, clock),
                send,
                client,
                clock,
            )
            return poller.run()
    finally:
        client.close()


@shared_task(bind=True, name="hyperwatch.maintenance.poll_positions", ignore_result=True)
def poll_positions(self: Task) -> dict[str, int]:
    """Queue maintenance, every ``position_poll_tick_s`` (see the module doc). Idempotent per
    state (positions key on (user, coin, time)). Not retried: a failed wallet is polled
    again after its cadence; the failure is raised so it is seen (Sentry, tasks_failed),
    never hidden as "no positions"."""

    def send(batch: dict[str, Any]) -> None:
        self.app.send_task(EVALUATE_TASK, args=[batch], queue="alerts", routing_key="alerts")

    return run_once(self.app.settings, send).summary()
