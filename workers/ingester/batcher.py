"""Per-kind batching: a batch leaves at ``max_events`` events or ``max_ms`` after its first
event, whichever comes first.

A batch is the unit of work downstream (architecture §3.1): one broker message, one bulk
statement. The window starts at the first event of a batch, not at a fixed tick, so a lone
event waits at most ``max_ms`` and a burst is cut into full batches at once. Nothing here
does I/O or sleeps; the owner calls :meth:`due` when :meth:`next_deadline` has passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from events import Event, EventKind
from runtime.clock import Clock


@dataclass(slots=True)
class Ready:
    """A batch ready to publish: events of one kind, in arrival order."""

    kind: EventKind
    events: list[Event]


class Batcher:
    """Not thread-safe: owned by the thread that parses frames."""

    def __init__(self, max_events: int, max_ms: int, clock: Clock) -> None:
        if max_events < 1 or max_ms < 1:
            raise ValueError("max_events and max_ms must be at least 1")
        self.max_events = max_events
        self.max_s = max_ms / 1000.0
        self._clock = clock
        self._pending: dict[EventKind, list[Event]] = {}
        self._deadline: dict[EventKind, float] = {}

    def add(self, kind: EventKind, events: Sequence[Event]) -> list[Ready]:
        """Append events; returns the batches that became full (possibly several)."""
        if not events:
            return []
        ready: list[Ready] = []
        pending = self._pending.get(kind)
        if pending is None:
            pending = self._pending[kind] = []
            self._deadline[kind] = self._clock.monotonic() + self.max_s
        room = self.max_events - len(pending)
        if len(events) < room:
            pending.extend(events)
            return ready
        pending.extend(events[:room])
        ready.append(self._take(kind))
        rest = events[room:]
        while len(rest) >= self.max_events:
            ready.append(Ready(kind, list(rest[: self.max_events])))
            rest = rest[self.max_events :]
        if rest:
            ready.extend(self.add(kind, rest))
        return ready

    def _take(self, kind: EventKind) -> Ready:
        self._deadline.pop(kind, None)
        return Ready(kind, self._pending.pop(kind))

    def next_deadline(self) -> float | None:
        """Monotonic time at which the oldest pending batch is due, or None if empty."""
        return min(self._deadline.values()) if self._deadline else None

    def due(self) -> list[Ready]:
        """The batches whose window has closed."""
        now = self._clock.monotonic()
        return [self._take(k) for k, at in list(self._deadline.items()) if at <= now]

    def flush_all(self) -> list[Ready]:
        """Every pending batch, due or not (shutdown)."""
        return [self._take(k) for k in list(self._pending)]

    @property
    def pending_events(self) -> int:
        return sum(len(v) for v in self._pending.values())
