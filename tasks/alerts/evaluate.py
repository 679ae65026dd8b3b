"""The ``alerts`` queue: market batches → the alerts they make true → fired + outbox rows.

Tasks (shared contract in ``tasks/base.py``):

``hyperwatch.alerts.evaluate(batch)`` — queue ``alerts``; one ``mids``, ``asset_contexts``
or ``positions`` batch (``events.encode_batch``) as the ingester and the position poller
send it; or a ``trades`` / ``fills`` batch of events the ingest workers forward after
storing them (``tasks.alerts.forward``: trades that may be whale trades, liquidation fills).

1. The book (this worker's threshold indexes) is brought up to date when the Redis version
   key moved (``domain.alerts.book``).
2. The batch is applied to the shared market view in one atomic Lua call
   (``domain.alerts.shared_state``): per coin (per wallet and coin for positions) an event
   older than the newest already applied by *any* worker is skipped, so it is never
   evaluated.
3. Candidates: the threshold books the fresh values cross (binary search; cost grows with
   what fires, not with what exists), plus the coins' direct rules of the kinds this
   stream drives — ``mids``: price_move_pct; ``asset_contexts``: oi_change_pct and
   liquidation_distance_below (the mark moved); ``positions``: liquidation_distance_below
   of that wallet and coin. The index only narrows: every candidate is re-read from the
   database and judged by ``judgement.evaluate`` (snooze, cooldown, expiry, freshness). Missing
   or stale data is UNKNOWN and never fires. Before that, a rule whose data is stale or
   inside an open gap of its coin is held (``domain.alerts.hold``): skipped, judged again
   on the first fresh data. A batch whose coin was held and is fresh again ends the hold
   first ('restored' notices, ``domain.alerts.hold_notices``), then is judged.
4. Firing: ``domain.alerts.firing.fire`` in one transaction (conditional UPDATE per alert,
   outbox row beside it); after the commit the pending rows' delivery is enqueued, one
   ``hyperwatch.notify.deliver_many`` message per burst, and the change announced. A crash between the commit and
   the enqueue loses nothing: the outbox sweeper finds the pending row.
5. Recurring alerts whose condition is false by the margin, on data newer than their last
   firing, are re-armed; expired alerts are deactivated.

Event kinds (``definition.EVENT_KINDS``) are judged on occurrences
(``domain.alerts.occurrence``): each trade of a ``trades`` batch, the liquidations of a
``fills`` batch, and — in a ``positions`` batch — the change between each applied snapshot
and the older one it replaced in the shared view (returned by the same atomic apply: one
worker sees each pair, a retried batch sees it again). Candidates are the armed rules of
the kind on the coin whose threshold the notional reaches (the book keeps them sorted),
re-read and judged by ``judgement.evaluate_occurrence``; one rule's qualifying events fire
in event-time order, one firing transaction per round, each claim conditional on the event
being newer than the last firing and past the cooldown (``AlertRepository.fire_many``).

Idempotent: applying the same batch again changes nothing (same times), a second firing of
the same arm cycle hits 0 rows. Retries transient database / Redis / broker errors
(``tasks.retry``); never retries a malformed batch (dead-lettered).

``hyperwatch.alerts.tick()`` — queue ``alerts``; no arguments; run by beat every
:data:`TICK_PERIOD_S` seconds. ``stale_data`` alerts must fire when nothing arrives, so no
batch can drive them: the tick judges every stale_data alert against the shared seen times,
re-arms them when data flows again, starts the holds of coins whose data went stale or into
an open gap and ends those fresh again (each with its notices, ``keys.ALERTS_HOLDS``), and
(at most once a minute per worker) deactivates expired alerts. Idempotent and safe to run on several workers at once (same guards). Same
retry rules.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import kombu.exceptions
import redis
from celery import Celery, shared_task

from domain.alerts.book import VERSION_KEY, WINDOW_SERIES, AlertBook, announce, rule_from_row
from domain.alerts.definition import WALLET_KINDS, AlertKind, AlertRule, Mode
from domain.alerts.firing import Firing, fire, rearm
from domain.alerts.hold import (
    MARKET_INPUTS,
    Hold,
    HoldPolicy,
    coin_hold,
    is_holdable,
    open_gaps,
    rule_hold,
)
from domain.alerts.hold_notices import held_inputs, notify_restored, notify_stale
from domain.alerts.judgement import Outcome, evaluate, evaluate_occurrence, should_rearm
from domain.alerts.occurrence import (
    Occurrence,
    concerns,
    liquidations,
    position_change,
    whale_trade,
)
from domain.alerts.shared_state import (
    ALERT_STREAMS,
    STARTED_KEY,
    HistoryMirror,
    SharedMarket,
    SharedView,
    series_of,
    tier_for,
)
from domain.alerts.view import Stream
from events import AssetContext, Batch, MalformedPayload, Mid, Position, decode_batch
from models.db import Database
from models.repositories import AlertRepository
from runtime import keys
from runtime.clock import SYSTEM_CLOCK, Clock
from runtime.metrics_export import count_alerts_fired, count_notification
from runtime.redis_clients import cache_client
from settings import Settings
from tasks.base import HyperwatchTask

log = logging.getLogger(__name__)

DELIVER_MANY_TASK: Final = "hyperwatch.notify.deliver_many"
# Rows per delivery message: a big burst is split so several notify workers share it.
DELIVER_CHUNK: Final = 200
TICK_PERIOD_S: Final = 5
# Expired alerts never fire (judgement.evaluate holds them); deactivating them only frees the
# quota, so the sweep — a scan of the active alerts — runs at most this often per worker.
EXPIRY_SWEEP_S: Final = 60.0
HOLDS_KEY: Final = keys.ALERTS_HOLDS.name()

# Batches of events, not states: only the event kinds judge them (no shared view to apply).
EVENT_STREAMS: Final = ("trades", "fills")

_DIRECT_KINDS: Final[dict[str, frozenset[AlertKind]]] = {
    "mids": frozenset({AlertKind.PRICE_MOVE_PCT}),
    "asset_contexts": frozenset({AlertKind.OI_CHANGE_PCT, AlertKind.LIQUIDATION_DISTANCE_BELOW}),
    "positions": frozenset({AlertKind.LIQUIDATION_DISTANCE_BELOW}),
}


@dataclass(slots=True)
class Candidates:
    """Alert ids to judge, and when the data they are judged on was observed per coin (the
    firing's event time, and what a re-arm must be newer than)."""

    armed: set[int] = field(default_factory=set)
    rearmable: set[int] = field(default_factory=set)
    event_time: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.armed or self.rearmable)

    def observed(self, rule: AlertRule, now_ms: int) -> int:
        return self.event_time.get(rule.coin, now_ms)

    def event_of(self, rule: AlertRule, now_ms: int) -> int:
        """The event time a firing of ``rule`` reports (latency is measured from it)."""
        return self.observed(rule, now_ms)


