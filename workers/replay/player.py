"""The player: recorded frames → the ingester's own pipeline → the persist tasks.

Contract: :meth:`Player.play` feeds every record in order through a
:class:`~workers.ingester.pipeline.Pipeline` per recorded socket — the live parser, dedup,
gap tracker and batcher, unchanged — and sends what they build to the ``ingest`` queue,
synchronously (the player waits on the broker; nothing is dropped). So replayed rows carry
the live keys and an hour already stored adds nothing.

What differs from a live ingester, and why:
- Time is the recording's: the pipelines run on a :class:`~runtime.clock.SetClock` set to each record's
  receive time, so gaps, sessions and batch windows land where they did live.
- Only the persist targets are sent (``ingest`` queue): old mids and contexts must not
  evaluate alerts, and no latest-state cache, lease or gap journal is touched, so a replay
  never opens gaps in a live feed's journal. Its batches and sessions carry their own
  source (``replay:<name>``).
- Session and gap ids are derived from the source, the recorded connection and the gap's
  key and start (uuid5) instead of drawn at random, so replaying a file twice upserts the
  same session and gap rows.
- A recorded close (``C``) ends the session as the live one ended, opening the same gaps; a
  ``D`` line (frames missing from the recording) is a disconnect and a reconnect, so what the
  recording does not hold is a gap record. A connection still open where the input ends
  (the ``--to`` bound, a crash) is flushed, not closed: the end of a window is no gap.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from runtime.clock import SYSTEM_CLOCK, Clock, SetClock
from runtime.hyperliquid.protocol import ParsedFrame
from runtime.metrics import Metrics
from runtime.recording import Record
from workers.ingester.batcher import Batcher, Ready
from workers.ingester.broker import PERSIST_SESSION, Target
from workers.ingester.cache import LatestCache
from workers.ingester.outbox import Outbox
from workers.ingester.pipeline import Pipeline

REPLAY_NAMESPACE = uuid.UUID("6f1d7c1e-3a55-4c1b-9a43-9b8e2f7e0a11")
PERSIST_QUEUE = "ingest"
DRAIN_EVERY = 256  # records between checks for session records to send
OUTBOX_EVENTS = 10_000_000  # never reached: the player drains after every batch

Send = Callable[[Target, bytes, str], None]


@dataclass
class ReplayResult:
    records: int = 0
    frames: int = 0
    malformed: int = 0
    events: dict[str, int] = field(default_factory=dict)  # batch kind → events sent
    batches: int = 0
    sessions: int = 0
    seqs: dict[str, list[int]] = field(default_factory=dict)  # source → batch seqs sent
    seen: dict[str, list[int]] = field(default_factory=dict)  # coin → [first, last] trade ms
    gaps: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → the replay's own gap

    @property
    def trades(self) -> int:
        return self.events.get("trades", 0)


class Pacer:
    """Holds the replay to ``speed`` times the recorded pace (``None``: as fast as it goes)."""

    def __init__(
        self,
        speed: float | None,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.speed = speed
        self._clock = clock
        self._sleep = sleep
        self._start: tuple[int, float] | None = None

    def wait(self, recv_ns: int) -> None:
        delay = self.delay(recv_ns)
        if delay > 0:
            self._sleep(delay)

    def delay(self, recv_ns: int) -> float:
        """Seconds to wait before the record received at ``recv_ns`` is due."""
        if self.speed is None:
            return 0.0
        now = self._clock.monotonic()
        if self._start is None:
            self._start = (recv_ns, now)
            return 0.0
        first_ns, started = self._start
        return started + (recv_ns - first_ns) / 1e9 / self.speed - now

    def restart(self) -> None:
        """The next record is due at once and sets the pace from there (after a pause)."""
        self._start = None


class Player:
    def __init__(
        self,
        name: str,
        send: Send,
        metrics: Metrics,
        batch_size: int,
        batch_ms: int,
        dedup_size: int,
        direct: Callable[[Ready], None] | None = None,
    ) -> None:
        self.source = f"replay:{name}"
        self._send = send
        self._direct = direct
        self._metrics = metrics
        self._batch_size = batch_size
        self._batch_ms = batch_ms
        self._dedup_size = dedup_size
        self.clock = SetClock()
        self._outbox = Outbox(OUTBOX_EVENTS)
        self._pipelines: dict[int, Pipeline] = {}
        self._open: dict[int, str | None] = {}  # socket → recorded connection now open
        self._session_ids: dict[str, str] = {}  # the pipeline's random id → the stable one
        self._sessions_of: dict[str, int] = {}
        self.result = ReplayResult()

    def play(self, records: Iterable[Record], pacer: Pacer | None = None) -> ReplayResult:
        pacer = pacer or Pacer(None)
        since_drain = 0
        for record in records:
            pacer.wait(record.recv_ns)
            self.feed(record)
            since_drain += 1
            if since_drain >= DRAIN_EVERY or len(self._outbox):
                since_drain = 0
                self._drain()
        self.finish()
        return self.result

    def finish(self) -> None:
        """Flush every pipeline (connections still open stay open: see the module doc)."""
        for pipeline in self._pipelines.values():
            pipeline.flush_all()
            pipeline.publish_session()
        self._drain()

    def feed(self, record: Record) -> None:
        """Play one record now (the caller drains: :meth:`drain`)."""
        self.clock.ns = record.recv_ns
        self._play(record)

    def touch(self, record: Record) -> None:
        """A frame another player parses: only its connection is noted (opened if new), so
        this player's sessions start and are numbered as theirs are."""
        self.clock.ns = record.recv_ns
        socket = _socket_of(record.conn)
        pipeline = self._pipeline(socket)
        if self._open.get(socket) != record.conn:
            self._connect(socket, record.conn, pipeline)
        for each in self._pipelines.values():
            each.tick()

    def drain(self) -> None:
        self._drain()

    def _play(self, record: Record) -> None:
        self.result.records += 1
        socket = _socket_of(record.conn)
        pipeline = self._pipeline(socket)
        kind = record.kind
        if kind == "F":
            if self._open.get(socket) != record.conn:
                self._connect(socket, record.conn, pipeline)
            pf: ParsedFrame = pipeline.on_frame(record.payload, self.clock.time_ms())
            self.result.frames += 1
            if pf.malformed is not None:
                self.result.malformed += 1
            if pf.channel == "trades" and pf.events:
                self._saw(pf)
        elif kind == "O":
            self._connect(socket, record.conn, pipeline)
        elif kind == "C":
            if self._open.get(socket) == record.conn:
                pipeline.on_disconnected(record.payload.decode(errors="replace"))
                self._open[socket] = None
        elif kind == "D" and self._open.get(socket) == record.conn:
            # Frames the recording does not hold: a gap, as a live drop would be.
            pipeline.on_disconnected("recording_dropped")
            self._open[socket] = None
            self._connect(socket, record.conn, pipeline)
        for each in self._pipelines.values():
            each.tick()

    def _saw(self, pf: ParsedFrame) -> None:
        """Widen each coin's span of trade times played (what the recording covers)."""
        events = pf.events
        coin = events[0].coin
        if all(t.coin == coin for t in events):  # one subscription per coin: the usual case
            times = [t.time for t in events]
            self._widen(coin, min(times), max(times))
            return
        for trade in events:
            self._widen(trade.coin, trade.time, trade.time)

    def _widen(self, coin: str, lo: int, hi: int) -> None:
        span = self.result.seen.get(coin)
        if span is None:
            self.result.seen[coin] = [lo, hi]
        else:
            span[0] = min(span[0], lo)
            span[1] = max(span[1], hi)

    def _connect(self, socket: int, conn: str, pipeline: Pipeline) -> None:
        if self._open.get(socket) is not None:
            # A new connection without the old one's close (the process died): the live
            # successor recorded this as the crash it was.
            pipeline.on_disconnected("recording_ended")
        # The n-th session of a recorded connection (a D line starts another one).
        n = self._sessions_of[conn] = self._sessions_of.get(conn, 0) + 1
        pipeline.on_connected()
        stable = uuid.uuid5(REPLAY_NAMESPACE, f"{self.source}|{conn}|{n}")
        self._session_ids[pipeline.session.id] = str(stable)
        self._open[socket] = conn

    def _pipeline(self, socket: int) -> Pipeline:
        pipeline = self._pipelines.get(socket)
        if pipeline is None:
            source = self.source if socket == 0 else f"{self.source}.c{socket}"
            pipeline = Pipeline(
                source,
                Batcher(self._batch_size, self._batch_ms, self.clock),
                self._outbox,
                LatestCache(),  # never written to Redis: a replay is not the latest state
                self._metrics,
                self.clock,
                self._dedup_size,
                direct=None if self._direct is None else self._stored,
            )
            self._pipelines[socket] = pipeline
            self._session_ids[pipeline.session.id] = str(
                uuid.uuid5(REPLAY_NAMESPACE, f"{source}|before-first-connection")
            )
        return pipeline

    def _stored(self, batch: Ready) -> None:
        assert self._direct is not None
        if batch.kind == "mids":
            return  # mids are evaluated, never stored: a replay evaluates nothing
        self._direct(batch)
        self.result.batches += 1
        self.result.events[batch.kind] = self.result.events.get(batch.kind, 0) + len(batch.events)

    def _drain(self) -> None:
        outbox = self._outbox
        while (env := outbox.head(0)) is not None:
            targets = [t for t in env.targets if t.queue == PERSIST_QUEUE]
            argsrepr = f"[<{env.kind} replay batch seq={env.seq} events={env.count}>]"
            for target in targets:
                self._send(target, env.body, argsrepr)
            outbox.done(env)
            if targets:
                self.result.batches += 1
                self.result.events[env.kind] = self.result.events.get(env.kind, 0) + env.count
                self.result.seqs.setdefault(env.source, []).append(env.seq)
        sessions = outbox.take_sessions()
        for record_json in sessions.values():
            self._send(PERSIST_SESSION, self._stable_ids(record_json), "[<replay session record>]")
            self.result.sessions += 1
        outbox.sessions_done({})

    def _stable_ids(self, record_json: bytes) -> bytes:
        record = orjson.loads(record_json)
        record["id"] = self._session_ids.get(record["id"], record["id"])
        for gap in record.get("gaps", []):
            name = f"{record['source']}|{gap['stream']}|{gap['key']}|{gap['from_ms']}"
            gap["id"] = str(uuid.uuid5(REPLAY_NAMESPACE, name))
            known = self.result.gaps.get(gap["id"])
            if known is None or known.get("to_ms") is None:
                self.result.gaps[gap["id"]] = gap  # a closed copy over an open one
        return orjson.dumps(record)


def _socket_of(conn: str) -> int:
    """``[<ingester>/]<socket>.<n>`` → the socket index."""
    head = conn.rpartition("/")[2].partition(".")[0]
    return int(head) if head.isdigit() else 0
