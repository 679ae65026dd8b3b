"""The record of one WebSocket connection, as the ``hyperwatch.persist.session`` task takes it.

One record per connection, identified by a fresh uuid; the ingester sends it at connect,
periodically and at close, always with cumulative counters, because the worker upserts by
id: a repeat or an out-of-order delivery leaves the newest counts standing. Gaps opened at
this connect (or carried over still open from the previous one) and loss records are
listed on it.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from workers.ingester.gaps import Gap


class SessionRecord:
    """Mutable counters owned by the parsing thread; :meth:`to_json` snapshots them."""

    def __init__(self, source: str, started_at_ms: int) -> None:
        self.id = str(uuid.uuid4())
        self.source = source
        self.started_at = started_at_ms
        self.ended_at: int | None = None
        self.end_reason: str | None = None
        self.frames = 0
        self.events = 0
        self.malformed = 0
        self.duplicates = 0
        self.gaps: list[Gap] = []

    def add_gap(self, gap: Gap) -> None:
        if all(g is not gap for g in self.gaps):
            self.gaps.append(gap)

    def end(self, at_ms: int, reason: str) -> None:
        if self.ended_at is None:
            self.ended_at = at_ms
            self.end_reason = reason[:200]

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
            "frames": self.frames,
            "events": self.events,
            "malformed": self.malformed,
            "duplicates": self.duplicates,
            "gaps": [g.to_wire() for g in self.gaps],
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_wire())
