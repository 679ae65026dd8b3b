"""The recording format: what the recorder writes the player reads back exactly, and what is
not a recording (or not this version's) is refused with a reason."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from runtime import recording

NS = 1_787_052_600_000_000_000


def write(path: Path, *parts: bytes) -> Path:
    path.write_bytes(b"".join(recording.compress(part) for part in parts))
    return path


def header() -> bytes:
    return recording.header_line("main", "host-1", NS)


def test_every_kind_of_line_reads_back_as_written(tmp_path: Path) -> None:
    lines = b"".join(
        [
            recording.marker_line(NS, "0.1", "O", recording.opened_payload("ws://x", 0)),
            recording.frame_line(NS + 1, "0.1", '{"channel":"pong"}'),
            recording.frame_line(NS + 2, "0.1", b"two\r\nlines"),
            b"not a record\n",
            b"12 0.1 B !!notbase64\n",
            b"12 0.1 Z what\n",
            recording.marker_line(NS + 3, "0.1", "D", b"5"),
            recording.marker_line(NS + 4, "0.1", "C", b"closed"),
        ]
    )
    result = recording.ReadResult()
    records = list(recording.read_records(write(tmp_path / "a", header(), lines), result))
    assert [(r.recv_ns - NS, r.kind, r.payload) for r in records] == [
        (0, "O", b'{"url":"ws://x","socket":0}'),
        (1, "F", b'{"channel":"pong"}'),
        (2, "F", b"two\r\nlines"),
        (3, "D", b"5"),
        (4, "C", b"closed"),
    ]
    assert result.bad_lines == 3 and result.damaged is None and not result.unterminated
    assert result.header == {"feed": "main", "ingester": "host-1", "created_ns": NS}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (recording.compress(b"HELLO 1 {}\n"), "no HWREC header"),
        (recording.compress(b"HWREC 2 {}\n"), "recording format 2, this version reads 1"),
        (recording.compress(b"HWREC 1 {nope\n"), "unreadable header"),
        (recording.compress(b"HWREC 1 [1]\n"), "unreadable header"),
        (b"\x04\x22\x4d\x18garbage", "not a recording (damaged LZ4 data"),
    ],
)
def test_what_is_not_a_readable_recording_is_refused_with_its_reason(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "x"
    path.write_bytes(content)
    with pytest.raises(recording.RecordingError, match=reason.replace("(", r"\(")):
        recording.read_header(path)


def test_a_file_cut_inside_a_block_is_read_up_to_it_and_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "a", header(), recording.frame_line(NS, "0.1", b"x" * 200))
    data = path.read_bytes()
    path.write_bytes(data + recording.compress(b"y" * 300)[:-12])
    result = recording.ReadResult()
    assert [r.payload for r in recording.read_records(path, result)] == [b"x" * 200]
    assert result.damaged is not None and "truncated" in result.damaged


def test_a_last_line_without_its_newline_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "a", header(), b"1 0.1 F {}")
    result = recording.ReadResult()
    assert list(recording.read_records(path, result)) == []
    assert result.damaged == "last line incomplete"


def test_names_carry_the_hour_and_files_sort_by_when_they_were_started(tmp_path: Path) -> None:
    name = recording.file_name(NS, "host/1 with spaces")
    assert name == "20260818T11Z-host_1_with_spaces.hwrec.lz4"
    assert recording.file_name(NS, "", 2).endswith("-ingester-2.hwrec.lz4")
    assert recording.hour_of(Path(name)) == dt.datetime(2026, 8, 18, 11, tzinfo=dt.UTC)
    assert recording.hour_of(Path("notes.txt")) is None
    late = tmp_path / recording.file_name(NS, "a")
    early = tmp_path / recording.file_name(NS, "b")
    late.write_bytes(recording.compress(recording.header_line("f", "a", NS + 5)))
    early.write_bytes(recording.compress(recording.header_line("f", "b", NS)))
    assert recording.in_time_order([late, early]) == [early, late]