@dataclass(slots=True)
class StaleCandidates(Candidates):
    """stale_data: the firing's event is the moment the silence was judged; a re-arm is
    observed when the stream's newest event arrived."""

    view: SharedView | None = None

    def observed(self, rule: AlertRule, now_ms: int) -> int:
        seen = self.view.last_seen(rule.coin, rule.stream or Stream.MIDS) if self.view else None
        return now_ms if seen is None else seen

    def event_of(self, rule: AlertRule, now_ms: int) -> int:
        return now_ms


@dataclass(slots=True)
class Report:
    applied: int = 0
    candidates: int = 0
    fired: int = 0
    lost: int = 0
    rearmed: int = 0
    expired: int = 0
    held: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class Evaluator:
    """One worker's evaluation state: its book, history mirror and connections."""

    def __init__(
        self,
        app: Celery,
        settings: Settings,
        database: Database,
        client: redis.Redis,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.app = app
        self.settings = settings
        self.database = database
        self.market = SharedMarket(client)
        self.client = client
        self.clock = clock
        self.book = AlertBook(clock)
        self.mirror = HistoryMirror()
        self._started_ms = 0
        self._expiry_swept = -EXPIRY_SWEEP_S
        self.policy = HoldPolicy(
            mids_ms=int(settings.alert_hold_mids_s * 1000),
            contexts_ms=int(settings.alert_hold_contexts_s * 1000),
            positions_ms=int(settings.alert_hold_positions_s * 1000),
        )
        # The feeds' gap journals (keys.GAPS_OPEN, one per feed): found by SCAN at the
        # first task and at every tick, read at every task (a few small hashes).
        self._gap_keys: list[str] | None = None
        self.gaps: dict[str, int] = {}  # coin → when its open trades gap opened
        self.holds: dict[str, Hold] = {}  # coin → its hold, as keys.ALERTS_HOLDS has it
        # Holds whose 'data stale' notices this process has seen written: a hold found in
        # Redis without them (a worker died between the two) gets them on the next sweep.
        self._noticed: set[tuple[str, int]] = set()
        # The book and mirror are not thread-safe; a threads pool gets correctness, not
        # parallelism (run alert workers with prefork or solo).
        self.lock = threading.Lock()

    # --- per task ----------------------------------------------------------------------------

    def _sync(self, now_ms: int) -> None:
        if self._gap_keys is None:
            self._find_gap_journals()
        gap_keys = self._gap_keys or []
        pipe = self.client.pipeline(transaction=False)
        pipe.get(VERSION_KEY)
        pipe.set(STARTED_KEY, now_ms, nx=True)
        pipe.get(STARTED_KEY)
        pipe.hgetall(HOLDS_KEY)
        for key in gap_keys:
            pipe.hgetall(key)
        version, _, started, holds, *journals = pipe.execute()
        self._started_ms = int(started) if started is not None else now_ms
        self.holds = _parse_holds(holds)
        self.gaps = open_gaps(journals)
        self.book.sync(self.client, self.database.session, int(version or 0))

    def _find_gap_journals(self) -> None:
        pattern = keys.GAPS_OPEN.pattern
        self._gap_keys = sorted(k.decode() for k in self.client.scan_iter(pattern, count=100))

    def _view(self) -> SharedView:
        return SharedView(
            self.mirror,
            max_age_ms=int(self.settings.alert_max_age_s * 1000),
            position_max_age_ms=int(self.settings.alert_position_max_age_s * 1000),
            started_ms=self._started_ms,
        )

    def evaluate_batch(self, payload: Any, now_ms: int) -> Report:
        batch = decode_batch(payload)
        if batch.kind in EVENT_STREAMS:
            self._sync(now_ms)
            report = Report(applied=len(batch.events))
            self._judge_occurrences(_occurrences(batch), now_ms, report)
            return report
        if batch.kind not in ALERT_STREAMS:
            raise MalformedPayload(
                f"alerts evaluate {', '.join(ALERT_STREAMS + EVENT_STREAMS)} batches, "
                f"not {batch.kind}"
            )
        self._sync(now_ms)
        stream = batch.kind
        series = series_of(stream)
        history = self.book.history_windows(series) if series is not None else {}
        applied = self.market.apply_replacing(stream, batch.events, history)
        accepted = [event for event, _ in applied]
        report = Report(applied=len(accepted))
        if not accepted:
            return report
        view = self._view()
        for event in accepted:
            view.apply(event)
        coins = sorted({e.coin for e in accepted})
        self._end_holds([c for c in coins if c in self.holds], now_ms)
        candidates = Candidates(event_time=_newest_per_coin(accepted))
        if stream == "positions":
            self._position_candidates(view, accepted, candidates)
        else:
            self._market_candidates(view, stream, coins, now_ms, candidates)
        self._judge(view, candidates, now_ms, report)
        changes = [
            change
            for after, before in applied
            if before is not None
            and isinstance(after, Position)
            and (change := position_change(before, after)) is not None
        ]
        if changes:
            self._judge_occurrences(changes, now_ms, report)
        return report

    def _market_candidates(
        self, view: SharedView, stream: str, coins: list[str], now_ms: int, out: Candidates
    ) -> None:
        quotes = view.quotes(now_ms, coins)
        out.armed.update(self.book.fire.candidates_for_tick(quotes, direct=False))
        out.rearmable.update(self.book.rearm.candidates_for_tick(quotes, direct=False))
        armed, rearmable = self.book.direct_candidates(coins, _DIRECT_KINDS[stream])
        out.armed.update(armed)
        out.rearmable.update(rearmable)
        direct = [self.book.direct[i] for i in (*armed, *rearmable)]
        wanted = {
            (r.coin, WINDOW_SERIES[r.kind], tier_for((r.window_s or 0) * 1000))
            for r in direct
            if r.kind in WINDOW_SERIES
        }
        if wanted:
            self.mirror.sync(self.market, sorted(wanted), now_ms)
        pairs = {(r.wallet, r.coin) for r in direct if r.wallet}
        for position in self.market.positions(sorted(pairs)):
            view.apply_position(position)

    def _position_candidates(
        self, view: SharedView, accepted: Sequence[Any], out: Candidates
    ) -> None:
        touched = {(p.user.lower(), p.coin) for p in accepted}
        coins = sorted({coin for _, coin in touched})
        for ctx in self.market.contexts(coins):
            view.apply_context(ctx)
        armed, rearmable = self.book.direct_candidates(coins, _DIRECT_KINDS["positions"])
        for ids, target in ((armed, out.armed), (rearmable, out.rearmable)):
            target.update(
                i for i in ids if (self.book.direct[i].wallet, self.book.direct[i].coin) in touched
            )

    def tick(self, now_ms: int) -> Report:
        """Judge every stale_data alert; start and end holds; deactivate expired alerts
        (see module)."""
        self._find_gap_journals()
        self._sync(now_ms)
        report = Report()
        self._sweep_holds(now_ms)
        if self.clock.monotonic() - self._expiry_swept >= EXPIRY_SWEEP_S:
            self._expiry_swept = self.clock.monotonic()
            with self.database.session() as session:
                expired = AlertRepository(session).deactivate_expired(now_ms)
            report.expired = len(expired)
            self._announce(expired, gone=expired)
        rules = self.book.of_kind(AlertKind.STALE_DATA)
        if not rules:
            return report
        view = self._view()
        for stream in Stream:
            coins = [r.coin for r in rules if r.stream is stream]
            view.set_seen(stream, self.market.seen(stream, coins))
        ids = {rule.id for rule in rules}
        candidates = StaleCandidates(armed=set(ids), rearmable=set(ids), view=view)
        self._judge(view, candidates, now_ms, report)
        return report

    # --- judging and acting ---------------------------------------------------------------

    def _judge(
        self,
        view: SharedView,
        candidates: Candidates,
        now_ms: int,
        report: Report,
    ) -> None:
        if not candidates:
            return
        ids = sorted(candidates.armed | candidates.rearmable)
        report.candidates += len(ids)
        with self.database.session() as session:
            rows = AlertRepository(session).rows_by_ids(ids)
        found = {row.id for row in rows}
        for gone in set(ids) - found:
            self.book.drop(gone)
        firings: list[Firing] = []
        rearms: list[tuple[int, int]] = []
        expired: list[int] = []
        for row in rows:
            rule = rule_from_row(row) if row.active else None
            if rule is None:
                self.book.drop(row.id)
                continue
            if self.book.misplaced(rule):
                self.book.put(rule)
            if rule.expires_at is not None and now_ms >= rule.expires_at:
                expired.append(rule.id)
                continue
            if rule_hold(rule, view, self.gaps, self.policy, now_ms) is not None:
                report.held += 1  # judged again on the first fresh data
                continue
            verdict = evaluate(rule, view, now_ms)
            if verdict.outcome is Outcome.FIRE:
                event_time = candidates.event_of(rule, now_ms)
                firings.append(Firing(rule, verdict, row.channel_id, event_time))
            elif should_rearm(rule, view, now_ms):
                rearms.append((rule.id, candidates.observed(rule, now_ms)))
        changed: list[int] = []
        if firings:
            changed += self._fire(firings, now_ms, report)
        if rearms:
            with self.database.session() as session:
                rearmed = rearm(session, rearms)
            report.rearmed = len(rearmed)
            changed += rearmed
        done = self._expire(expired, report)
        self._announce(changed + done, gone=[*_once(firings, changed), *done])

    # --- holds ----------------------------------------------------------------------------

    def _sweep_holds(self, now_ms: int) -> None:
        """Start the holds of coins whose data went stale or into an open gap, end those
        whose data is fresh again (each with its notices)."""
        with self.database.session() as session:
            needs = held_inputs(session)
        coins = sorted(set(needs) | set(self.holds))
        seen = {source: self.market.seen(source, coins) for source in MARKET_INPUTS}
        ended: list[str] = []
        for coin in coins:
            hold = coin_hold(
                coin,
                needs.get(coin, ()),
                {source: seen[source].get(coin) for source in MARKET_INPUTS},
                self.gaps.get(coin),
                self.policy,
                self._started_ms,
                now_ms,
            )
            if hold is not None and coin not in self.holds:
                self._start_hold(hold, now_ms)
            elif hold is not None and (coin, self.holds[coin].since_ms) not in self._noticed:
                self._notice_stale(self.holds[coin], now_ms)
            elif hold is None and coin in self.holds:
                ended.append(coin)
        self._end_holds(ended, now_ms, checked=True)

    def _start_hold(self, hold: Hold, now_ms: int) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.hsetnx(HOLDS_KEY, hold.coin, hold.to_json())
        pipe.hget(HOLDS_KEY, hold.coin)
        _, stored = pipe.execute()
        # Another worker may have started it first: its ``since`` names the hold.
        held = Hold.from_json(stored) if stored is not None else hold
        self.holds[hold.coin] = held
        log.warning("alerts on %s held: %s", held.coin, held.reason)
        self._notice_stale(held, now_ms)

    def _notice_stale(self, hold: Hold, now_ms: int) -> None:
        """The hold's 'data stale' notices. Idempotent (keyed by the hold and channel), so
        a sweep may write them again: only rows that did not exist yet are sent."""
        with self.database.session() as session:
            created = notify_stale(session, hold, now_ms)
        self._noticed.add((hold.coin, hold.since_ms))
        self._enqueue(created)

    def _end_holds(self, coins: Sequence[str], now_ms: int, *, checked: bool = False) -> None:
        """End the holds of ``coins`` whose data is fresh and out of any gap (``checked``:
        the caller has just judged so), each with its 'restored' notices."""
        if not coins:
            return
        if not checked:
            coins = [c for c in coins if self._fresh_again(self.holds[c], now_ms)]
        for coin in coins:
            hold = self.holds.pop(coin)
            with self.database.session() as session:
                created = notify_restored(session, hold, now_ms)
            # After the commit: a crash before this leaves the hold, and the next tick or
            # batch ends it again (the notices exist; nothing is sent twice).
            self.client.hdel(HOLDS_KEY, coin)
            log.warning("alerts on %s no longer held (held since %d)", coin, hold.since_ms)
            self._enqueue(created)

    def _fresh_again(self, hold: Hold, now_ms: int) -> bool:
        if hold.coin in self.gaps:
            return False
        seen = {
            source: self.market.seen(source, [hold.coin]).get(hold.coin) for source in hold.needs
        }
        # Never seen counts as stale since the view started, as in the tick.
        again = coin_hold(hold.coin, hold.needs, seen, None, self.policy, self._started_ms, now_ms)
        return again is None

    def _expire(self, expired: list[int], report: Report) -> list[int]:
        if not expired:
            return []
        with self.database.session() as session:
            repository = AlertRepository(session)
            done = [i for i in expired if repository.set_active(i, False)]
        report.expired += len(done)
        return done

    # --- event kinds ---------------------------------------------------------------------

    def _judge_occurrences(
        self, occurrences: Sequence[Occurrence], now_ms: int, report: Report
    ) -> None:
        """Fire the event rules these occurrences meet (see module)."""
        wanted: dict[int, list[Occurrence]] = {}
        for occurrence in occurrences:
            for rule in self.book.event_rules(occurrence.kind, occurrence.coin):
                if rule.threshold > occurrence.notional:
                    break  # cheapest first: none further on is reached either
                if concerns(rule, occurrence):
                    wanted.setdefault(rule.id, []).append(occurrence)
        if not wanted:
            return
        report.candidates += len(wanted)
        with self.database.session() as session:
            rows = AlertRepository(session).rows_by_ids(sorted(wanted))
        for gone in set(wanted) - {row.id for row in rows}:
            self.book.drop(gone)
        rounds: list[list[Firing]] = []
        expired: list[int] = []
        for row in rows:
            stored = rule_from_row(row) if row.active else None
            if stored is None:
                self.book.drop(row.id)
                continue
            if self.book.misplaced(stored):
                self.book.put(stored)
            if stored.expires_at is not None and now_ms >= stored.expires_at:
                expired.append(stored.id)
                continue
            if is_holdable(stored) and stored.coin in self.gaps:
                report.held += 1  # inside an open gap: what came before may be missing
                continue
            firings = self._event_firings(stored, wanted[stored.id], row.channel_id, now_ms)
            for n, firing in enumerate(firings):
                if n == len(rounds):
                    rounds.append([])
                rounds[n].append(firing)
        changed: list[int] = []
        inactive: list[int] = []
        for firings in rounds:
            fired = self._fire(firings, now_ms, report)
            changed += fired
            inactive += _once(firings, fired)
        done = self._expire(expired, report)
        self._announce(changed + done, gone=[*inactive, *done])

    def _event_firings(
        self,
        rule: AlertRule,
        occurrences: list[Occurrence],
        channel_id: int | None,
        now_ms: int,
    ) -> list[Firing]:
        """The firings ``rule`` makes of ``occurrences``, in event-time order (of events
        at the same millisecond, the largest): each judged as if the previous had fired."""
        positions = rule.kind in WALLET_KINDS
        max_age_s = (
            self.settings.alert_position_max_age_s if positions else self.settings.alert_max_age_s
        )
        out: list[Firing] = []
        for occurrence in sorted(occurrences, key=lambda o: (o.time, -o.notional)):
            verdict = evaluate_occurrence(rule, occurrence, now_ms, int(max_age_s * 1000))
            if verdict.outcome is not Outcome.FIRE:
                continue
            out.append(Firing(rule, verdict, channel_id, occurrence.time))
            if rule.mode is Mode.ONCE:
                break
            rule = replace(rule, last_fired_at=occurrence.time)
        return out

    def _fire(self, firings: list[Firing], now_ms: int, report: Report) -> list[int]:
        with self.database.session() as session:
            outcome = fire(session, self.settings, firings, now_ms)
        # Committed: the rows exist, so their deliveries may be enqueued now.
        self._enqueue(outcome.deliver)
        report.fired += len(outcome.fired)
        report.lost += len(outcome.lost)
        for firing in outcome.fired:
            count_alerts_fired(str(firing.rule.kind))
        for status, kind in outcome.statuses:
            if status != "pending":
                count_notification(status, kind)
        if outcome.lost:
            # Another worker fired them first: this book was behind; catch up on them now.
            log.info("%d alert(s) had already been fired by another worker", len(outcome.lost))
            with self.database.session() as session:
                self.book.reload(session, outcome.lost)
        return [f.rule.id for f in outcome.fired]

    def _enqueue(self, notification_ids: Sequence[int]) -> None:
        if not notification_ids:
            return
        try:
            # One message per burst (up to DELIVER_CHUNK rows): the notify worker reads,
            # groups and settles the burst's rows together instead of one task per row.
            with self.app.producer_or_acquire() as producer:
                for k in range(0, len(notification_ids), DELIVER_CHUNK):
                    chunk = list(notification_ids[k : k + DELIVER_CHUNK])
                    self.app.send_task(DELIVER_MANY_TASK, args=[chunk], producer=producer)
        except (kombu.exceptions.OperationalError, redis.RedisError, OSError) as exc:
            # The rows are pending in the outbox; the sweeper enqueues them later.
            log.warning(
                "delivery of %d notification(s) not enqueued (%s); the outbox sweeper will",
                len(notification_ids),
                exc,
            )

    def _announce(self, alert_ids: Sequence[int], gone: Collection[int] = ()) -> None:
        """Tell every worker what this task changed. ``gone``: of those, the ones now
        inactive (fired ``once`` alerts, expired ones)."""
        if not alert_ids:
            return
        version = announce(self.client, alert_ids)
        if version is None or self.book.version is None or version != self.book.version + 1:
            return  # others wrote meanwhile: the next sync reads every change, ours too
        # Nobody else wrote since this task's sync, so the book may take our own changes
        # now instead of reading them back from the database at the next task (in a
        # cascade that read was a fifth of evaluation): inactive alerts leave it, the
        # others (disarmed recurring, re-armed) are re-read, as the sync would.
        gone_set = set(gone)
        for alert_id in gone_set:
            self.book.drop(alert_id)
        rest = sorted(set(alert_ids) - gone_set)
        if rest:
            with self.database.session() as session:
                self.book.reload(session, rest)
        self.book.version = version


def _once(firings: Sequence[Firing], fired: Collection[int]) -> list[int]:
    """The fired ``once`` alerts: the claim deactivated them."""
    won = set(fired)
    return [f.rule.id for f in firings if f.rule.id in won and f.rule.mode is Mode.ONCE]


def _parse_holds(raw: dict[bytes, bytes]) -> dict[str, Hold]:
    holds: dict[str, Hold] = {}
    for coin, doc in raw.items():
        try:
            holds[coin.decode()] = Hold.from_json(doc)
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable hold %r in %s; ignored", coin, HOLDS_KEY)
    return holds


def _occurrences(batch: Batch) -> list[Occurrence]:
    if batch.kind == "trades":
        return [whale_trade(trade) for trade in batch.events]
    return liquidations(batch.events)


def _newest_per_coin(events: Iterable[Mid | AssetContext | Position]) -> dict[str, int]:
    newest: dict[str, int] = {}
    for event in events:
        if event.time > newest.get(event.coin, -1):
            newest[event.coin] = event.time
    return newest


def evaluator_for(task: HyperwatchTask) -> Evaluator:
    """The evaluator of this worker process and app (built on first use, after fork)."""
    app = task.app
    evaluator: Evaluator | None = getattr(app, "_hyperwatch_evaluator", None)
    if evaluator is None:
        settings = task.settings
        client = cache_client(settings, socket_timeout=5.0, socket_connect_timeout=5.0)
        evaluator = Evaluator(app, settings, task.database(), client, task.clock)
        app._hyperwatch_evaluator = evaluator
    return evaluator


@shared_task(name="hyperwatch.alerts.evaluate", bind=True, base=HyperwatchTask)
def evaluate_batch(self: HyperwatchTask, payload: Any) -> dict[str, int]:
    """Judge the alerts one market batch drives (see module contract)."""
    evaluator = evaluator_for(self)
    with evaluator.lock:
        return evaluator.evaluate_batch(payload, evaluator.clock.time_ms()).as_dict()


@shared_task(name="hyperwatch.alerts.tick", bind=True, base=HyperwatchTask)
def tick(self: HyperwatchTask) -> dict[str, int]:
    """Judge stale_data alerts and expire old alerts (see module contract)."""
    evaluator = evaluator_for(self)
    with evaluator.lock:
        return evaluator.tick(evaluator.clock.time_ms()).as_dict()
