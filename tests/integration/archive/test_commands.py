"""``hyperwatch simulate --archive-dir`` as a process, ``archive from-ground-truth``, and the
import command's progress and summary output."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from domain.archive import FileResult, ImportSummary, Progress
from runtime.hyperliquid.archive import decode_file
from workers.cli import cli
from workers.commands.archive import ProgressLine, summary_lines
from workers.simulator.groundtruth import read_ground_truth
from workers.simulator.runner import SimulatorProcess

pytestmark = pytest.mark.integration

START_MS = int(dt.datetime(2026, 1, 1, 12, 59, 59, tzinfo=dt.UTC).timestamp() * 1000)


def test_given_simulate_with_archive_dir_when_stopped_then_hour_files_hold_every_trade(
    tmp_path: Path,
) -> None:
    proc = SimulatorProcess.start(
        ["--rate", "2000", "--trades-per-block", "8", "--start-time", str(START_MS),
         "--record", str(tmp_path / "gt.jsonl"), "--archive-dir", str(tmp_path / "arch"),
         "--duration", "2", "--log-level", "WARNING"]
    )  # fmt: skip
    assert proc.proc.wait(30) == 0
    truth = read_ground_truth(tmp_path / "gt.jsonl")
    files = sorted((tmp_path / "arch").rglob("*.lz4"))
    assert [f.relative_to(tmp_path / "arch").as_posix() for f in files] == [
        "node_fills_by_block/hourly/20260101/12.lz4",
        "node_fills_by_block/hourly/20260101/13.lz4",
    ]
    trades = []
    for path in files:
        out, counts = decode_file(path, "node_fills_by_block")
        assert out.bad == [] and counts.unpaired_fills == 0
        trades += out.trades
    assert sorted(trades) == sorted(t.to_event() for t in truth.trades)

    converted = CliRunner().invoke(
        cli,
        [
            "archive",
            "from-ground-truth",
            str(tmp_path / "gt.jsonl"),
            "--out",
            str(tmp_path / "conv"),
        ],
    )
    assert converted.exit_code == 0, converted.output
    assert f"{len(truth.trades):,} trades" in converted.output
    for path in files:
        twin = tmp_path / "conv" / path.relative_to(tmp_path / "arch")
        assert twin.read_bytes() == path.read_bytes()


def test_given_progress_on_a_terminal_when_reported_then_a_bar_redrawn_in_place() -> None:
    stream = io.StringIO()
    line = ProgressLine(stream, tty=True)
    line(
        Progress(
            1, 2, "node_fills_by_block/hourly/20250801/0.lz4", 50_000_000, 100_000_000, 400_000, 2.0
        )
    )
    line(Progress(2, 2, "", 100_000_000, 100_000_000, 800_000, 4.0, final=True))
    text = stream.getvalue()
    assert text.startswith("\r\x1b[K[############............]  50% 50.0/100.0 MB  400,000 trades")
    assert "200,000 trades/s  file 1/2 node_fills_by_block/hourly/20250801/0.lz4" in text
    assert text.endswith("100% 100.0/100.0 MB  800,000 trades  200,000 trades/s\n")


def test_given_progress_in_a_log_when_reported_then_plain_lines_at_most_every_10_s() -> None:
    stream = io.StringIO()
    line = ProgressLine(stream, tty=False)
    for second in range(5):
        line(Progress(1, 1, "k", second, 10, second * 1000, float(second)))
    assert stream.getvalue() == ""  # the first line comes after 10 s
    line._last -= 10
    line(Progress(1, 1, "k", 5, 10, 5000, 5.0))
    assert (
        stream.getvalue()
        == "archive import:  50% 0.0/0.0 MB  5,000 trades  1,000 trades/s  file 1/1 k\n"
    )


def test_given_a_summary_when_printed_then_counts_samples_and_failures() -> None:
    summary = ImportSummary(
        [
            FileResult("a", "node_fills_by_block", "done", lines_read=10, trades=8, trades_new=6,
                       trades_duplicate=2, bad_lines=1, bad_samples=["a:3: not JSON: x"]),
            FileResult("b", "node_fills_by_block", "skipped"),
            FileResult("c", "node_fills_by_block", "failed", resumed_from=4, error="c: truncated\x1b[2J"),
        ],
        seconds=2.0,
    )  # fmt: skip
    assert summary_lines(summary) == [
        "files: 3 (1 imported, 1 already done, 1 failed, 1 resumed)",
        "lines: 10 read",
        "trades: 6 new, 2 already stored (8 derived; 0 unpaired fills, 0 dust/zero-size fills skipped)",
        "fills of tracked wallets: 0 new, 0 already stored",
        "bad lines: 1",
        "  a:3: not JSON: x",
        "failed: c: truncated\\x1b[2J",
        "gaps healed: 0 (`hyperwatch gaps` shows what remains)",
        "time: 2.0 s (4 trades/s)",
    ]
