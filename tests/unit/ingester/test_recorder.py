"""The recorder off the hot path: lanes bound what waits, drops are counted and marked
where they happened, files rotate at the hour, a failed disk write leaves a readable file."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from runtime import recording
from runtime.clock import ManualClock
from runtime.metrics import Metrics
from workers.ingester import recorder as recorder_module
from workers.ingester.recorder import Recorder, RecordingSink

HOUR_MS = 3_600_000
START_MS = 1_787_050_800_000  # an hour's start


def make(tmp_path: Path, max_bytes: int = 1 << 20) -> tuple[Recorder, ManualClock, Metrics]:
    clock = ManualClock(wall_ms=START_MS + 1000)
    metrics = Metrics()
    return Recorder(tmp_path, "feed", "host-1", metrics, clock, max_bytes), clock, metrics


def read_all(directory: Path, closed: bool = False) -> list[recording.Record]:
    """Every record; a file still open ends without the frame's end mark, a closed one with."""
    out: list[recording.Record] = []
    for path in recording.in_time_order(list(directory.iterdir())):
        result = recording.ReadResult()
        out.extend(recording.read_records(path, result))
        assert result.header is not None and result.damaged is None
        assert result.unterminated is not closed
    return out


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return float(metrics.registry.get_sample_value(name, labels) or 0.0)


def test_given_frames_and_markers_when_written_then_the_file_holds_them_in_order(
    tmp_path: Path,
) -> None:
    rec, _clock, metrics = make(tmp_path)
    lane = rec.lane(0)
    lane.opened("ws://x/ws")
    assert lane.frame(b'{"channel":"trades"}', 5) == START_MS + 1000  # the recorded time
    lane.frame(b"line\nbreak", 5)
    lane.closed("server_close\nextra")
    rec.write_pending()
    records = read_all(tmp_path)
    assert [(r.kind, r.conn) for r in records] == [
        ("O", "0.1"),
        ("F", "0.1"),
        ("F", "0.1"),
        ("C", "0.1"),
    ]
    assert records[1].payload == b'{"channel":"trades"}' and records[2].payload == b"line\nbreak"
    assert records[3].payload == b"server_close extra"
    assert records[0].recv_ns == (START_MS + 1000) * 1_000_000
    assert rec.recorded == 2 and sample(metrics, "hyperwatch_ingest_record_frames_total") == 2


def test_given_a_full_lane_when_frames_arrive_then_they_are_dropped_counted_and_marked(
    tmp_path: Path,
) -> None:
    rec, _clock, metrics = make(tmp_path, max_bytes=100)
    lane = rec.lane(0)
    lane.opened("ws://x")
    for i in range(10):
        lane.frame(b"x" * 30 + str(i).encode(), 0)  # 3 fit, 7 are dropped
    rec.write_pending()
    lane.frame(b"after", 0)
    lane.closed("shutdown")
    rec.write_pending()
    records = read_all(tmp_path)
    kinds = [r.kind for r in records]
    assert kinds == ["O", "F", "F", "F", "D", "F", "C"]
    assert records[4].payload == b"7"
    assert rec.dropped_queue == 7 and rec.recorded == 4
    assert (
        sample(metrics, "hyperwatch_ingest_record_dropped_frames_total", reason="queue_full") == 7
    )


def test_drops_still_unmarked_when_the_socket_closes_are_marked_before_the_close(
    tmp_path: Path,
) -> None:
    rec, _clock, _metrics = make(tmp_path, max_bytes=10)
    lane = rec.lane(0)
    lane.opened("ws://x")
    lane.frame(b"0123456789ABC", 0)
    lane.closed("closed")
    rec.write_pending()
    assert [(r.kind, r.payload) for r in read_all(tmp_path)][1:] == [
        (b"D"[0:1].decode(), b"1"),
        ("C", b"closed"),
    ]


def test_given_the_hour_changes_then_a_new_file_is_started_and_the_old_one_closed(
    tmp_path: Path,
) -> None:
    rec, clock, _metrics = make(tmp_path)
    lane = rec.lane(0)
    lane.opened("ws://x")
    lane.frame(b"first", 0)
    clock.advance(HOUR_MS / 1000)
    lane.frame(b"second", 0)
    rec.write_pending()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and names[0] < names[1]
    assert [
        r.payload
        for p in sorted(tmp_path.iterdir())
        for r in recording.read_records(p)
        if r.kind == "F"
    ] == [b"first", b"second"]


