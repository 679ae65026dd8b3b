"""The recorder: every raw frame the sockets receive, to hourly files, off the hot path.

Contract: the socket threads only append to their own bounded lane (:class:`Lane`) — a
clock read and a ``deque.append``; they never wait on a lock, a disk or the writer, and
never raise. One writer thread drains the lanes, compresses and writes
(``runtime/recording.py`` is the format). When a lane holds ``max_queue_bytes`` / lanes of
frames not yet written, further frames are dropped from the recording (``queue_full``);
when a write fails (a full or failing disk) the batch it held is dropped (``disk``), the
file is cut back to its last whole LZ4 block and given up, and writing is retried a second
later on a new file. Every dropped frame is counted (``RECORD_DROPPED``) and leaves a ``D``
line where the hole is, so a replay knows it; ingestion never notices any of it.

Durability: the writer takes what the lanes hold every ``WRITE_EVERY_S`` and fsyncs every
``FSYNC_EVERY_S``, so a crash of the process loses at most about the last second; a file
is fsynced and closed when its hour ends and at :meth:`Recorder.stop` (SIGTERM).

Lanes are single-producer on purpose: each socket thread owns one, so its counters need
no lock (the writer only reads them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import deque
from pathlib import Path
from typing import Any

import lz4.frame

from runtime import recording
from runtime.clock import Clock
from runtime.hyperliquid.protocol import ParsedFrame
from runtime.lifecycle import join_in_slices
from runtime.metrics import RECORD_BYTES, RECORD_DROPPED, RECORD_FRAMES, Metrics
from workers.ingester.connection import FrameSink
from workers.ingester.subscriptions import Subscription
from workers.ingester.throttle import LogThrottle

log = logging.getLogger(__name__)

WRITE_EVERY_S = 0.05
FSYNC_EVERY_S = 1.0
RETRY_AFTER_S = 1.0
MAX_WRITE_BYTES = 4 << 20  # one write takes at most about this much input

# A lane item: (recv_ns, conn, kind, payload); kind "F" payloads are the raw frame.
Item = tuple[int, str, str, Any]


class Lane:
    """One socket's queue to the writer. Only its socket thread calls the methods."""

    def __init__(self, socket: int, max_bytes: int, clock: Clock) -> None:
        self.socket = socket
        self.items: deque[Item] = deque()
        self.max_bytes = max_bytes
        self._clock = clock
        self.queued_bytes = 0  # written by this lane's thread only
        self.taken_bytes = 0  # written by the writer only
        self.dropped = 0  # frames not queued (queue full), written by this lane's thread
        self._unmarked = 0  # of those, not yet marked by a D line
        self._connections = 0
        self.conn = f"{socket}.0"

    def opened(self, url: str) -> None:
        self._connections += 1
        self.conn = f"{self.socket}.{self._connections}"
        payload = recording.opened_payload(url, self.socket)
        self.items.append((wall_ns(self._clock), self.conn, "O", payload))

    def closed(self, reason: str) -> None:
        self.mark_dropped()
        text = reason.replace("\n", " ").replace("\r", " ")[:200].encode()
        self.items.append((wall_ns(self._clock), self.conn, "C", text))

    def frame(self, raw: bytes | str, received_ms: int) -> int:
        """Queue ``raw``; returns the receive time (ms) the frame is recorded with, which
        the pipeline uses too, so a replay stamps what the live run stamped."""
        size = len(raw)
        if self.queued_bytes - self.taken_bytes + size > self.max_bytes:
            self.dropped += 1
            self._unmarked += 1
            return received_ms
        if self._unmarked:
            self.mark_dropped()
        now = wall_ns(self._clock)
        self.items.append((now, self.conn, "F", raw))
        self.queued_bytes += size
        return now // 1_000_000

    def mark_dropped(self) -> None:
        """A D line where frames were left out (the lane's thread, or the writer once the
        sockets stopped)."""
        if self._unmarked:
            self.items.append((wall_ns(self._clock), self.conn, "D", self._unmarked))
            self._unmarked = 0


class RecordingSink:
    """A :class:`~workers.ingester.connection.FrameSink` that records, then hands on."""

    def __init__(self, inner: FrameSink, lane: Lane, url: str) -> None:
        self._inner = inner
        self._lane = lane
        self._url = url

    def on_connected(self) -> None:
        self._lane.opened(self._url)
        self._inner.on_connected()

    def on_frame(self, raw: bytes, received_ms: int) -> ParsedFrame:
        received_ms = self._lane.frame(raw, received_ms)
        return self._inner.on_frame(raw, received_ms)

    def on_disconnected(self, reason: str) -> None:
        self._lane.closed(reason)
        self._inner.on_disconnected(reason)

    def on_healthy(self, received_ms: int) -> None:
        self._inner.on_healthy(received_ms)

    def forget(self, sub: Subscription) -> None:
        self._inner.forget(sub)

    def tick(self) -> float:
        return self._inner.tick()


