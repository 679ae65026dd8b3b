"""``hyperwatch ingest`` as an object: build the parts, run them, shut down in order.

Threads: the socket loop (connection + pipeline), the publisher (broker), the cache
writer, the optional REST poller and health server. The main thread only supervises:
it waits for a signal or a failed thread, so signals are handled promptly.

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
"""

from __future__ import annotations

import logging
import os
import socket
import threading

import httpx
import redis
import sentry_sdk

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
    MALFORMED,
    PUBLISH_LATENCY,
    RECONNECTS,
    SERVER_ERRORS,
    STANDBY_HELD,
    TAKEOVERS,
    Metrics,
)
from runtime.redis_clients import quick_redis
from runtime.rest_budget import RestBudget
from runtime.retry import RetryPolicy
from settings import Settings
from workers.ingester.backoff import ReconnectPolicy
from workers.ingester.batcher import Batcher
from workers.ingester.broker import BrokerClient
from workers.ingester.cache import CacheWriter, LatestCache
from workers.ingester.confirm import AwaitingConfirmation
from workers.ingester.connection import Connection
from workers.ingester.gaps import GapJournal
from workers.ingester.health import HealthServer, Probe
from workers.ingester.lease import Leadership, LeaseKeeper
from workers.ingester.outbox import Outbox
from workers.ingester.pacing import per_minute
from workers.ingester.pipeline import Pipeline
from workers.ingester.poller import PositionPoller
from workers.ingester.publisher import ConfirmationCheck, Publisher
from workers.ingester.subscriptions import SubscriptionRegistry, desired_subscriptions

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
DRAIN_TIMEOUT_S = 6.0
INGEST_METRICS = (
    FRAMES, EVENTS, MALFORMED, DUPLICATES_DROPPED, SERVER_ERRORS, RECONNECTS, GAPS, CONNECTED,
    BATCHES_PUBLISHED, EVENTS_PUBLISHED, BUFFER_DEPTH, EVENTS_LOST, PUBLISH_LATENCY, INGEST_LAG,
    LEADER, TAKEOVERS, LEASE_LOST, STANDBY_HELD,
)  # fmt: skip


