"""The broker thread: sends the outbox's envelopes in order, waits out broker outages.

Contract: the thread owns the :class:`BrokerClient`. It takes the head envelope, sends it to
each of its targets (remembering which succeeded, so a retry never sends one twice), and
only then removes it: order is preserved and nothing leaves the buffer unsent except by the
outbox's counted overflow.

A publish that Redis acknowledged can still be lost when the broker goes down right after:
kombu's Redis transport pops a message (BRPOP) and records it as unacknowledged in a second
round trip, so a worker that popped it as Redis stopped holds the only copy; and Redis with
``appendfsync everysec`` loses up to a second of writes in a crash. So the publisher keeps
the envelopes it sent in the last ``replay_window_s`` (at most ``replay_max_events``) and,
when an outage begins, puts them back at the head of the outbox: they are sent again when
the broker returns, and the workers' idempotent writes absorb the copies that did arrive. While the broker is unreachable it retries with capped
exponential backoff (each attempt bounded by the client's socket timeouts), logging the
outage once and its end once. :meth:`stop` ends the thread after the current attempt; what
is still queued is reported by the caller.

Standing by (``lease``): while this ingester does not lead its feed, the thread moves
every envelope from the outbox into a held buffer of the last ``hold_window_s`` (at most
``hold_max_events``) instead of sending it, and remembers the newest event time it had to
drop from there (the gap accounting at a takeover needs it). When it is promoted it puts
the held envelopes that reach past the previous leader's record (the cutoff) back at the
head of the outbox and publishes as a leader. After a successful send of a trades or fills
batch it notes the batch's newest event times in the gap journal: the feed's record. A bug (any exception other than the broker's
own connection errors) is stored in :attr:`failure` and ends the thread, and the service
then exits non-zero.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from runtime.clock import SYSTEM_CLOCK, Clock
from runtime.lifecycle import join_in_slices
from runtime.metrics import (
    BATCHES_PUBLISHED,
    BUFFER_DEPTH,
    EVENTS_LOST,
    EVENTS_PUBLISHED,
    PUBLISH_LATENCY,
    STANDBY_HELD,
    Metrics,
)
from runtime.retry import RetryPolicy
from workers.ingester.broker import PERSIST_SESSION, BrokerClient
from workers.ingester.confirm import AwaitingConfirmation
from workers.ingester.gaps import THROUGH_FIELD, GapJournal
from workers.ingester.lease import Leadership
from workers.ingester.outbox import Envelope, Outbox

# At a takeover, state batches (mids, contexts, positions) held for less than this are
# published too: they are snapshots, so only the latest few seconds matter.
STATE_TAKEOVER_S = 2.0

log = logging.getLogger(__name__)


class ConfirmationCheck:
    """Reads worker confirmations for this ingester's batches: ``confirmed(source, seqs)``
    per pipeline source (an ingester with several sockets has one source each)."""

    def __init__(
        self,
        awaiting: AwaitingConfirmation,
        confirmed: Callable[[str, list[int]], set[int]],
        errors: tuple[type[BaseException], ...],
        every_s: float = 1.0,
        quiet: Callable[[], bool] = lambda: True,
    ) -> None:
        self.awaiting = awaiting
        self.confirmed = confirmed
        self.errors = errors
        self.every_s = every_s
        # True when nothing is queued or delivered-but-unacknowledged: only then is an
        # overdue batch certainly lost rather than waiting (or waiting for redelivery).
        self.quiet = quiet


class Publisher(threading.Thread):
    def __init__(
        self,
        outbox: Outbox,
        client: BrokerClient,
        metrics: Metrics,
        retry_min_s: float = 0.1,
        retry_max_s: float = 2.0,
        replay_window_s: float = 2.0,
        replay_max_events: int = 100_000,
        confirmations: ConfirmationCheck | None = None,
        clock: Clock = SYSTEM_CLOCK,
        leadership: Leadership | None = None,
        journal: GapJournal | None = None,
        hold_window_s: float = 10.0,
        hold_max_events: int = 600_000,
        outage_max_events: int = 500_000,
    ) -> None:
        super().__init__(name="ingest-publisher", daemon=True)
        self._clock = clock
        self._outbox = outbox
        self._client = client
        self._metrics = metrics
        # Unlimited and deterministic: one sender, nothing to spread out.
        self._retry = RetryPolicy(
            max_attempts=None, base_s=retry_min_s, cap_s=retry_max_s, jitter=0
        )
        self._failures = 0
        self._stop_event = threading.Event()
        self.reachable = False
        self.failure: BaseException | None = None
        self._outage_since: float | None = None
        self._replay_window_s = replay_window_s
        self._replay_max_events = replay_max_events
        self._recent: deque[tuple[float, Envelope]] = deque()
        self._recent_events = 0
        self._confirmations = confirmations
        self._next_confirm_check = 0.0
        self.leadership = leadership or Leadership.sole()
        self._journal = journal
        self._hold_window_s = hold_window_s
        self._hold_max_events = hold_max_events
        self._outage_max_events = outage_max_events
        self._held: deque[tuple[float, Envelope]] = deque()
        self._held_events = 0

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop_event.set()
        join_in_slices(self, timeout_s)  # called on the main thread: signals must get through

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                self._step()
        except BaseException as exc:
            self.failure = exc
            log.exception("publisher thread failed")
        finally:
            self._client.close()

    def _step(self) -> None:
        leadership = self.leadership
        if not leadership.leading:
            self._hold()
            return
        promoted, cutoff = leadership.take_promotion()
        if promoted:
            self._publish_held(cutoff)
        self._check_confirmations()
        sessions = self._outbox.take_sessions()
        if sessions:
            unsent = {k: v for k, v in sessions.items() if not self._send_session(v)}
            self._outbox.sessions_done(unsent)
            if unsent:
                self._wait_retry()
                return
        env = self._outbox.head(timeout_s=0.2)
        if env is None:
            return
        if self._send(env):
            self._outbox.done(env)
            self._remember(env)
            if self._confirmations is not None:
                self._confirmations.awaiting.sent(env)
            self._metrics.gauge(BUFFER_DEPTH).set(self._outbox.depth)
        else:
            self._outbox.release()
            self._metrics.gauge(BUFFER_DEPTH).set(self._outbox.depth)
            self._wait_retry()

    def _send(self, env: Envelope) -> bool:
        started = time.perf_counter()
        argsrepr = f"[<{env.kind} batch seq={env.seq} events={env.count}>]"
        try:
            while env.sent < len(env.targets):
                self._client.send(env.targets[env.sent], env.body, argsrepr)
                env.sent += 1
        except self._client.errors as exc:
            self._unreachable(exc)
            return False
        self._reachable()
        self._metrics.histogram(PUBLISH_LATENCY).labels(env.kind).observe(
            time.perf_counter() - started
        )
        if not env.meta.get("replay"):
            self._metrics.counter(BATCHES_PUBLISHED).labels(env.kind).inc()
            self._metrics.counter(EVENTS_PUBLISHED).labels(env.kind).inc(env.count)
        newest = env.meta.get("newest")
        if newest is not None and self._journal is not None:
            self._journal.note_published(newest)
        return True

    # --- standing by ------------------------------------------------------------------------
    def _hold(self) -> None:
        taken = self._outbox.take_all(timeout_s=0.2)
        now = self._clock.monotonic()
        for env in taken:
            self._held.append((now, env))
            self._held_events += env.count
        # Between taking the lease and the promotion nothing may be dropped: the gap
        # accounting has read how far back the buffer reaches.
        if not self.leadership.awaiting_promotion:
            self._evict_held(now)
        self._metrics.gauge(STANDBY_HELD).set(self._held_events)
        self._metrics.gauge(BUFFER_DEPTH).set(0)

    def _evict_held(self, now: float) -> None:
        """Trim the held buffer. While another ingester leads, to the standby window; while
        nobody does that this one can see (Redis unreachable, the lease free), everything
        up to the outage bound is kept, like a leader's buffer in a broker outage, and what
        overflows it is counted as lost (the takeover then records the gap)."""
        held = self._held
        other_leads = self.leadership.other_leads
        limit = self._hold_max_events if other_leads else self._outage_max_events
        while held and (
            (other_leads and now - held[0][0] > self._hold_window_s) or self._held_events > limit
        ):
            _, env = held.popleft()
            self._held_events -= env.count
            if not other_leads:
                self._metrics.counter(EVENTS_LOST).labels(env.kind).inc(env.count)
                log.error(
                    "no leader reachable and %d events held: dropped %s batch seq=%d, %d "
                    "events LOST", limit, env.kind, env.seq, env.count,
                )  # fmt: skip
            newest = env.meta.get("newest")
            if newest is not None:
                ld = self.leadership
                ld.evicted_newest_ms = max(ld.evicted_newest_ms, newest[THROUGH_FIELD])

    def _publish_held(self, cutoff_ms: int | None) -> None:
        """Promoted: what the held buffer has past the previous leader's record goes first."""
        now = self._clock.monotonic()
        chosen: list[Envelope] = []
        for held_at, env in self._held:
            newest = env.meta.get("newest")
            if cutoff_ms is None:
                chosen.append(env)
            elif newest is not None:
                if newest[THROUGH_FIELD] >= cutoff_ms:
                    chosen.append(env)
            elif now - held_at <= STATE_TAKEOVER_S:
                chosen.append(env)
        held_events = self._held_events
        self._held.clear()
        self._held_events = 0
        self._metrics.gauge(STANDBY_HELD).set(0)
        self._outbox.put_front(chosen)
        log.warning(
            "publishing %d held batch(es) (%d events) of %d held events from the takeover cutoff",
            len(chosen), sum(e.count for e in chosen), held_events,
        )  # fmt: skip

    def _check_confirmations(self) -> None:
        check = self._confirmations
        now = self._clock.monotonic()
        if check is None or now < self._next_confirm_check:
            return
        self._next_confirm_check = now + check.every_s
        due = check.awaiting.due()
        if not due:
            return
        by_source: dict[str, list[int]] = {}
        for env in due:
            by_source.setdefault(env.source, []).append(env.seq)
        try:
            done = {
                (source, seq)
                for source, seqs in by_source.items()
                for seq in check.confirmed(source, seqs)
            }
            if len(done) < len(due) and not check.quiet():
                check.awaiting.settle(done)
                return  # workers are behind or a killed one's message awaits redelivery
        except check.errors as exc:
            log.debug("confirmations unreadable, will retry: %s", exc)
            return
        lost = [env for env in due if (env.source, env.seq) not in done]
        check.awaiting.settle({(env.source, env.seq) for env in due})
        if lost:
            log.warning(
                "%d batch(es) (%d events) published over %.0f s ago were never confirmed "
                "and the broker holds nothing: a worker died holding them; sending them again",
                len(lost), sum(e.count for e in lost), check.awaiting.timeout_s,
            )  # fmt: skip
            self._outbox.requeue_front(lost)

    def _remember(self, env: Envelope) -> None:
        if self._replay_window_s <= 0 or self._replay_max_events <= 0:
            return
        now = self._clock.monotonic()
        self._recent.append((now, env))
        self._recent_events += env.count
        while self._recent and (
            now - self._recent[0][0] > self._replay_window_s
            or self._recent_events > self._replay_max_events
        ):
            self._recent_events -= self._recent.popleft()[1].count

    def _replay_recent(self) -> None:
        now = self._clock.monotonic()
        recent = [env for sent_at, env in self._recent if now - sent_at <= self._replay_window_s]
        self._recent.clear()
        self._recent_events = 0
        if recent:
            self._outbox.requeue_front(recent)
            log.warning(
                "broker outage: %d batch(es) (%d events) published in the last %.1f s will be "
                "sent again when it returns (idempotent)",
                len(recent), sum(e.count for e in recent), self._replay_window_s,
            )  # fmt: skip

    def _send_session(self, record_json: bytes) -> bool:
        try:
            self._client.send(PERSIST_SESSION, record_json, "[<session record>]")
        except self._client.errors as exc:
            self._unreachable(exc)
            return False
        self._reachable()
        return True

    def _unreachable(self, exc: BaseException) -> None:
        if self._outage_since is None:
            self._outage_since = self._clock.monotonic()
            log.warning(
                "broker unreachable, buffering (%d events held): %s", self._outbox.depth, exc
            )
            self._replay_recent()
        self.reachable = False

    def _reachable(self) -> None:
        if self._outage_since is not None:
            log.warning(
                "broker reachable again after %.1f s; flushing %d buffered events in order",
                self._clock.monotonic() - self._outage_since,
                self._outbox.depth,
            )
            self._outage_since = None
        self.reachable = True
        self._failures = 0

    def _wait_retry(self) -> None:
        self._failures += 1
        self._stop_event.wait(self._retry.next_delay(self._failures))