class _File:
    """The open recording of one hour: one LZ4 frame of linked blocks, each write flushed as
    whole blocks (so what is on disk is readable up to the last write, and the blocks share
    a dictionary: small writes compress well too). Every method may raise OSError."""

    def __init__(self, path: Path, hour: int, header: bytes) -> None:
        self.path = path
        self.hour = hour
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        self.good = 0  # bytes up to the end of the last whole block written
        self.reported = 0  # of those, counted in RECORD_BYTES
        self.unsynced = False
        self._compressor = lz4.frame.LZ4FrameCompressor(block_linked=True, auto_flush=True)
        try:
            self._append(self._compressor.begin() + self._compressor.compress(header))
        except OSError:
            self.abandon()
            with contextlib.suppress(OSError):
                path.unlink()  # no header, no recording: leave no empty file behind
            raise

    def write(self, lines: bytes) -> None:
        """Append ``lines``; on an OSError the file is cut back to its last whole block and
        must be abandoned (the compressor's state has moved on)."""
        self._append(self._compressor.compress(lines))

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
        except OSError:
            # Cut the partial block off so the file stays readable up to here.
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.good)
            raise
        self.good += len(data)
        self.unsynced = True

    def sync(self) -> None:
        if self.unsynced:
            os.fsync(self.fd)
            self.unsynced = False

    def close(self) -> None:
        """End the frame, fsync, close (the hour is over, or the recorder stops)."""
        try:
            self._append(self._compressor.flush())
            self.sync()
        finally:
            os.close(self.fd)

    def abandon(self) -> None:
        """Give the file up after a failed write: it ends at its last whole block, without
        the frame's end mark (a reader reports it truncated there)."""
        with contextlib.suppress(OSError):
            os.close(self.fd)