def broker_is_quiet(client: redis.Redis) -> bool:
    """Nothing waiting on the ingest queue and nothing delivered-but-unacknowledged (kombu's
    ``unacked`` hash, shared by every queue): the only state in which an unconfirmed batch
    cannot still be on its way."""
    pipe = client.pipeline(transaction=False)
    pipe.llen("ingest")
    pipe.hlen("unacked")
    waiting, unacked = pipe.execute()
    return int(waiting) == 0 and int(unacked) == 0


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
        self._failure: BaseException | None = None

    def _confirmation_check(self) -> ConfirmationCheck:
        s = self.settings
        client = quick_redis(s.redis_url)
        broker = quick_redis(s.effective_broker_url)
        source = self.id  # the batches' `source`, as Pipeline stamps them
        return ConfirmationCheck(
            AwaitingConfirmation(
                s.ingest_confirm_timeout_s, s.ingest_confirm_max_events, self.clock
            ),
            lambda seqs: confirmed(client, source, seqs),
            (redis.RedisError,),
            quiet=lambda: broker_is_quiet(broker),
        )

    def resolve(self) -> list[str]:
        """Resolve and validate COINS against ``/info`` (raises UnknownCoin); retries while
        the exchange is unreachable, until stopped."""
        s = self.settings
        schedule = RetryPolicy(base_s=s.reconnect_min_s, cap_s=s.reconnect_max_s, jitter=0)
        failures = 0
        with httpx.Client(timeout=10.0) as client:
            while True:
                try:
                    self.coins = resolve_coins(s.coins, client, s.hl_info_url)
                    return self.coins
                except InfoUnavailable as exc:
                    failures += 1
                    delay = schedule.next_delay(failures)
                    log.warning(
                        "cannot read the coin universe yet (retry in %.1f s): %s", delay, exc
                    )
                    if self.stop_event.wait(delay):
                        return []

    def run(self) -> int:
        """Run until stopped (signal or :attr:`stop_event`); returns the exit code."""
        s = self.settings
        if not self.coins and not self.stop_event.is_set():
            self.resolve()
        if self.stop_event.is_set():
            return EXIT_OK
        ws_wallets = s.tracked_wallets[: s.ws_user_limit]
        polled = s.tracked_wallets[s.ws_user_limit :]
        registry = SubscriptionRegistry(per_minute(s.subscribe_messages_per_minute, self.clock))
        for sub in desired_subscriptions(self.coins, ws_wallets):
            registry.desire(sub)
        self.outbox = Outbox(s.ingest_buffer_max_events)
        cache = LatestCache()
        journal = GapJournal()
        self.leadership = Leadership()
        self.pipeline = Pipeline(
            self.id,
            Batcher(s.ingest_batch_size, s.ingest_batch_ms, self.clock),
            self.outbox,
            cache,
            self.metrics,
            self.clock,
            s.ingest_dedup_size,
            journal,
            self.leadership,
        )
        policy = ReconnectPolicy(
            s.reconnect_min_s, s.reconnect_max_s, s.max_connects_per_minute, self.clock
        )
        self.connection = Connection(
            s.hl_ws_url, registry, policy, self.pipeline, self.clock, self.metrics,
            s.ping_interval_s, s.pong_timeout_s, s.stream_silence_s,
        )  # fmt: skip
        self.publisher = Publisher(
            self.outbox,
            BrokerClient(s.effective_broker_url),
            self.metrics,
            replay_window_s=s.ingest_outage_replay_s,
            replay_max_events=s.ingest_outage_replay_max_events,
            confirmations=self._confirmation_check(),
            clock=self.clock,
            leadership=self.leadership,
            journal=journal,
            hold_window_s=s.ingest_standby_buffer_s,
            hold_max_events=s.ingest_standby_buffer_max_events,
            outage_max_events=s.ingest_buffer_max_events,
        )
        self.cache_writer = CacheWriter(
            cache, s.redis_url, self.id, self.metrics, self.clock, journal=journal,
            feed=s.ingester_name, leadership=self.leadership,
        )  # fmt: skip
        self.lease = LeaseKeeper(
            quick_redis(s.redis_url, timeout_s=s.ingest_lease_ttl_s / 3),
            s.ingester_name, self.id, s.ingest_lease_ttl_s, self.leadership, self.clock,
            self.metrics, ready=lambda: self.connection.subscribed,
            on_acquired=self.pipeline.submit_takeover,
        )  # fmt: skip
        poller = None
        if polled:
            budget = RestBudget(quick_redis(s.redis_url), s.rest_weight_per_minute, self.clock)
            poller = PositionPoller(
                polled, s.hl_info_url, s.position_poll_interval_s, budget,
                self.pipeline.submit_positions, self.clock,
            )  # fmt: skip
        self._start_health()  # OSError if the port is taken: before any thread starts
        socket_thread = threading.Thread(
            target=self._socket_loop, name="ingest-socket", daemon=True
        )
        self.publisher.start()
        self.cache_writer.start()
        self.lease.start()
        if poller is not None:
            poller.start()
        socket_thread.start()
        log.info(
            "ingester %s: %d coins, %d WS wallets, %d polled wallets, batches of %d events / %d ms",
            self.id, len(self.coins), len(ws_wallets), len(polled), s.ingest_batch_size, s.ingest_batch_ms,
        )  # fmt: skip
        self._supervise(socket_thread)
        return self._shutdown(socket_thread, poller)

    def _socket_loop(self) -> None:
        try:
            self.connection.run(self.stop_event)
        except BaseException as exc:
            self._failure = exc
            log.exception("socket loop failed")

    def _supervise(self, socket_thread: threading.Thread) -> None:
        # Wake twice a second: signal handlers run on this thread between waits.
        while not self.stop_event.wait(0.5):
            failure = (
                self._failure
                or self.publisher.failure
                or self.cache_writer.failure
                or self.lease.failure
            )
            if failure is None and not socket_thread.is_alive():
                failure = RuntimeError("socket thread ended unexpectedly")
            if failure is not None:
                self._failure = failure
                sentry_sdk.capture_exception(failure)
                self.stop_event.set()

    def _shutdown(self, socket_thread: threading.Thread, poller: PositionPoller | None) -> int:
        log.info("ingester stopping: closing the socket and flushing batches")
        leading = self.leadership.leading
        if leading and self.lease.others_ready:
            # Hand over: a ready standby's buffer covers the time from our last publish,
            # so the socket's close is no hole in the feed (see ``lease``).
            self.pipeline.handover = True
            log.info("another ingester of the feed is ready: handing over to it")
        # Every wait here is sliced: a second SIGTERM must end the process at once
        # (runtime.lifecycle.SIGNAL_SLICE_S says why).
        join_in_slices(socket_thread, 5.0)
        if poller is not None:
            poller.stop()
        if not socket_thread.is_alive():
            self.pipeline.flush_all()
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
            loop_age_s=lambda: self.clock.monotonic() - self.connection.last_loop,
            checks=lambda: {
                "connected": self.connection.connected,
                "subscribed": self.connection.subscribed,
                "broker": self.publisher.reachable or not self.leadership.leading,
                "cache": self.cache_writer.reachable,
                "lease": self.lease.reachable,
            },
        )
        self.health = HealthServer(
            s.ingester_health_host, s.ingester_health_port, probe, self.metrics.registry
        ).start()
