"""Counters the simulator keeps about itself, served at ``GET /_sim/stats``.

``/info`` weight is accounted the way the exchange limits it (1,200 a minute per IP,
reference §7.1): ``info_weight`` in total, ``info_weight_by_minute`` per epoch minute (the
last :data:`MINUTES_KEPT`, keys are the minute number as text) and ``info_weight_max_60s``,
the most weight any 60 seconds (a sliding window) ever saw.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

MINUTES_KEPT = 120
WINDOW_MS = 60_000


@dataclass
class Stats:
    """Plain counters; one event loop writes them, readers take :meth:`snapshot`."""

    trades_generated: int = 0
    blocks_generated: int = 0
    fills_generated: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    frames_dropped_stalled: int = 0
    requests_received: int = 0
    requests_ignored_stalled: int = 0
    connections_open: int = 0
    connections_total: int = 0
    subscriptions: int = 0
    silent_closes: int = 0
    idle_closes: int = 0
    slow_consumer_closes: int = 0
    info_requests: int = 0
    info_weight: int = 0
    info_weight_by_minute: dict[str, int] = field(default_factory=dict)
    info_weight_max_60s: int = 0
    coins_listed: int = 0
    faults: dict[str, int] = field(
        default_factory=lambda: {
            "drop": 0,
            "stall": 0,
            "malformed": 0,
            "duplicate": 0,
            "silence": 0,
        }
    )

    def __post_init__(self) -> None:
        # (ms, weight) of the last 60 s of requests, and their sum: the sliding window.
        self._recent: deque[tuple[int, int]] = deque()
        self._recent_weight = 0

    def fault(self, kind: str, count: int = 1) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + count

    def add_info_weight(self, weight: int, now_ms: int) -> None:
        """Account one /info request's weight at ``now_ms``."""
        self.info_weight += weight
        minute = str(now_ms // WINDOW_MS)
        by_minute = self.info_weight_by_minute
        by_minute[minute] = by_minute.get(minute, 0) + weight
        if len(by_minute) > MINUTES_KEPT:
            del by_minute[min(by_minute, key=int)]
        self._recent.append((now_ms, weight))
        self._recent_weight += weight
        while self._recent and self._recent[0][0] <= now_ms - WINDOW_MS:
            self._recent_weight -= self._recent.popleft()[1]
        self.info_weight_max_60s = max(self.info_weight_max_60s, self._recent_weight)

    def snapshot(self) -> dict[str, Any]:
        data = asdict(self)
        data["faults"] = dict(self.faults)
        data["info_weight_by_minute"] = dict(self.info_weight_by_minute)
        return data
