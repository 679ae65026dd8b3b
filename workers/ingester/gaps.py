"""Gap records: where the data may be missing after a reconnect.

For streams that are not full-state pushes (``trades`` per coin, ``userFills`` per user) the
tracker remembers the newest event time seen per key. Every reconnect opens a gap per key
from that time; the first *new* event on the key after the reconnect (replays are removed
by dedup first) closes it. The window ``[from_ms, to_ms]`` is therefore the span in which
events may have been missed: the exchange's short replay may have filled part or all of it,
and a closed gap whose window holds no stored events is proof that nothing was lost.
A gap still open when the next reconnect comes stays open (one gap, not two).

Gaps also record events dropped by the publisher's buffer overflow (``loss``): data that
was received and then lost is a gap in exactly the same sense.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

GapStream = Literal["trades", "userFills"]


@dataclass(slots=True)
class Gap:
    stream: GapStream
    key: str
    from_ms: int
    to_ms: int | None = None

    def to_wire(self) -> dict[str, Any]:
        """The session record's gap shape (coin for trades, user for userFills)."""
        return {
            "stream": self.stream,
            "coin": self.key if self.stream == "trades" else None,
            "user": self.key if self.stream == "userFills" else None,
            "from_ms": self.from_ms,
            "to_ms": self.to_ms,
        }


class GapTracker:
    """Per (stream, key) last-seen times and open gaps. One owner thread."""

    def __init__(self) -> None:
        self._last: dict[tuple[GapStream, str], int] = {}
        self._open: dict[tuple[GapStream, str], Gap] = {}

    def seen(self, stream: GapStream, key: str, first_ms: int, last_ms: int) -> Gap | None:
        """New events on ``key`` spanning [first_ms, last_ms]; returns the gap this closes."""
        k = (stream, key)
        previous = self._last.get(k)
        if previous is None or last_ms > previous:
            self._last[k] = last_ms
        gap = self._open.pop(k, None)
        if gap is not None:
            gap.to_ms = max(first_ms, gap.from_ms)
        return gap

    def on_reconnect(self) -> list[Gap]:
        """Open a gap for every key seen before and not already open; returns the new ones."""
        opened = []
        for k, last in self._last.items():
            if k not in self._open:
                gap = Gap(k[0], k[1], last)
                self._open[k] = gap
                opened.append(gap)
        return opened

    def open_gaps(self) -> list[Gap]:
        return list(self._open.values())

    @staticmethod
    def loss(stream: GapStream, key: str, first_ms: int, last_ms: int) -> Gap:
        """A closed gap for events that were received and then dropped."""
        return Gap(stream, key, first_ms, last_ms)