def test_two_sockets_share_the_bound_and_keep_their_own_connection_ids(tmp_path: Path) -> None:
    rec, _clock, _metrics = make(tmp_path, max_bytes=1000)
    a, b = rec.lane(0), rec.lane(1)
    assert a.max_bytes == b.max_bytes == 500
    a.opened("ws://x")
    b.opened("ws://x")
    b.opened("ws://x")
    a.frame(b"a", 0)
    b.frame(b"b", 0)
    rec.write_pending()
    frames = {r.payload: r.conn for r in read_all(tmp_path) if r.kind == "F"}
    assert frames == {b"a": "0.1", b"b": "1.2"}


class FailingWrites:
    """os.write that fails with ENOSPC after ``ok`` calls, optionally part-way."""

    def __init__(self, ok: int, partial: bool) -> None:
        self.ok = ok
        self.partial = partial
        self.real = os.write
        self.failing = True

    def __call__(self, fd: int, data: Any) -> int:
        if self.ok > 0 or not self.failing:
            self.ok -= 1
            return self.real(fd, data)
        if self.partial and len(data) > 4:
            self.partial = False
            return self.real(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")


def test_given_a_disk_that_fails_mid_write_then_the_batch_is_dropped_and_the_file_stays_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec, clock, metrics = make(tmp_path)
    lane = rec.lane(0)
    lane.opened("ws://x")
    lane.frame(b"kept", 0)
    rec.write_pending()
    failing = FailingWrites(ok=0, partial=True)
    monkeypatch.setattr(recorder_module.os, "write", failing)
    lane.frame(b"lost-1", 0)
    lane.frame(b"lost-2", 0)
    rec.write_pending()  # half a frame lands, then ENOSPC: cut back, dropped
    lane.frame(b"lost-3", 0)
    clock.advance(0.5)
    rec.write_pending()  # within the retry pause: dropped without trying
    assert rec.dropped_disk == 3
    failing.failing = False
    clock.advance(1.0)
    lane.frame(b"later", 0)
    rec.write_pending()  # a new file, starting with the hole's D line
    rec.stop()
    assert sample(metrics, "hyperwatch_ingest_record_dropped_frames_total", reason="disk") == 3
    records = read_all(tmp_path)
    assert [(r.kind, r.payload) for r in records if r.kind in "FD"] == [
        ("F", b"kept"), ("D", b"3"), ("F", b"later"),
    ]  # fmt: skip
    assert len(list(tmp_path.iterdir())) == 2


def test_a_file_whose_header_cannot_be_written_is_not_left_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec, _clock, _metrics = make(tmp_path)
    lane = rec.lane(0)
    monkeypatch.setattr(recorder_module.os, "write", FailingWrites(ok=0, partial=False))
    lane.frame(b"lost", 0)
    rec.write_pending()
    assert list(tmp_path.iterdir()) == [] and rec.dropped_disk == 1


def test_the_writer_thread_writes_and_closes_on_stop(tmp_path: Path) -> None:
    rec, _clock, _metrics = make(tmp_path)
    lane = rec.lane(0)
    rec.start()
    lane.opened("ws://x")
    lane.frame(b"one", 0)
    rec.stop()
    assert rec.failure is None
    assert [r.payload for r in read_all(tmp_path, closed=True) if r.kind == "F"] == [b"one"]


class Inner:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_connected(self) -> None:
        self.calls.append(("connected", None))

    def on_frame(self, raw: bytes, received_ms: int) -> Any:
        self.calls.append(("frame", received_ms))
        return None

    def on_disconnected(self, reason: str) -> None:
        self.calls.append(("disconnected", reason))

    def on_healthy(self, received_ms: int) -> None:
        self.calls.append(("healthy", received_ms))

    def forget(self, sub: Any) -> None:
        self.calls.append(("forget", sub))

    def tick(self) -> float:
        return 7.0


def test_the_recording_sink_records_then_hands_everything_on(tmp_path: Path) -> None:
    rec, _clock, _metrics = make(tmp_path)
    inner = Inner()
    sink = RecordingSink(inner, rec.lane(0), "ws://x")
    sink.on_connected()
    sink.on_frame(b"f", 1)
    sink.on_healthy(2)
    sink.forget({"type": "trades", "coin": "BTC"})
    assert sink.tick() == 7.0
    sink.on_disconnected("closed")
    assert [c[0] for c in inner.calls] == [
        "connected", "frame", "healthy", "forget", "disconnected",
    ]  # fmt: skip
    assert inner.calls[1] == ("frame", START_MS + 1000)  # the recorded receive time
    rec.write_pending()
    assert [r.kind for r in read_all(tmp_path)] == ["O", "F", "C"]
