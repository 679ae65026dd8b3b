"""The recording file format: the exchange's raw frames as received, one line each.

Written by the ingester's recorder (``workers/ingester/recorder.py``), read by the player
(``hyperwatch replay``) and aged out by ``hyperwatch.maintenance.prune_recordings``; this
module is the one place that knows the format, so all three agree.

A file is LZ4 frame data (``lz4 -d`` reads it): the recorder writes one frame of linked
blocks per file, flushed at every write, and ends it when the file is closed; a reader also
takes concatenated frames. The decompressed text is lines: the first is the header, the
rest are records::

    HWREC 1 {"feed": "...", "ingester": "...", "created_ns": 1787052600000000000}
    <recv_ns> <conn> F <the frame's bytes, verbatim>       a frame without line breaks
    <recv_ns> <conn> B <the frame in base64>               a frame holding \\n or \\r
    <recv_ns> <conn> O {"url": "...", "socket": 0}         the connection opened
    <recv_ns> <conn> C <reason>                            the connection ended
    <recv_ns> <conn> D <count>                             frames not recorded here

``recv_ns`` is the local wall clock at receipt, in ns; ``conn`` names one WebSocket
connection of the process (``<socket>.<n>``). A ``D`` line marks a hole in the recording
(the recorder's queue was full or its disk failed): the player treats it as a
disconnect and a reconnect, so replayed data gets the gap records a live drop would.

Why this shape: one line per frame keeps the recorder's hot path to an append and the
writer's work to a join; frames are JSON text and nearly never contain a raw line break
(JSON escapes them), so base64 is the rare exception, not the cost of every frame. Every
write ends on a block boundary, so a write that fails part-way is cut back to the last
whole block and the file stays readable up to there, as does the file of a process that
crashed (without the frame's end mark: :class:`ReadResult` says ``truncated``); linked
blocks share their dictionary, so the small writes of a quiet feed compress like big ones.

File names start with the UTC hour of their records (``YYYYMMDDTHHZ``), so retention reads
a file's age from its name; within an hour the header's ``created_ns`` orders the files
(:func:`in_time_order`).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import lz4.frame
import orjson

FORMAT_VERSION: Final = 1
MAGIC: Final = b"HWREC"
SUFFIX: Final = ".hwrec.lz4"
HOUR_NS: Final = 3_600 * 1_000_000_000
_CHUNK = 1 << 20
_END_MARK = b"\x00\x00\x00\x00"  # an LZ4 frame's end (no content checksum: the writer's)
_NAME = re.compile(r"^(\d{8}T\d{2})Z-.*" + re.escape(SUFFIX) + "$")

Kind = Literal["F", "O", "C", "D"]


class RecordingError(ValueError):
    """Not a recording, or a version this code does not read."""


@dataclass(frozen=True, slots=True)
class Record:
    recv_ns: int
    conn: str
    kind: Kind  # F frame (B lines decode to F), O opened, C closed, D dropped
    payload: bytes  # the frame, the opening's JSON, the reason, or the count


def header_line(feed: str, ingester: str, created_ns: int) -> bytes:
    doc = {"feed": feed, "ingester": ingester, "created_ns": created_ns}
    return b"%s %d %s\n" % (MAGIC, FORMAT_VERSION, orjson.dumps(doc))


def frame_line(recv_ns: int, conn: str, raw: bytes | str) -> bytes:
    data = raw.encode() if isinstance(raw, str) else raw
    if b"\n" in data or b"\r" in data:
        return b"%d %s B %s\n" % (recv_ns, conn.encode(), base64.b64encode(data))
    return b"%d %s F %s\n" % (recv_ns, conn.encode(), data)


def marker_line(recv_ns: int, conn: str, kind: Kind, payload: bytes) -> bytes:
    """An O, C or D line; ``payload`` must hold no line break."""
    return b"%d %s %s %s\n" % (recv_ns, conn.encode(), kind.encode(), payload)


def opened_payload(url: str, socket: int) -> bytes:
    return orjson.dumps({"url": url, "socket": socket})


def compress(lines: bytes) -> bytes:
    """``lines`` as one self-contained LZ4 frame (a file may be a sequence of these)."""
    return lz4.frame.compress(lines)


def file_name(hour_start_ns: int, ingester: str, attempt: int = 0) -> str:
    hour = dt.datetime.fromtimestamp(hour_start_ns // 1_000_000_000, dt.UTC)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", ingester)[:80] or "ingester"
    extra = f"-{attempt}" if attempt else ""
    return f"{hour:%Y%m%dT%H}Z-{safe}{extra}{SUFFIX}"


def hour_of(path: Path) -> dt.datetime | None:
    """The UTC hour a recording's name says it holds; None for any other file."""
    match = _NAME.match(path.name)
    if match is None:
        return None
    return dt.datetime.strptime(match.group(1), "%Y%m%dT%H").replace(tzinfo=dt.UTC)


