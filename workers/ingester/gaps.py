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
quarter second, and only by the feed's leader — see ``lease``): the open gaps, and the
newest event time *published* per key plus over all keys (``through``). Whoever leads next
— a standby taking over, or the next start — calls :meth:`GapTracker.take_over` with that
journal: the feed's record is complete up to ``through`` (less a margin for the journal's
lag and arrival order), and from there on it is the new leader's to publish. If its own
buffer reaches back that far nothing is missing; otherwise each key gets a gap from where
the record ends to where the new leader's coverage begins, or, when it has received nothing
yet, an open gap that its first event closes (``crash`` gaps, either way). Open gaps the
previous leader left are closed the same way. Taking over never delays subscribing.

Gaps also record events dropped by the publisher's buffer overflow (``loss``): data that
was received and then lost is a gap in exactly the same sense.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
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
    # False for a leader's shutdown gaps when it hands over to a ready standby: they stay in
    # the journal only, and the standby records them unless its buffer covers them.
    recorded: bool = True

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

    def journal_doc(self) -> bytes:
        return orjson.dumps({**self.to_wire(), "recorded": self.recorded})

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
            recorded=bool(doc.get("recorded", True)),
        )


def journal_field(stream: GapStream, key: str) -> str:
    return f"{stream}|{key}"


def parse_field(name: str) -> GapKey | None:
    stream, sep, key = name.partition("|")
    return (stream, key) if sep and stream in STREAMS and key else None


THROUGH_FIELD = "*"  # the journal's newest-published field over all keys


@dataclass(slots=True)
class JournalState:
    """What the feed's previous leader left: open gaps and how far its record reaches."""

    open_gaps: list[Gap] = field(default_factory=list)
    newest: dict[GapKey, int] = field(default_factory=dict)
    through: int | None = None

    @property
    def empty(self) -> bool:
        return not self.open_gaps and not self.newest and self.through is None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse_journal(
    raw_open: Mapping[Any, Any], raw_newest: Mapping[Any, Any], log: Any
) -> JournalState:
    """The journal hashes as Redis returns them; unreadable entries are logged and skipped."""
    state = JournalState()
    for name, doc in raw_open.items():
        try:
            state.open_gaps.append(Gap.from_wire(orjson.loads(doc)))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.error("unreadable gap journal entry %r dropped: %r", name, doc[:200])
    for name, ms in raw_newest.items():
        text, value = _text(name), _text(ms)
        if not value.isdigit():
            continue
        if text == THROUGH_FIELD:
            state.through = int(value)
        elif (key := parse_field(text)) is not None:
            state.newest[key] = int(value)
    if state.through is None and state.newest:  # a journal from before `*` was written
        state.through = max(state.newest.values())
    return state


FORGET = -1  # a journal "newest time" that deletes the field instead


def _merge_newest(into: dict[str, int], newest: Mapping[str, int]) -> None:
    """Newest times only grow; a forgetting is kept until a newer time replaces it."""
    for name, ms in newest.items():
        current = into.get(name)
        if current is None or ms > current:
            into[name] = ms