class Recorder:
    """Owns the lanes and the writer thread; see the module docstring for the contract."""

    def __init__(
        self,
        directory: Path,
        feed: str,
        ingester: str,
        metrics: Metrics,
        clock: Clock,
        max_queue_bytes: int,
    ) -> None:
        self.directory = directory
        self._feed = feed
        self._ingester = ingester
        self._metrics = metrics
        self._clock = clock
        self._max_queue_bytes = max_queue_bytes
        self.lanes: list[Lane] = []
        self._file: _File | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_at = 0.0
        self._unwritten: dict[str, int] = {}  # conn → frames lost to the disk, not yet marked
        self._counted_queue_drops = 0
        self._next_sync = 0.0
        self._throttle = LogThrottle(log, clock)
        self.recorded = 0
        self.dropped_disk = 0
        self.failure: BaseException | None = None

    def lane(self, socket: int) -> Lane:
        """A lane for one socket; call all of them before :meth:`start`."""
        lane = Lane(socket, self._max_queue_bytes, self._clock)
        self.lanes.append(lane)
        for each in self.lanes:  # the bound is for the whole recorder
            each.max_bytes = max(1, self._max_queue_bytes // len(self.lanes))
        return lane

    @property
    def dropped_queue(self) -> int:
        return sum(lane.dropped for lane in self.lanes)

    @property
    def dropped(self) -> int:
        return self.dropped_queue + self.dropped_disk

    def start(self) -> Recorder:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Write what the lanes hold, fsync and close the file (after the sockets stopped)."""
        self._stop.set()
        if self._thread is not None:
            join_in_slices(self._thread, timeout_s)  # a second SIGTERM still ends it at once

    def _run(self) -> None:
        try:
            while not self._stop.wait(WRITE_EVERY_S):
                self.write_pending()
            for lane in self.lanes:  # the sockets have stopped: their lanes are ours now
                lane.mark_dropped()
            self.write_pending()
            self._close_file()
        except BaseException as exc:  # a bug here must not end ingestion: report, stop recording
            self.failure = exc
            log.exception("recorder failed; recording stopped (ingestion goes on)")

    def write_pending(self) -> None:
        """One writer cycle: drain the lanes, write, fsync when due (the writer thread)."""
        items = self._drain()
        if items:
            self._write(items)
        self._sync_counters()
        now = self._clock.monotonic()
        if self._file is not None and now >= self._next_sync:
            self._next_sync = now + FSYNC_EVERY_S
            try:
                self._file.sync()
            except OSError as exc:
                self._disk_failed(exc, [])

    def _drain(self) -> list[Item]:
        items: list[Item] = []
        for lane in self.lanes:
            queue, taken = lane.items, 0
            while queue:
                item = queue.popleft()
                items.append(item)
                if item[2] == "F":
                    taken += len(item[3])
            lane.taken_bytes += taken
        return items

    def _write(self, items: list[Item]) -> None:
        start = 0
        while start < len(items):
            hour = items[start][0] // recording.HOUR_NS
            end, size = start, 0
            while end < len(items) and items[end][0] // recording.HOUR_NS == hour:
                size += len(items[end][3]) if items[end][2] == "F" else 0
                end += 1
                if size >= MAX_WRITE_BYTES:
                    break
            self._write_hour(hour, items[start:end])
            start = end

    def _write_hour(self, hour: int, items: list[Item]) -> None:
        if self._clock.monotonic() < self._retry_at:
            self._lose(items)
            return
        lines = self._marks(items[0][0])
        lines.extend(_line(item) for item in items)
        try:
            file = self._file_for(hour)
            file.write(b"".join(lines))
        except OSError as exc:
            self._disk_failed(exc, items)
            return
        self._unwritten.clear()
        frames = sum(1 for item in items if item[2] == "F")
        self.recorded += frames
        self._metrics.counter(RECORD_FRAMES).inc(frames)

    def _marks(self, recv_ns: int) -> list[bytes]:
        """D lines for frames the disk lost since the last write that succeeded."""
        return [
            recording.marker_line(recv_ns, conn, "D", b"%d" % count)
            for conn, count in self._unwritten.items()
        ]

    def _file_for(self, hour: int) -> _File:
        current = self._file
        if current is not None and current.hour == hour:
            return current
        if current is not None:
            self._file = None
            current.close()  # the hour is over: fsynced and closed
            self._bytes(current)
        self._file = self._open(hour)
        return self._file

    def _open(self, hour: int) -> _File:
        header = recording.header_line(self._feed, self._ingester, wall_ns(self._clock))
        for attempt in range(100):
            name = recording.file_name(hour * recording.HOUR_NS, self._ingester, attempt)
            path = self.directory / name
            if path.exists():
                continue
            opened = _File(path, hour, header)
            log.info("recording to %s", path)
            return opened
        raise OSError(f"no free recording file name for hour {hour} in {self.directory}")

    def _bytes(self, file: _File) -> None:
        self._metrics.counter(RECORD_BYTES).inc(file.good - file.reported)
        file.reported = file.good

    def _disk_failed(self, exc: OSError, items: list[Item]) -> None:
        self._lose(items)
        self._retry_at = self._clock.monotonic() + RETRY_AFTER_S
        current, self._file = self._file, None
        if current is not None:
            current.abandon()  # the next write starts a new file once the disk allows
        self._throttle.log(
            logging.ERROR,
            "record-disk",
            "recording write failed (%s): frames are dropped from the recording, "
            "ingestion goes on; retrying in %.0f s",
            exc,
            RETRY_AFTER_S,
        )

    def _lose(self, items: list[Item]) -> None:
        frames = 0
        for item in items:
            if item[2] == "F":
                frames += 1
                self._unwritten[item[1]] = self._unwritten.get(item[1], 0) + 1
            elif item[2] == "D":
                self._unwritten[item[1]] = self._unwritten.get(item[1], 0) + item[3]
        self.dropped_disk += frames
        self._metrics.counter(RECORD_DROPPED).labels("disk").inc(frames)

    def _sync_counters(self) -> None:
        """Queue-full drops are counted by the lanes (no lock on the hot path): publish the
        difference from the writer thread."""
        total = self.dropped_queue
        if total > self._counted_queue_drops:
            self._metrics.counter(RECORD_DROPPED).labels("queue_full").inc(
                total - self._counted_queue_drops
            )
            self._throttle.log(
                logging.WARNING,
                "record-queue",
                "recorder queue full: %d frame(s) dropped from the recording so far "
                "(ingestion goes on)",
                total,
            )
            self._counted_queue_drops = total
        if self._file is not None:
            self._bytes(self._file)

    def _close_file(self) -> None:
        current, self._file = self._file, None
        if current is None:
            return
        try:
            current.close()
        except OSError as exc:
            log.error("closing the recording %s failed: %s", current.path, exc)
        self._bytes(current)


def wall_ns(clock: Clock) -> int:
    """The wall clock in ns (a float's resolution: about 0.25 µs today)."""
    return int(clock.time() * 1e9)


def _line(item: Item) -> bytes:
    recv_ns, conn, kind, payload = item
    if kind == "F":
        return recording.frame_line(recv_ns, conn, payload)
    if kind == "D":
        return recording.marker_line(recv_ns, conn, "D", b"%d" % payload)
    return recording.marker_line(recv_ns, conn, kind, payload)  # type: ignore[arg-type]
