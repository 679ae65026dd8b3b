"""``hyperwatch ingest`` as an object: build the parts, run them, shut down in order.

Threads: one socket loop per planned connection (connection + its own registry and
pipeline, see ``planner``), the publisher (broker), the cache writer, the optional meta
refresher (``listings``) and health server. Wallets beyond the WebSocket users are not
polled here (every standby would poll too): the workers' beat job
``hyperwatch.maintenance.poll_positions`` is the one poller. The sockets share the outbox,
the latest-state cache, the gap journal, the subscribe bucket and the connect window;
each pipeline stamps its batches with its own source id (the first the ingester's id,
the others ``<id>.c<n>``) and the publisher reads confirmations per source. The main
thread only supervises: it waits for a signal or a failed thread, so signals are handled
promptly.

Process contract:
- SIGTERM or SIGINT (see ``signals``): stop reading, close the socket (the session record
  gets its end), flush every pending batch, let the publisher drain for up to
  ``DRAIN_TIMEOUT_S`` (what it cannot send is counted as lost and logged), write the cache
  once more, exit 0. Typically done in about a second; bounded by the thread joins plus
  ``DRAIN_TIMEOUT_S`` when the broker is away.
- A second SIGTERM/SIGINT: exit at once with 128 + signal number.
- A thread dying of an unexpected exception: logged, sent to Sentry when it is set up,
  orderly shutdown as above, exit 1 so the supervisor restarts the process.
- An unknown coin in COINS: :class:`UnknownCoin` before anything starts (the CLI: exit 2).
- Coins and wallets that do not fit the exchange's per-IP limits: :class:`PlanError`
  before anything starts (the CLI: exit 2).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

import httpx
import redis
import sentry_sdk

from runtime import brokers
from runtime.clock import Clock, SystemClock
from runtime.confirmations import confirmed
from runtime.hyperliquid.universe import InfoUnavailable, resolve_coins
from runtime.lifecycle import join_in_slices, wait_in_slices
from runtime.metrics import (
    BATCHES_PUBLISHED,
    BUFFER_DEPTH,
    CONNECTED,
    DUPLICATES_DROPPED,
    EVENTS,
    EVENTS_LOST,
    EVENTS_PUBLISHED,
    FRAMES,
    GAPS,
    INGEST_LAG,
    LEADER,
    LEASE_LOST,
    LISTING_CHANGES,
    MALFORMED,
    PLANNED_CONNECTIONS,
    PLANNED_SUBSCRIPTIONS,
    PUBLISH_LATENCY,
    RECONNECTS,
    RECORD_BYTES,
    RECORD_DROPPED,
    RECORD_FRAMES,
    SERVER_ERRORS,
    STANDBY_HELD,
    STREAM_RESUBSCRIBES,
    TAKEOVERS,
    Metrics,
)
from runtime.redis_clients import cache_redis
from runtime.rest_budget import RestBudget
from runtime.retry import RetryPolicy
from settings import Settings
from workers.ingester.backoff import ConnectWindow, ReconnectPolicy
from workers.ingester.batcher import ALERT_KINDS, Batcher
from workers.ingester.broker import BrokerClient
from workers.ingester.cache import CacheWriter, LatestCache
from workers.ingester.confirm import AwaitingConfirmation
from workers.ingester.connection import Connection, FrameSink
from workers.ingester.gaps import Gap, GapJournal, GapKey, JournalState
from workers.ingester.health import HealthServer, Probe
from workers.ingester.lease import Leadership, LeaseKeeper
from workers.ingester.listings import MetaRefresher
from workers.ingester.outbox import Outbox
from workers.ingester.pacing import per_minute
from workers.ingester.pipeline import Pipeline
from workers.ingester.planner import (
    ListingChanges,
    LivePlan,
    Plan,
    plan_subscriptions,
    shard_coins,
    shard_wallets,
)
from workers.ingester.publisher import ConfirmationCheck, Publisher
from workers.ingester.recorder import Recorder, RecordingSink
from workers.ingester.subscriptions import SubscriptionRegistry, coin_subscriptions

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
DRAIN_TIMEOUT_S = 6.0
INGEST_METRICS = (
    FRAMES, EVENTS, MALFORMED, DUPLICATES_DROPPED, SERVER_ERRORS, RECONNECTS, GAPS, CONNECTED,
    BATCHES_PUBLISHED, EVENTS_PUBLISHED, BUFFER_DEPTH, EVENTS_LOST, PUBLISH_LATENCY, INGEST_LAG,
    LEADER, TAKEOVERS, LEASE_LOST, STANDBY_HELD,
    PLANNED_CONNECTIONS, PLANNED_SUBSCRIPTIONS, STREAM_RESUBSCRIBES, LISTING_CHANGES,
    RECORD_FRAMES, RECORD_DROPPED, RECORD_BYTES,
)  # fmt: skip


def default_ingester_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Ingester:
    def __init__(
        self, settings: Settings, clock: Clock | None = None, ingester_id: str | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.id = ingester_id or default_ingester_id()
        self.metrics = Metrics(INGEST_METRICS)
        self.stop_event = threading.Event()
        self.coins: list[str] = []
        self.health: HealthServer | None = None
        self.connections: list[Connection] = []
        self.pipelines: list[Pipeline] = []
        self.live_plan: LivePlan | None = None
        self.refresher: MetaRefresher | None = None
        self.recorder: Recorder | None = None
        self._failure: BaseException | None = None
        self.broker = brokers.for_settings(settings)

    def _confirmation_check(self) -> ConfirmationCheck:
        s = self.settings
        client = cache_redis(s)
        broker = self.broker
        # Per the envelope's source: the pipelines' ids (self.id, self.id.c1, ...).
        return ConfirmationCheck(
            AwaitingConfirmation(
                s.ingest_confirm_timeout_s, s.ingest_confirm_max_events, self.clock
            ),
            lambda source, seqs: confirmed(client, source, seqs),
            (redis.RedisError,),
            quiet=broker.quiet,  # the broker kind says when nothing can still be on its way
        )

    def source_id(self, index: int) -> str:
        """The batches' ``source`` of connection ``index``'s pipeline."""
        return self.id if index == 0 else f"{self.id}.c{index}"

    def resolve(self, retry: bool = True) -> list[str]:
        """Resolve and validate COINS against ``/info`` (raises UnknownCoin) and keep this
        shard's; retries while the exchange is unreachable, until stopped (``retry=False``:
        raises InfoUnavailable instead)."""
        s = self.settings
        schedule = RetryPolicy(base_s=s.reconnect_min_s, cap_s=s.reconnect_max_s, jitter=0)
        failures = 0
        with httpx.Client(timeout=10.0) as client:
            while True:
                try:
                    self.coins = shard_coins(resolve_coins(s.coins, client, s.hl_info_url), s.shard)
                    return self.coins
                except InfoUnavailable as exc:
                    if not retry:
                        raise
                    failures += 1
                    delay = schedule.next_delay(failures)
                    log.warning(
                        "cannot read the coin universe yet (retry in %.1f s): %s", delay, exc
                    )
                    if self.stop_event.wait(delay):
                        return []

    def make_plan(self) -> Plan:
        """This shard's coins and wallets spread over sockets (raises PlanError)."""
        s = self.settings
        wallets = shard_wallets(s.tracked_wallets, s.shard)
        return plan_subscriptions(
            self.coins,
            wallets[: s.ws_user_limit],
            s.ingest_subscriptions_per_connection,
            shard=s.shard,
            polled=wallets[s.ws_user_limit :],
            ping_interval_s=s.ping_interval_s,
            subscribe_messages_per_minute=s.subscribe_messages_per_minute,
        )

    def run(self) -> int:
        """Run until stopped (signal or :attr:`stop_event`); returns the exit code."""
        s = self.settings
        if not self.coins and not self.stop_event.is_set():
            self.resolve()
        if self.stop_event.is_set():
            return EXIT_OK
        plan = self.make_plan()  # PlanError before anything starts
        self.outbox = Outbox(s.ingest_buffer_max_events)
        cache = LatestCache()
        journal = GapJournal()
        self.leadership = Leadership()
        self._build_connections(plan, cache, journal)
        self.publisher = Publisher(
            self.outbox,
            BrokerClient(s.effective_broker_url, kind=self.broker),
            self.metrics,
            replay_window_s=s.ingest_outage_replay_s,
            replay_max_events=s.ingest_outage_replay_max_events,
            confirmations=(self._confirmation_check() if self.broker.confirms_end_to_end else None),
            clock=self.clock,
            leadership=self.leadership,
            journal=journal,
            hold_window_s=s.ingest_standby_buffer_s,
            hold_max_events=s.ingest_standby_buffer_max_events,
            outage_max_events=s.ingest_buffer_max_events,
        )
        self.cache_writer = CacheWriter(
            cache, s.redis_url, self.id, self.metrics, self.clock, journal=journal,
            feed=s.feed, leadership=self.leadership, master_name=s.redis_sentinel_master,
        )  # fmt: skip
        self.lease = LeaseKeeper(
            cache_redis(s, timeout_s=s.ingest_lease_ttl_s / 3),
            s.feed, self.id, s.ingest_lease_ttl_s, self.leadership, self.clock,
            self.metrics, ready=lambda: all(c.subscribed for c in self.connections),
            on_acquired=self._take_over, parties=len(self.pipelines),
        )  # fmt: skip
        if self._refreshes_meta():
            assert self.live_plan is not None
            budget = RestBudget(cache_redis(s), s.rest_weight_per_minute, self.clock)
            self.refresher = MetaRefresher(
                s.hl_info_url, s.ingest_meta_refresh_s, s.shard, self.live_plan,
                self._apply_listings, budget, self.clock,
            )  # fmt: skip
        self._start_health()  # OSError if the port is taken: before any thread starts
        socket_threads = [
            threading.Thread(
                target=self._socket_loop,
                args=(connection,),
                name="ingest-socket" if index == 0 else f"ingest-socket-c{index}",
                daemon=True,
            )
            for index, connection in enumerate(self.connections)
        ]
        if self.recorder is not None:
            self.recorder.start()
        self.publisher.start()
        self.cache_writer.start()
        self.lease.start()
        for thread in socket_threads:
            thread.start()
        if self.refresher is not None:
            self.refresher.start()
        log.info(
            "ingester %s (shard %s): %d coins, %d WS wallets on %d socket(s), "
            "batches of %d events / %d ms",
            self.id, s.ingest_shard, len(self.coins), len(plan.users),
            len(self.connections), s.ingest_batch_size, s.ingest_batch_ms,
        )  # fmt: skip
        self._supervise(socket_threads)
        return self._shutdown(socket_threads)

    def _refreshes_meta(self) -> bool:
        s = self.settings
        return s.all_coins and s.ingest_meta_refresh_s > 0

    def _build_connections(self, plan: Plan, cache: LatestCache, journal: GapJournal) -> None:
        """One connection per planned socket, each with its own registry and pipeline; the
        subscribe bucket and the connect window are shared (the exchange counts per IP)."""
        s = self.settings
        bucket = per_minute(s.subscribe_messages_per_minute, self.clock)
        window = ConnectWindow(s.max_connects_per_minute, self.clock)
        several = len(plan.connections) > 1
        self.connections, self.pipelines = [], []
        if s.record_dir is not None:
            self.recorder = Recorder(
                s.record_dir, s.feed, self.id, self.metrics, self.clock,
                s.record_queue_max_mb * 1024 * 1024,
            )  # fmt: skip
        # Which pipeline follows each WebSocket wallet (coins: the live plan, as listings
        # move them).
        self._user_owner: dict[str, int] = {}
        self.journal = journal
        for planned in plan.connections:
            registry = SubscriptionRegistry(bucket)
            for sub in planned.subscriptions:
                registry.desire(sub)
            pipeline = Pipeline(
                self.source_id(planned.index),
                Batcher(
                    s.ingest_batch_size,
                    s.ingest_batch_ms,
                    self.clock,
                    {kind: s.ingest_alert_batch_ms for kind in ALERT_KINDS},
                ),
                self.outbox,
                cache,
                self.metrics,
                self.clock,
                s.ingest_dedup_size,
                journal,
                self.leadership,
            )
            policy = ReconnectPolicy(
                s.reconnect_min_s, s.reconnect_max_s, s.max_connects_per_minute, self.clock,
                window=window,
            )  # fmt: skip
            sink: FrameSink = pipeline
            if self.recorder is not None:  # the raw frames too, off the hot path
                sink = RecordingSink(pipeline, self.recorder.lane(planned.index), s.hl_ws_url)
            connection = Connection(
                s.hl_ws_url, registry, policy, sink, self.clock, self.metrics,
                s.ping_interval_s, s.pong_timeout_s, s.stream_silence_s,
                name=f"c{planned.index}" if several else "", on_state=self._connection_state,
            )  # fmt: skip
            self.pipelines.append(pipeline)
            self.connections.append(connection)
            for user in planned.users:
                self._user_owner[user] = planned.index
        # The first socket's parts under the names a single-socket ingester always had.
        self.pipeline, self.connection = self.pipelines[0], self.connections[0]
        self.live_plan = LivePlan(plan)
        self._publish_plan_metrics()

    def _publish_plan_metrics(self) -> None:
        assert self.live_plan is not None
        self.metrics.gauge(PLANNED_CONNECTIONS).set(len(self.connections))
        per = self.metrics.gauge(PLANNED_SUBSCRIPTIONS)
        for index, load in list(self.live_plan.loads.items()):
            per.labels(str(index)).set(load)

    def _connection_state(self) -> None:
        """CONNECTED is 1 only while every socket is open and subscribed."""
        up = bool(self.connections) and all(c.subscribed for c in self.connections)
        self.metrics.gauge(CONNECTED).set(1 if up else 0)

    def _take_over(self, previous: JournalState) -> None:
        """From the lease thread: this ingester leads now. Each pipeline settles the keys it
        owns; the feed's record reaches the same point for all of them. Keys no socket
        follows any more (a coin delisted, a wallet no longer tracked over WebSocket, a
        coin now in another shard) leave the journal instead: nothing will ever close a
        gap on them."""
        fence = self.leadership.fence  # set just before this call, on the same thread
        gaps_for: dict[int, list[Gap]] = {}
        newest_for: dict[int, dict[GapKey, int]] = {}
        dropped: set[GapKey] = set()
        for gap in previous.open_gaps:
            key = (gap.stream, gap.key)
            owner = self._owner(key)
            if owner is None:
                dropped.add(key)
            else:
                gaps_for.setdefault(owner, []).append(gap)
        for key, ms in previous.newest.items():
            owner = self._owner(key)
            if owner is None:
                dropped.add(key)
            else:
                newest_for.setdefault(owner, {})[key] = ms
        for stream, key_name in dropped:
            self.journal.forget(stream, key_name)
        if dropped:
            log.info(
                "%d key(s) in the feed's journal are no longer followed: forgotten", len(dropped)
            )
        for index, pipeline in enumerate(self.pipelines):
            # Every pipeline takes part, keys or not: the publisher waits for all of them.
            pipeline.submit_takeover(
                JournalState(gaps_for.get(index, []), newest_for.get(index, {}), previous.through),
                fence,
            )

    def _owner(self, key: GapKey) -> int | None:
        """The index of the socket whose pipeline follows ``key``, if any does."""
        stream, name = key
        if stream == "trades":
            assert self.live_plan is not None
            return self.live_plan.where.get(name)
        return self._user_owner.get(name)

    def _apply_listings(self, changes: ListingChanges) -> None:
        """From the meta refresher: subscribe new coins, drop delisted ones (the sockets
        apply it between frames)."""
        for coin, index in changes.added:
            self.connections[index].add(coin_subscriptions(coin))
            self.metrics.counter(LISTING_CHANGES).labels("listed").inc()
            log.info("new listing %s: subscribing on socket %d", coin, index)
        for coin, index in changes.removed:
            self.connections[index].drop(coin_subscriptions(coin))
            self.metrics.counter(LISTING_CHANGES).labels("delisted").inc()
            log.warning("%s is no longer listed: unsubscribed from socket %d", coin, index)
        for coin in changes.unplaced:
            self.metrics.counter(LISTING_CHANGES).labels("unplaced").inc()
            log.error(
                "new listing %s not subscribed: every socket is at "
                "INGEST_SUBSCRIPTIONS_PER_CONNECTION or the shard at its planned per-IP "
                "subscriptions; a restart plans it (see `hyperwatch ingest --plan`)",
                coin,
            )
        assert self.live_plan is not None
        self.coins = self.live_plan.coins
        self._publish_plan_metrics()

    def _socket_loop(self, connection: Connection) -> None:
        try:
            connection.run(self.stop_event)
        except BaseException as exc:
            self._failure = exc
            log.exception("socket loop failed")

    def _supervise(self, socket_threads: list[threading.Thread]) -> None:
        # Wake twice a second: signal handlers run on this thread between waits.
        while not self.stop_event.wait(0.5):
            failure = (
                self._failure
                or self.publisher.failure
                or self.cache_writer.failure
                or self.lease.failure
            )
            if failure is None and self.refresher is not None:
                failure = self.refresher.failure
            if failure is None and not all(t.is_alive() for t in socket_threads):
                failure = RuntimeError("socket thread ended unexpectedly")
            if failure is not None:
                self._failure = failure
                sentry_sdk.capture_exception(failure)
                self.stop_event.set()

    def _shutdown(self, socket_threads: list[threading.Thread]) -> int:
        log.info("ingester stopping: closing the socket and flushing batches")
        leading = self.leadership.leading
        if leading and self.lease.others_ready:
            # Hand over: a ready standby's buffer covers the time from our last publish,
            # so the socket's close is no hole in the feed (see ``lease``).
            for pipeline in self.pipelines:
                pipeline.handover = True
            log.info("another ingester of the feed is ready: handing over to it")
        # Every wait here is sliced: a second SIGTERM must end the process at once
        # (runtime.lifecycle.SIGNAL_SLICE_S says why).
        for thread in socket_threads:
            join_in_slices(thread, 5.0)
        if self.recorder is not None:  # the sockets are closed: fsync and close the file
            self.recorder.stop()
        if self.refresher is not None:
            self.refresher.stop()
        for thread, pipeline in zip(socket_threads, self.pipelines, strict=True):
            if not thread.is_alive():
                pipeline.flush_all()
        leading = self.leadership.leading
        drained = not leading or wait_in_slices(
            self.outbox.wait_empty, lambda: self.outbox.wait_empty(0), DRAIN_TIMEOUT_S
        )
        self.publisher.stop()
        left = self.outbox.remaining()
        if not drained and left:
            for env in left:
                self.metrics.counter(EVENTS_LOST).labels(env.kind).inc(env.count)
            lost = sum(env.count for env in left)
            log.error("broker unreachable at shutdown: %d buffered events LOST", lost)
        self.cache_writer.stop()  # its last cycle journals what was published, fenced
        self.cache_writer.close()
        self.lease.stop(release=True)
        if self.health is not None:
            self.health.stop()
        if self._failure is not None:
            sentry_sdk.flush(timeout=2.0)
            return EXIT_FAILED
        log.info("ingester stopped cleanly")
        return EXIT_OK

    def _start_health(self) -> None:
        s = self.settings
        if not s.ingester_health_port:
            return
        probe = Probe(
            # The stalest socket loop: any one hung is a process to restart.
            loop_age_s=lambda: self.clock.monotonic() - min(c.last_loop for c in self.connections),
            checks=lambda: {
                "connected": all(c.connected for c in self.connections),
                "subscribed": all(c.subscribed for c in self.connections),
                "broker": self.publisher.reachable or not self.leadership.leading,
                "cache": self.cache_writer.reachable,
                "lease": self.lease.reachable,
            },
            degraded=self._degraded,
        )
        self.health = HealthServer(
            s.ingester_health_host, s.ingester_health_port, probe, self.metrics.registry
        ).start()

    def _degraded(self) -> dict[str, Any]:
        silent = [name for c in self.connections for name in c.silent_streams]
        return {"silent_streams": silent}
