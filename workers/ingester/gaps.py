"""Gap records: where the data may be missing, from the moment a connection ends.

For streams that are not full-state pushes (``trades`` per coin, ``userFills`` per user) the
tracker remembers the newest event time seen per key. When a connection ends — a drop, a
dead socket, a shutdown — a gap opens at once per key from that time, ``ended_by`` the
reason; the first *new* event on the key after a reconnect (replays are removed by dedup
first) closes it. The window ``[from_ms, to_ms]`` is therefore the span in which events may
have been missed: the exchange's short replay may have filled part or all of it, and
healing (REST, archives) fills what it can. A gap still open when the next connection ends
stays open (one gap, not two).

What outlives the process (:class:`GapJournal`, written to Redis by the cache writer every
quarter second): the open gaps and the newest time seen per key. The next start restores
the open gaps — so a gap opened before a SIGTERM during an outage is closed by the next
run — and opens a ``crash`` gap for every key whose newest time was journaled but which
had no open gap: the process ended without a disconnect (SIGKILL, OOM, power). Restoring
never delays subscribing: the journal is read when Redis first answers, and a key that
delivered events before that has its restored gap closed at its first event of this run.

Gaps also record events dropped by the publisher's buffer overflow (``loss``): data that
was received and then lost is a gap in exactly the same sense.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import orjson

GapStream = Literal["trades", "userFills"]
GapKey = tuple[GapStream, str]
STREAMS: tuple[GapStream, ...] = ("trades", "userFills")


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass(slots=True)
class Gap:
    stream: GapStream
    key: str
    from_ms: int
    to_ms: int | None = None
    ended_by: str = "closed"
    opened_at: int = 0
    id: str = field(default_factory=_new_id)

    def to_wire(self) -> dict[str, Any]:
        """The session record's gap shape (``coin`` for trades, ``user`` for userFills)."""
        return {
            "id": self.id,
            "stream": self.stream,
            "key": self.key,
            "coin": self.key if self.stream == "trades" else None,
            "user": self.key if self.stream == "userFills" else None,
            "from_ms": self.from_ms,
            "to_ms": self.to_ms,
            "ended_by": self.ended_by,
            "opened_at": self.opened_at,
        }

    @classmethod
    def from_wire(cls, doc: Mapping[str, Any]) -> Gap:
        return cls(
            stream=cast(GapStream, doc["stream"]),
            key=str(doc["key"]),
            from_ms=int(doc["from_ms"]),
            to_ms=None if doc.get("to_ms") is None else int(doc["to_ms"]),
            ended_by=str(doc.get("ended_by") or "closed"),
            opened_at=int(doc.get("opened_at") or 0),
            id=str(doc["id"]),
        )


def journal_field(stream: GapStream, key: str) -> str:
    return f"{stream}|{key}"


def parse_field(name: str) -> GapKey | None:
    stream, sep, key = name.partition("|")
    return (stream, key) if sep and stream in STREAMS and key else None


class GapJournal:
    """Changes to persist: newest times seen and open gaps. Thread-safe.

    The socket thread records; the cache writer takes the changes every cycle and writes
    them in its one pipelined round trip (or gives them back when Redis is away).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}
        self._open: dict[str, bytes | None] = {}  # None: the gap closed, delete it

    def note_seen(self, stream: GapStream, key: str, ms: int) -> None:
        with self._lock:
            self._seen[journal_field(stream, key)] = ms

    def opened(self, gap: Gap) -> None:
        doc = orjson.dumps(gap.to_wire())
        with self._lock:
            self._open[journal_field(gap.stream, gap.key)] = doc

    def closed(self, gap: Gap) -> None:
        with self._lock:
            self._open[journal_field(gap.stream, gap.key)] = None

    def take(self) -> tuple[dict[str, int], dict[str, bytes | None]]:
        with self._lock:
            taken = (self._seen, self._open)
            self._seen, self._open = {}, {}
            return taken

    def give_back(self, seen: dict[str, int], open_: dict[str, bytes | None]) -> None:
        """Re-queue what a failed write did not store, unless newer changes arrived."""
        with self._lock:
            for name, ms in seen.items():
                self._seen.setdefault(name, ms)
            for name, doc in open_.items():
                self._open.setdefault(name, doc)


class GapTracker:
    """Per (stream, key) last-seen times and open gaps. One owner thread."""

    def __init__(self, journal: GapJournal | None = None) -> None:
        self._last: dict[GapKey, int] = {}
        self._open: dict[GapKey, Gap] = {}
        self._journal = journal or GapJournal()
        # First event time per key of this run, kept only until the journal is restored.
        self._first: dict[GapKey, int] | None = {}

    def seen(self, stream: GapStream, key: str, first_ms: int, last_ms: int) -> Gap | None:
        """New events on ``key`` spanning [first_ms, last_ms]; returns the gap this closes."""
        k = (stream, key)
        previous = self._last.get(k)
        if self._first is not None and k not in self._first:
            self._first[k] = first_ms
        if previous is None or last_ms > previous:
            self._last[k] = last_ms
            self._journal.note_seen(stream, key, last_ms)
        gap = self._open.pop(k, None)
        if gap is not None:
            gap.to_ms = max(first_ms, gap.from_ms)
            self._journal.closed(gap)
        return gap

    def on_disconnect(self, reason: str, now_ms: int) -> list[Gap]:
        """The connection ended: open a gap for every key seen and not already open."""
        opened = []
        for k, last in self._last.items():
            if k not in self._open:
                opened.append(self._open_gap(k, last, reason, now_ms))
        return opened

    def restore(
        self, gaps: Iterable[Gap], newest: Mapping[GapKey, int], now_ms: int
    ) -> tuple[list[Gap], list[Gap]]:
        """Take over a previous run's journal: its open gaps stay open (same ids); a key
        with a newest time but no open gap ended without a disconnect — a ``crash`` gap
        opens from that time. A key this run has already seen closes its gap at once, at
        its first event of this run. Returns (the gaps taken over, the crash gaps)."""
        first = self._first or {}
        self._first = None
        kept: list[Gap] = []
        for gap in gaps:
            k = (gap.stream, gap.key)
            if k in self._open:
                continue  # this run's own gap on the key covers the same hole, and more
            self._open[k] = gap
            kept.append(gap)
        crashed = [
            self._open_gap(k, last, "crash", now_ms)
            for k, last in newest.items()
            if k not in self._open
        ]
        for gap in (*kept, *crashed):
            k = (gap.stream, gap.key)
            if k in first:
                self._open.pop(k)
                gap.to_ms = max(first[k], gap.from_ms)
                self._journal.closed(gap)
            else:
                self._last[k] = max(self._last.get(k, gap.from_ms), gap.from_ms)
        return kept, crashed

    def open_gaps(self) -> list[Gap]:
        return list(self._open.values())

    def _open_gap(self, k: GapKey, from_ms: int, reason: str, now_ms: int) -> Gap:
        gap = Gap(k[0], k[1], from_ms, ended_by=reason, opened_at=now_ms)
        self._open[k] = gap
        self._journal.opened(gap)
        return gap

    @staticmethod
    def loss(stream: GapStream, key: str, first_ms: int, last_ms: int, now_ms: int) -> Gap:
        """A closed gap for events that were received and then dropped."""
        return Gap(stream, key, first_ms, last_ms, ended_by="loss", opened_at=now_ms)