class GapJournal:
    """Changes to persist: newest times published and open gaps. Thread-safe.

    The publisher notes what it published, the socket thread opens and closes gaps; the
    cache writer takes the changes every cycle and writes them in one fenced round trip
    (or gives them back when Redis is away). Newest times only ever grow.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._newest: dict[str, int] = {}
        self._open: dict[str, bytes | None] = {}  # None: the gap closed, delete it

    def note_published(self, newest: Mapping[str, int]) -> None:
        """Journal fields (``stream|key`` and ``*``) → newest event time just published."""
        with self._lock:
            _merge_newest(self._newest, newest)

    def forget(self, stream: GapStream, key: str) -> None:
        """The key is no longer followed (a delisted coin, an untracked wallet): its newest
        time and any open gap leave the journal, or every later takeover would open a
        crash gap for it that no event ever closes."""
        name = journal_field(stream, key)
        with self._lock:
            self._newest[name] = FORGET
            self._open[name] = None

    def opened(self, gap: Gap) -> None:
        doc = gap.journal_doc()
        with self._lock:
            self._open[journal_field(gap.stream, gap.key)] = doc

    def closed(self, gap: Gap) -> None:
        with self._lock:
            self._open[journal_field(gap.stream, gap.key)] = None

    def take(self) -> tuple[dict[str, int], dict[str, bytes | None]]:
        with self._lock:
            taken = (self._newest, self._open)
            self._newest, self._open = {}, {}
            return taken

    def give_back(self, newest: dict[str, int], open_: dict[str, bytes | None]) -> None:
        """Re-queue what a failed write did not store, unless newer changes arrived."""
        with self._lock:
            _merge_newest(self._newest, newest)
            for name, doc in open_.items():
                self._open.setdefault(name, doc)


@dataclass(slots=True)
class TakenOver:
    """What :meth:`GapTracker.take_over` decided: the gaps to record, and from when the new
    leader publishes (``cutoff``; None: everything it holds)."""

    cutoff: int | None
    record: list[Gap]
    covered: bool


class GapTracker:
    """Per (stream, key) last-seen times and open gaps. One owner thread."""

    def __init__(self, journal: GapJournal | None = None) -> None:
        self._last: dict[GapKey, int] = {}
        self._open: dict[GapKey, Gap] = {}
        self._journal = journal or GapJournal()
        self._first: dict[GapKey, int] = {}  # first event time per key of this run

    def seen(self, stream: GapStream, key: str, first_ms: int, last_ms: int) -> Gap | None:
        """New events on ``key`` spanning [first_ms, last_ms]; returns the gap this closes."""
        k = (stream, key)
        previous = self._last.get(k)
        if k not in self._first:
            self._first[k] = first_ms
        if previous is None or last_ms > previous:
            self._last[k] = last_ms
        gap = self._open.pop(k, None)
        if gap is not None:
            gap.to_ms = max(first_ms, gap.from_ms)
            self._journal.closed(gap)
        return gap

    def on_disconnect(self, reason: str, now_ms: int, recorded: bool = True) -> list[Gap]:
        """The connection ended: open a gap for every key seen and not already open."""
        opened = []
        for k, last in self._last.items():
            if k not in self._open:
                opened.append(self._open_gap(k, last, reason, now_ms, recorded))
        return opened

    def take_over(
        self, prev: JournalState, coverage_ms: int | None, now_ms: int, margin_ms: int
    ) -> TakenOver:
        """Become the feed's leader after ``prev`` (see the module docstring).

        ``coverage_ms``: the exchange time from which this ingester holds, unbroken, what it
        received (None: nothing yet). Its own open gaps (a socket down right now) are real
        holes and are recorded; its gaps that closed before the cutoff were covered by the
        previous leader's record and are not.
        """
        cutoff = None if prev.through is None else prev.through - margin_ms
        covered = coverage_ms is not None and cutoff is not None and coverage_ms <= cutoff
        record: list[Gap] = []
        for gap in prev.open_gaps:
            k = (gap.stream, gap.key)
            own = self._open.get(k)
            if own is not None:
                # One hole seen from both ingesters: keep the previous leader's row (its id
                # may be in the database already), from the earlier start.
                gap.from_ms = min(gap.from_ms, own.from_ms)
                self._open[k] = gap
            elif coverage_ms is not None and coverage_ms <= gap.from_ms:
                if not gap.recorded:
                    self._journal.closed(gap)  # handed over and covered: never a hole
                    continue
                gap.to_ms = gap.from_ms  # its row is open in the database: end it
                self._journal.closed(gap)
            elif coverage_ms is not None:
                gap.to_ms = coverage_ms
                self._journal.closed(gap)
            elif k in self._first:
                gap.to_ms = max(self._first[k], gap.from_ms)
                self._journal.closed(gap)
            else:
                self._open[k] = gap
                self._last[k] = max(self._last.get(k, gap.from_ms), gap.from_ms)
            gap.recorded = True
            record.append(gap)
        handled = {(g.stream, g.key) for g in prev.open_gaps}
        if cutoff is not None and not covered:
            # The previous leader stopped publishing without a handover this ingester's
            # buffer could cover: a crash, a kill, a partition — the same hole to the record.
            reason = "crash"
            for k, newest in prev.newest.items():
                if k in handled or k in self._open:
                    continue
                start = max(newest, cutoff)
                end = coverage_ms if coverage_ms is not None else self._first.get(k)
                if end is not None and end <= start:
                    continue  # this run holds the key from before the record ends
                gap = self._open_gap(k, start, reason, now_ms, True)
                if end is not None:
                    self._open.pop(k)
                    gap.to_ms = end
                    self._journal.closed(gap)
                else:
                    self._last[k] = max(self._last.get(k, start), start)
                record.append(gap)
        for gap in self._open.values():  # this run's own open gaps, now the feed's
            if gap not in record:
                gap.recorded = True
                self._journal.opened(gap)
                record.append(gap)
        return TakenOver(cutoff, record, covered)

    def forget(self, stream: GapStream, key: str, now_ms: int) -> Gap | None:
        """Stop following ``key``; an open gap on it ends now (returned, to be recorded)."""
        k = (stream, key)
        self._last.pop(k, None)
        self._first.pop(k, None)
        gap = self._open.pop(k, None)
        if gap is not None:
            gap.to_ms = max(gap.from_ms, now_ms)
        self._journal.forget(stream, key)
        return gap

    def open_gaps(self) -> list[Gap]:
        return list(self._open.values())

    def is_open(self, gap: Gap) -> bool:
        return self._open.get((gap.stream, gap.key)) is gap

    def _open_gap(
        self, k: GapKey, from_ms: int, reason: str, now_ms: int, recorded: bool = True
    ) -> Gap:
        gap = Gap(k[0], k[1], from_ms, ended_by=reason, opened_at=now_ms, recorded=recorded)
        self._open[k] = gap
        self._journal.opened(gap)
        return gap

    @staticmethod
    def loss(stream: GapStream, key: str, first_ms: int, last_ms: int, now_ms: int) -> Gap:
        """A closed gap for events that were received and then dropped."""
        return Gap(stream, key, first_ms, last_ms, ended_by="loss", opened_at=now_ms)
