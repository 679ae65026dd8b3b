"""``hyperwatch replay --stats``: what a recording holds, read-only (nothing is stored).

Every frame is parsed with the live parser, so "malformed" means what it means live.
Reconnects are the connections opened after a socket's first; ``D`` lines (frames the
recorder had to leave out) are counted apart, as holes.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from runtime.hyperliquid.protocol import channel_label, parse_frame
from runtime.recording import Record


@dataclass
class RecordingStats:
    frames: int = 0
    malformed: int = 0
    channels: Counter[str] = field(default_factory=Counter)
    coins: set[str] = field(default_factory=set)
    first_ns: int | None = None
    last_ns: int | None = None
    connections: int = 0
    reconnects: int = 0
    closes: Counter[str] = field(default_factory=Counter)  # reason → count
    dropped: int = 0  # frames the recorder left out (D lines)
    events: int = 0
    _sockets: set[str] = field(default_factory=set)

    def add(self, record: Record) -> None:
        if self.first_ns is None or record.recv_ns < self.first_ns:
            self.first_ns = record.recv_ns
        if self.last_ns is None or record.recv_ns > self.last_ns:
            self.last_ns = record.recv_ns
        kind = record.kind
        if kind == "F":
            self._frame(record)
        elif kind == "O":
            socket = record.conn.partition(".")[0]
            self.connections += 1
            if socket in self._sockets:
                self.reconnects += 1
            self._sockets.add(socket)
        elif kind == "C":
            self.closes[record.payload.decode(errors="replace")] += 1
        elif kind == "D" and record.payload.isdigit():
            self.dropped += int(record.payload)

    def _frame(self, record: Record) -> None:
        self.frames += 1
        pf = parse_frame(record.payload, record.recv_ns // 1_000_000)
        self.channels[channel_label(pf.channel) if pf.channel else pf.kind] += 1
        if pf.malformed is not None:
            self.malformed += 1
        if pf.kind == "data":
            self.events += len(pf.events)
            coin = getattr(pf.events[0], "coin", None) if pf.events else None
            if pf.channel in ("trades", "activeAssetCtx") and isinstance(coin, str):
                self.coins.add(coin)

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "events": self.events,
            "malformed": self.malformed,
            "channels": dict(sorted(self.channels.items())),
            "coins": sorted(self.coins),
            "from": _iso(self.first_ns),
            "to": _iso(self.last_ns),
            "span_s": (
                round((self.last_ns - self.first_ns) / 1e9, 3)
                if self.first_ns is not None and self.last_ns is not None
                else 0.0
            ),
            "connections": self.connections,
            "reconnects": self.reconnects,
            "closes": dict(sorted(self.closes.items())),
            "dropped_from_recording": self.dropped,
        }


def collect(records: Iterable[Record]) -> RecordingStats:
    stats = RecordingStats()
    for record in records:
        stats.add(record)
    return stats


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat(timespec="milliseconds")


def text_lines(stats: dict[str, Any]) -> list[str]:
    channels = ", ".join(f"{k} {v:,}" for k, v in stats["channels"].items()) or "none"
    coins = stats["coins"]
    shown = ", ".join(coins[:20]) + (f" … ({len(coins)} in all)" if len(coins) > 20 else "")
    closes = ", ".join(f"{k} {v}" for k, v in stats["closes"].items()) or "none"
    return [
        f"frames: {stats['frames']:,} ({stats['events']:,} events, "
        f"{stats['malformed']:,} malformed)",
        f"channels: {channels}",
        f"coins: {len(coins)}{': ' + shown if coins else ''}",
        f"span: {stats['from']} → {stats['to']} ({stats['span_s']:,} s)",
        f"connections: {stats['connections']} ({stats['reconnects']} reconnects; closed: {closes})",
        f"dropped from the recording: {stats['dropped_from_recording']:,} frames",
    ]
