"""The records a replay plays: every file's, in the order the files were started."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from runtime.recording import ReadResult, Record, in_time_order, read_records


def records(
    files: list[Path], start_ns: int | None, end_ns: int | None, damaged: list[str]
) -> Iterator[Record]:
    """Every file's records, files in the order they were started, within the bounds. A
    connection id is qualified by the recording process (``<ingester>/<socket>.<n>``): two
    runs of an ingester both number their connections from ``0.1``."""
    for path in in_time_order(files):
        result = ReadResult()
        prefix = ""
        for record in read_records(path, result):
            if not prefix:
                prefix = f"{(result.header or {}).get('ingester', '')}/"
            if start_ns is not None and record.recv_ns < start_ns:
                continue
            if end_ns is not None and record.recv_ns >= end_ns:
                continue
            yield Record(record.recv_ns, prefix + record.conn, record.kind, record.payload)
        if result.damaged or result.bad_lines:
            damaged.append(f"{path}: {result.damaged or 'readable'}; {result.bad_lines} bad lines")
