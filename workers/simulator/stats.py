"""Counters the simulator keeps about itself, served at ``GET /_sim/stats``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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

    def fault(self, kind: str, count: int = 1) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + count

    def snapshot(self) -> dict[str, Any]:
        data = asdict(self)
        data["faults"] = dict(self.faults)
        return data
