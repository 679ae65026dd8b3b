"""Per-kind batching: a batch leaves at ``max_events`` events or ``max_ms`` after its first
event, whichever comes first.

A batch is the unit of work downstream (architecture §3.1): one broker message, one bulk
statement. The window starts at the first event of a batch, not at a fixed tick, so a lone
event waits at most ``max_ms`` and a burst is cut into full batches at once. Nothing here
does I/O or sleeps; the owner calls :meth:`due` when :meth:`next_deadline` has passed.

A kind may have its own, shorter window (``windows_ms``): mids and asset contexts are what
price and funding alerts judge, and few (one frame carries every coin's mid), so their
window is the alert latency's largest part while it saves almost no messages; trades keep
the long window their throughput needs (docs/PERFORMANCE.md "Ingester batch size").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from events import Event, EventKind
from runtime.clock import Clock

# What alert evaluation judges as it arrives (price and funding rules): the kinds that
# get INGEST_ALERT_BATCH_MS. Positions keep the long window (polled, seconds apart).
ALERT_KINDS: Final[tuple[EventKind, ...]] = ("mids", "asset_contexts")


@dataclass(slots=True)
class Ready:
    """A batch ready to publish: events of one kind, in arrival order."""

    kind: EventKind
    events: list[Event]


class Batcher:
    """Not thread-safe: owned by the thread that parses frames."""

    def __init__(
        self,
        max_events: int,
        max_ms: int,
        clock: Clock,
        windows_ms: Mapping[EventKind, int] | None = None,
    ) -> None:
        windows_ms = dict(windows_ms or {})
        if max_events < 1 or min([max_ms, *windows_ms.values()]) < 1:
            raise ValueError("max_events and max_ms must be at least 1")
        self.max_events = max_events
        self.max_s = max_ms / 1000.0
        self._window_s = {kind: ms / 1000.0 for kind, ms in windows_ms.items()}
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
            self._deadline[kind] = self._clock.monotonic() + self._window_s.get(kind, self.max_s)
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
