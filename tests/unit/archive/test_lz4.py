"""The LZ4 line stream: real framing, chunking, skipping, and files that are not archives."""

from __future__ import annotations

import gzip
from pathlib import Path

import lz4.frame
import pytest

from runtime.hyperliquid.archive import (
    ArchiveError,
    decode_file,
    iter_line_chunks,
    open_lz4_writer,
)
from tests.unit.archive import samples

NAME = "node_fills_by_block/hourly/20250801/0.lz4"


def write(path: Path, lines: list[bytes], **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_lz4_writer(path, **kwargs) as handle:
        for line in lines:
            handle.write(line + b"\n")
    return path


def all_lines(path: Path, **kwargs) -> list[tuple[int, bytes]]:
    out = []
    for chunk in iter_line_chunks(path, **kwargs):
        out += list(enumerate(chunk.lines, chunk.first))
    return out


@pytest.fixture()
def many_lines() -> list[bytes]:
    return [b'{"n": %d, "pad": "%s"}' % (i, b"x" * (i % 97)) for i in range(20_000)]


def test_given_writer_when_file_written_then_header_is_the_real_archive_header(tmp_path) -> None:
    path = write(tmp_path / "a.lz4", [samples.FILLS_BY_BLOCK])
    assert path.read_bytes()[:7] == bytes.fromhex("04224d186470b9")


def test_given_big_file_and_tiny_reads_when_streamed_then_every_line_once_in_order(
    tmp_path, many_lines
) -> None:
    path = write(tmp_path / "a.lz4", many_lines, compression_level=1)
    expected = list(enumerate(many_lines, 1))
    assert all_lines(path) == expected
    assert all_lines(path, chunk_size=7) == expected


def test_given_skip_when_streamed_then_starts_after_the_skipped_lines(tmp_path, many_lines) -> None:
    path = write(tmp_path / "a.lz4", many_lines)
    assert all_lines(path, skip=12_345)[:2] == [
        (12_346, many_lines[12_345]),
        (12_347, many_lines[12_346]),
    ]
    assert len(all_lines(path, skip=12_345, chunk_size=1000)) == 20_000 - 12_345
    assert all_lines(path, skip=20_000) == []


def test_given_concatenated_and_skippable_frames_when_streamed_then_all_lines(tmp_path) -> None:
    one = lz4.frame.compress(b"a\nb\n")
    skippable = (0x184D2A53).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"xyz"
    two = lz4.frame.compress(b"c\nd")  # the last line without its newline
    path = tmp_path / "multi.lz4"
    path.write_bytes(one + skippable + two)
    assert [line for _, line in all_lines(path)] == [b"a", b"b", b"c", b"d"]
    assert [line for _, line in all_lines(path, chunk_size=3)] == [b"a", b"b", b"c", b"d"]


def test_given_truncated_file_when_streamed_then_error_names_it(tmp_path, many_lines) -> None:
    path = write(tmp_path / "a.lz4", many_lines)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match=rf"^{NAME}: truncated"):
        all_lines(path, label=NAME)
    path.write_bytes(data[:-1])  # only the end mark's last byte missing
    with pytest.raises(ArchiveError, match=rf"^{NAME}: truncated"):
        all_lines(path, label=NAME)


def test_given_corrupt_bytes_when_streamed_then_error_names_it(tmp_path, many_lines) -> None:
    path = write(tmp_path / "a.lz4", many_lines)
    data = bytearray(path.read_bytes())
    for offset in range(len(data) // 2, len(data) // 2 + 64):
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match=rf"^{NAME}: corrupt"):
        all_lines(path, label=NAME)


def test_given_garbage_after_the_frame_when_streamed_then_corrupt(tmp_path) -> None:
    path = tmp_path / "a.lz4"
    path.write_bytes(lz4.frame.compress(b"a\n") + b"garbage!")
    with pytest.raises(ArchiveError, match="corrupt: the bytes after frame 1 are not an LZ4 frame"):
        all_lines(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (gzip.compress(b"x\n"), r"not an LZ4 frame \(magic 1f 8b 08 00, expected 04 22 4d 18\)"),
        (samples.FILLS_BY_BLOCK, r"not an LZ4 frame \(magic 7b 22 6c 6f"),
        (b"", r"not an LZ4 frame \(empty file\)"),
        (b"\x04\x22", r"not an LZ4 frame \(magic 04 22"),
    ],
)
def test_given_file_that_is_not_lz4_when_streamed_then_clear_error(
    tmp_path, content, message
) -> None:
    path = tmp_path / "a.lz4"
    path.write_bytes(content)
    with pytest.raises(ArchiveError, match=rf"^{NAME}: {message}"):
        all_lines(path, label=NAME)


def test_given_missing_file_when_streamed_then_error_names_it(tmp_path) -> None:
    with pytest.raises(ArchiveError, match="cannot open"):
        all_lines(tmp_path / "nope.lz4")


def test_given_mixed_good_and_bad_lines_when_decoded_then_bad_ones_counted_good_ones_kept(
    tmp_path,
) -> None:
    import orjson

    events = orjson.loads(samples.FILLS_BY_BLOCK)["events"]
    lines = []
    for tid in range(1, 11):
        block = {"local_time": "2025-08-01T00:00:01.0", "block_time": "2025-08-01T00:00:00.5",
                 "block_number": tid, "events": [[u, {**f, "tid": tid}] for u, f in events]}  # fmt: skip
        lines.append(orjson.dumps(block))
    lines[3] = b"\x00\xff garbage"
    lines[6] = lines[6][:40]  # a torn line
    path = write(tmp_path / NAME, lines)
    out, counts = decode_file(path, "node_fills_by_block", label=NAME)
    assert [b.line for b in out.bad] == [4, 7]
    assert sorted(t.tid for t in out.trades) == [1, 2, 3, 5, 6, 8, 9, 10]
    assert counts.lines == 10


def test_given_empty_lines_when_decoded_then_ignored(tmp_path) -> None:
    path = write(tmp_path / "a.lz4", [b"", samples.FILLS_BY_BLOCK, b"   ", b""])
    out, counts = decode_file(path, "node_fills_by_block")
    assert len(out.trades) == 1 and out.bad == [] and counts.lines == 4
