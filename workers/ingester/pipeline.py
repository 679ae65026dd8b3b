"""Frame → events → dedup → gaps → batches → outbox: everything done per frame.

Contract: runs on the socket-reader thread and never blocks — every step is CPU work on
memory, and the only hand-off (:meth:`Outbox.put`) cannot wait. That is also why parsing
is not moved to another thread: the socket is an ordered stream, so a pong queued behind
unparsed data is late whichever thread parses, and with the GIL a second thread would not
parse faster. Encoding a finished batch to JSON bytes happens here too (cheap with orjson,
~0.6 µs an event) so the buffer holds compact bytes, not objects.

The pipeline also owns the connection's :class:`SessionRecord`, and turns outbox overflow
into counted, logged loss with gap records.

Leader or standby (see ``lease``): the pipeline works the same either way — a standby
builds the same batches, which its publisher holds instead of sending — except that only
the leader sends session records and journals gaps: a standby's holes are its own, not
the feed's, until it takes over (:meth:`submit_takeover`).
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from events import Event, EventKind, Fill, Position, Trade, decode_batch
from runtime.clock import Clock
from runtime.hyperliquid.positions import FlatTracker
from runtime.hyperliquid.protocol import ParsedFrame, channel_label, parse_frame
from runtime.metrics import (
    DUPLICATES_DROPPED,
    EVENTS,
    EVENTS_LOST,
    FRAMES,
    GAPS,
    MALFORMED,
    Metrics,
)
from workers.ingester.batcher import Batcher, Ready
from workers.ingester.broker import ROUTES
from workers.ingester.cache import LatestCache
from workers.ingester.dedup import FillDedup, TradeDedup
from workers.ingester.gaps import (
    THROUGH_FIELD,
    GapJournal,
    GapStream,
    GapTracker,
    JournalState,
    journal_field,
)
from workers.ingester.lease import Leadership
from workers.ingester.outbox import Envelope, Outbox
from workers.ingester.session import SessionRecord
from workers.ingester.throttle import LogThrottle
from workers.ingester.wire import batch_json

log = logging.getLogger(__name__)

SESSION_EVERY_S = 10.0
GAP_CLOSE_SEND_S = 0.25
# A new leader publishes what it holds from the previous leader's journaled newest time
# less this: the journal is written every quarter second, and streams of different keys
# arrive in slightly different orders. Copies inside it cost only duplicates.
TAKEOVER_MARGIN_MS = 2_000


class Pipeline:
    """Owned by the socket thread; :meth:`submit_takeover` is the one thread-safe entry."""

    def __init__(
        self,
        source: str,
        batcher: Batcher,
        outbox: Outbox,
        cache: LatestCache,
        metrics: Metrics,
        clock: Clock,
        dedup_size: int,
        journal: GapJournal | None = None,
        leadership: Leadership | None = None,
        direct: Callable[[Ready], None] | None = None,
    ) -> None:
        self.source = source
        # ``hyperwatch replay --into db``: finished batches go to this callable as events,
        # not encoded onto the outbox (they are stored in this process, never sent).
        self._direct = direct
        self._batcher = batcher
        self._outbox = outbox
        self._cache = cache
        self._metrics = metrics
        self._clock = clock
        self._trades = TradeDedup(dedup_size)
        self._fills = FillDedup(max(1000, dedup_size // 10))
        self._gaps = GapTracker(journal)
        self._flats = FlatTracker()
        self._takeovers: queue.SimpleQueue[tuple[JournalState, str | None]] = queue.SimpleQueue()
        self.leadership = leadership or Leadership.sole()
        # The lease value this pipeline settled its gaps under: it sends session records
        # only while that is still the lease (a sole pipeline has no lease, hence None).
        self._settled_fence: str | None = None if self.leadership.is_sole else ""
        self.handover = False  # set by a leader stopping while a standby is ready
        self._connected = False
        self._covered_since: int | None = None  # exchange ms: receiving, subscribed, since
        self._throttle = LogThrottle(log, clock)
        self._seq = 0
        self.session = SessionRecord(source, clock.time_ms())
        self._session_due = clock.monotonic() + SESSION_EVERY_S
        self._due = self._session_due  # earliest time tick() has work
        self._frames: dict[str, Any] = {}  # channel label → counter child, resolved once (hot path)

    # --- leadership -----------------------------------------------------------------------
    def submit_takeover(self, previous: JournalState, fence: str | None) -> None:
        """From the lease thread: this ingester now holds the lease ``fence`` after
        ``previous``."""
        self._takeovers.put((previous, fence))
        self._due = self._clock.monotonic()

    def take_over(self, previous: JournalState, fence: str | None) -> None:
        """Become the feed's leader (on the socket thread): settle the gaps against the
        previous leader's journal, then let the publisher send from the cutoff. A takeover
        whose lease is already gone again is skipped: the next one settles."""
        if fence is None or fence != self.leadership.fence:
            log.info("takeover under a lease no longer held: skipped")
            return
        coverage = None
        if self._connected and self._covered_since is not None:
            coverage = max(self._covered_since, self.leadership.evicted_newest_ms)
        now_ms = self._clock.time_ms()
        result = self._gaps.take_over(previous, coverage, now_ms, TAKEOVER_MARGIN_MS)
        cutoff = result.cutoff
        # This socket's own gaps: still open, or ended after the previous record does.
        self.session.gaps = [
            g
            for g in self.session.gaps
            if self._gaps.is_open(g)
            or (g.to_ms is not None and (cutoff is None or g.to_ms > cutoff))
        ]
        for gap in result.record:
            if gap.opened_at == now_ms:
                self._metrics.counter(GAPS).labels(gap.stream).inc()
            self.session.add_gap(gap)
        self._settled_fence = fence
        self.leadership.promote(cutoff, fence)
        log.warning(
            "leading the feed now: publishing from %s; %d gap(s) recorded%s",
            "the start of the buffer" if cutoff is None else f"{cutoff} ms (exchange time)",
            len(result.record),
            " (the buffer covers the handover)" if result.covered else "",
        )
        self.publish_session()
        if result.record:
            self._gap_closed()

    @property
    def leads(self) -> bool:
        """This pipeline speaks for the feed: the lease is held and its gaps are settled."""
        ld = self.leadership
        return ld.leading and ld.fence == self._settled_fence

    # --- connection lifecycle -------------------------------------------------------------
    def on_connected(self) -> None:
        """A new socket: a new session record, carrying every gap still open."""
        self._connected = True
        self.session = SessionRecord(self.source, self._clock.time_ms())
        for gap in self._gaps.open_gaps():
            self.session.add_gap(gap)
        self.publish_session()

    def on_disconnected(self, reason: str) -> None:
        """The socket ended: every key seen has an open gap from now, recorded at once."""
        self._connected = False
        now_ms = self._clock.time_ms()
        # A leader handing over keeps its shutdown gaps in the journal only: the standby
        # taking over records them unless its own buffer covers them (it usually does).
        recorded = not (self.handover and reason == "shutdown")
        for gap in self._gaps.on_disconnect(reason, now_ms, recorded):
            self._metrics.counter(GAPS).labels(gap.stream).inc()
            if recorded:
                self.session.add_gap(gap)
        self.session.end(now_ms, reason)
        self.publish_session()

    def forget(self, sub: Mapping[str, Any]) -> None:
        """A subscription was dropped for good (a delisting): stop tracking its key's gaps."""
        stream: GapStream | None = (
            "trades" if sub.get("type") == "trades" else
            "userFills" if sub.get("type") == "userFills" else None
        )  # fmt: skip
        key = sub.get("coin") if stream == "trades" else sub.get("user")
        if stream is None or not isinstance(key, str):
            return
        gap = self._gaps.forget(stream, key, self._clock.time_ms())
        if gap is not None:
            self.session.add_gap(gap)
            self._gap_closed()

    def on_healthy(self, received_ms: int) -> None:
        """Every subscription acknowledged and data flowing: from here on this ingester
        holds everything the exchange sends (until the next disconnect, which opens gaps)."""
        if self._covered_since is None:
            self._covered_since = received_ms

    def _gap_closed(self) -> None:
        """Send the session record within a quarter second: healing starts when the worker
        sees the close, and REST's recent trades reach back only seconds. (Not at once: after
        a reconnect every key closes its gap within moments, and one record carries them all.)"""
        self._session_due = min(self._session_due, self._clock.monotonic() + GAP_CLOSE_SEND_S)
        self._due = min(self._due, self._session_due)

    def publish_session(self) -> None:
        if self.leads:  # a standby's sessions and gaps are not the feed's
            self._outbox.put_session(self.session.id, self.session.to_json())
        self._session_due = self._clock.monotonic() + SESSION_EVERY_S
        self._due = min(self._due, self._session_due)

    # --- frames -----------------------------------------------------------------------------
    def on_frame(self, raw: bytes | str, received_ms: int) -> ParsedFrame:
        pf = parse_frame(raw, received_ms)
        self.session.frames += 1
        label = channel_label(pf.channel)
        counter = self._frames.get(label)
        if counter is None:
            counter = self._frames[label] = self._metrics.counter(FRAMES).labels(label)
        counter.inc()
        if pf.malformed is not None:
            self._malformed(pf, label)
        if pf.kind == "data" and pf.events:
            self._route(pf, received_ms)
        return pf

    def _malformed(self, pf: ParsedFrame, label: str) -> None:
        self.session.malformed += 1
        self._metrics.counter(MALFORMED).labels(pf.malformed).inc()
        self._throttle.log(
            logging.WARNING,
            f"malformed:{pf.malformed}:{label}",
            "malformed frame (%s): %s",
            pf.malformed,
            pf.detail,
        )

    def _route(self, pf: ParsedFrame, received_ms: int) -> None:
        channel = pf.channel
        if channel == "trades":
            self._accept_trades(pf.events)  # type: ignore[arg-type]
        elif channel == "allMids":
            self._cache.record_mids(pf.events)  # type: ignore[arg-type]
            self._cache.record_stream("allMids", received_ms)
            self._accept("mids", "allMids", pf.events)
        elif channel == "activeAssetCtx":
            self._cache.record_contexts(pf.events)  # type: ignore[arg-type]
            self._cache.record_stream("activeAssetCtx", received_ms)
            self._accept("asset_contexts", "activeAssetCtx", pf.events)
        elif channel == "clearinghouseState":
            self._accept_positions(pf)
        elif channel == "userFills":
            self._accept_fills(pf.events)  # type: ignore[arg-type]

    def _accept(self, kind: EventKind, label: str, events: Sequence[Event]) -> None:
        self.session.events += len(events)
        self._metrics.counter(EVENTS).labels(label).inc(len(events))
        self._emit(self._batcher.add(kind, events))
        deadline = self._batcher.next_deadline()
        if deadline is not None and deadline < self._due:
            self._due = deadline

    def _accept_trades(self, trades: list[Trade]) -> None:
        fresh, dropped = self._trades.new(trades)
        if dropped:
            self._duplicates("trades", dropped)
        if not fresh:
            return
        coin = fresh[0].coin
        if all(t.coin == coin for t in fresh):  # one subscription per coin: the usual case
            times = [t.time for t in fresh]
            if self._gaps.seen("trades", coin, min(times), max(times)) is not None:
                self._gap_closed()
            self._cache.record_stream("trades", max(times))
        else:
            self._see("trades", [(t.coin, t.time) for t in fresh])
        self._accept("trades", "trades", fresh)

    def _accept_fills(self, fills: list[Fill]) -> None:
        fresh, dropped = self._fills.new(fills)
        if dropped:
            self._duplicates("userFills", dropped)
        if not fresh:
            return
        self._see("userFills", [(f.user, f.time) for f in fresh])
        self._accept("fills", "userFills", fresh)

    def _accept_positions(self, pf: ParsedFrame) -> None:
        events: list[Position] = pf.events  # type: ignore[assignment]
        if pf.rejected == 0 and pf.stream_key is not None and pf.time_ms is not None:
            events = self._flats.complete_state(pf.stream_key, pf.time_ms, events)
        if pf.time_ms is not None:
            self._cache.record_stream("clearinghouseState", pf.time_ms)
        self._accept("positions", "clearinghouseState", events)

    def _duplicates(self, label: str, n: int) -> None:
        self.session.duplicates += n
        self._metrics.counter(DUPLICATES_DROPPED).labels(label).inc(n)

    def _see(self, stream: GapStream, keyed_times: list[tuple[str, int]]) -> None:
        spans: dict[str, list[int]] = {}
        for key, t in keyed_times:
            span = spans.get(key)
            if span is None:
                spans[key] = [t, t]
            elif t < span[0]:
                span[0] = t
            elif t > span[1]:
                span[1] = t
        newest = 0
        for key, (first, last) in spans.items():
            if self._gaps.seen(stream, key, first, last) is not None:
                self._gap_closed()
            newest = max(newest, last)
        self._cache.record_stream(stream, newest)

    # --- batches ----------------------------------------------------------------------------
    def _emit(self, ready: list[Ready]) -> None:
        for batch in ready:
            self._seq += 1
            if self._direct is not None:
                self._direct(batch)
                continue
            body = batch_json(batch.kind, batch.events, self.source, self._seq)
            env = Envelope(
                batch.kind,
                self._seq,
                len(batch.events),
                body,
                ROUTES[batch.kind],
                source=self.source,
            )
            if batch.kind == "trades" or batch.kind == "fills":
                env.meta["newest"] = _newest_per_key(batch.kind, batch.events)
            for lost in self._outbox.put(env):
                self._lost(lost)

    def _lost(self, env: Envelope) -> None:
        self._metrics.counter(EVENTS_LOST).labels(env.kind).inc(env.count)
        log.error(
            "buffer full (%d events): dropped %s batch seq=%d, %d events LOST",
            self._outbox.max_events,
            env.kind,
            env.seq,
            env.count,
        )
        if env.kind not in ("trades", "fills"):
            return  # state streams: the next push replaces what was lost
        stream: GapStream = "trades" if env.kind == "trades" else "userFills"
        key_field = "coin" if env.kind == "trades" else "user"
        spans: dict[str, tuple[int, int]] = {}
        for e in decode_batch(env.body).events:
            key, time = getattr(e, key_field), e.time
            lo, hi = spans.get(key, (time, time))
            spans[key] = (min(lo, time), max(hi, time))
        for key, (first, last) in spans.items():
            self.session.add_gap(GapTracker.loss(stream, key, first, last, self._clock.time_ms()))

    def tick(self) -> float:
        """Time-based work: a takeover, due batches, the periodic session record.

        Cheap when nothing is due (called between every two frames). Returns the
        monotonic time by which it wants to be called again.
        """
        now = self._clock.monotonic()
        if now < self._due:
            return self._due
        while not self._takeovers.empty():
            self.take_over(*self._takeovers.get_nowait())
        self._emit(self._batcher.due())
        if now >= self._session_due:
            self.publish_session()
        deadline = self._batcher.next_deadline()
        self._due = self._session_due if deadline is None else min(deadline, self._session_due)
        return self._due

    def flush_all(self) -> None:
        """Everything pending goes to the outbox now (shutdown)."""
        self.tick()
        self._emit(self._batcher.flush_all())


def _newest_per_key(kind: str, events: Sequence[Event]) -> dict[str, int]:
    """Journal field → newest event time in a trades or fills batch, plus ``*`` over all:
    what the journal's newest times advance by once the batch is published."""
    stream: GapStream = "trades" if kind == "trades" else "userFills"
    by_key: dict[str, int] = {}
    for e in events:
        key = e.coin if stream == "trades" else e.user  # type: ignore[union-attr]
        t = e.time
        if t > by_key.get(key, -1):
            by_key[key] = t
    newest = {journal_field(stream, key): t for key, t in by_key.items()}
    newest[THROUGH_FIELD] = max(by_key.values(), default=0)
    return newest