@dataclass
class ReadResult:
    """What reading a file ended with, beside its records (filled in as it is read)."""

    header: dict[str, Any] | None = None
    bad_lines: int = 0  # lines that are not records (counted, skipped)
    damaged: str | None = None  # why reading stopped before the end, if it did
    # The file ends on a whole block without the frame's end mark: still being written, or
    # its writer crashed or gave it up (a full disk). Everything in it was read.
    unterminated: bool = False


def read_records(path: Path, result: ReadResult | None = None) -> Iterator[Record]:
    """The records of one file, in order. Raises :class:`RecordingError` when the file is
    not a recording; a damaged or truncated tail ends the records and is reported in
    ``result.damaged`` (what came before it is still yielded)."""
    result = result if result is not None else ReadResult()
    lines = _lines(path, result)
    first = next(lines, None)
    if first is None:
        if result.damaged is None:
            raise RecordingError(f"{path}: empty, not a recording")
        raise RecordingError(f"{path}: not a recording ({result.damaged})")
    result.header = _header(path, first)
    for line in lines:
        record = parse_line(line)
        if record is None:
            result.bad_lines += 1
        else:
            yield record


def read_header(path: Path) -> dict[str, Any]:
    """A recording's header (raises :class:`RecordingError` when it is not one)."""
    result = ReadResult()
    next(read_records(path, result), None)
    assert result.header is not None  # read_records raised otherwise
    return result.header


def in_time_order(paths: list[Path]) -> list[Path]:
    """Recordings in the order they were started (their headers' ``created_ns``): several
    files of one hour (a restart, a new file after a disk error) do not sort by name."""
    started = {path: int(read_header(path).get("created_ns") or 0) for path in paths}
    return sorted(paths, key=lambda p: (started[p], p.name))


def _header(path: Path, line: bytes) -> dict[str, Any]:
    magic, _, rest = line.partition(b" ")
    version, _, doc = rest.partition(b" ")
    if magic != MAGIC or not version.isdigit():
        raise RecordingError(f"{path}: not a recording (no {MAGIC.decode()} header)")
    if int(version) != FORMAT_VERSION:
        raise RecordingError(
            f"{path}: recording format {int(version)}, this version reads {FORMAT_VERSION}"
        )
    try:
        header = orjson.loads(doc)
    except orjson.JSONDecodeError as exc:
        raise RecordingError(f"{path}: unreadable header: {exc}") from None
    if not isinstance(header, dict):
        raise RecordingError(f"{path}: unreadable header")
    return header


def parse_line(line: bytes) -> Record | None:
    parts = line.split(b" ", 3)
    if len(parts) != 4 or not parts[0].isdigit():
        return None
    ns, conn, kind, payload = parts
    if kind == b"F":
        return Record(int(ns), conn.decode(), "F", payload)
    if kind == b"B":
        try:
            return Record(int(ns), conn.decode(), "F", base64.b64decode(payload, validate=True))
        except ValueError:
            return None
    if kind in (b"O", b"C", b"D"):
        return Record(int(ns), conn.decode(), kind.decode(), payload)  # type: ignore[arg-type]
    return None


def _lines(path: Path, result: ReadResult) -> Iterator[bytes]:
    carry = b""
    for block in _decompressed(path, result):
        parts = (carry + block).split(b"\n")
        carry = parts.pop()
        yield from parts
    if carry and result.damaged is None:
        result.damaged = "last line incomplete"


def _decompressed(path: Path, result: ReadResult) -> Iterator[bytes]:
    """Decompress concatenated LZ4 frames; stop at the first damaged or truncated one."""
    decompressor = lz4.frame.LZ4FrameDecompressor()
    mid_frame = False  # input fed to the current frame and its end not reached yet
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            data = chunk
            while data:
                try:
                    out = decompressor.decompress(data)
                except RuntimeError as exc:
                    result.damaged = f"damaged LZ4 data: {exc}"
                    return
                if out:
                    yield out
                if decompressor.eof:
                    data = decompressor.unused_data or b""
                    decompressor = lz4.frame.LZ4FrameDecompressor()
                    mid_frame = False
                else:
                    data = b""
                    mid_frame = True
    if mid_frame:
        # LZ4's decoder holds back the tail of the last block until the frame ends: give it
        # the end mark the writer could not write. A cut inside a block stays incomplete.
        try:
            out = decompressor.decompress(_END_MARK)
        except RuntimeError as exc:
            result.damaged = f"damaged LZ4 data at the end: {exc}"
            return
        if out:
            yield out
        if decompressor.eof:
            result.unterminated = True
        else:
            result.damaged = "truncated inside a block (the writer stopped mid-write)"
