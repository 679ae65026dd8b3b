"""Archive import into real databases: the simulator's archive equals its ground truth once
imported, reruns add nothing, live rows meet archive rows, imports resume, bad files fail
alone."""

from __future__ import annotations

import datetime as dt
import gzip
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from domain.archive import ArchiveImporter, discover
from domain.archive.importer import Progress
from models.archive_import import ArchiveImport
from models.db import Database
from models.fill import UserFill
from models.repositories import GapRepository, TradeRepository
from models.repositories.bars import fold
from models.trade import TradeBar, TradeSnapshot
from runtime.hyperliquid.archive import SYNTHETIC_TID_BASE, open_lz4_writer
from tests.unit.archive import samples
from workers.cli import cli
from workers.simulator import SimulatorConfig, SimulatorServer
from workers.simulator.archive import write_from_ground_truth
from workers.simulator.groundtruth import GroundTruth, read_ground_truth

pytestmark = pytest.mark.integration

# Two seconds before midnight UTC: the run crosses an hour and a day.
START_MS = int(dt.datetime(2025, 8, 1, 23, 59, 58, 500_000, tzinfo=dt.UTC).timestamp() * 1000)
FILL_FIELDS = (
    "coin", "time", "oid", "px", "sz", "side", "dir", "start_position", "closed_pnl", "fee",
    "fee_token", "crossed", "hash",
)  # fmt: skip
WIRE_FILL = {
    "coin": "coin", "time": "time", "oid": "oid", "px": "px", "sz": "sz", "side": "side",
    "dir": "dir", "start_position": "startPosition", "closed_pnl": "closedPnl", "fee": "fee",
    "fee_token": "feeToken", "crossed": "crossed", "hash": "hash",
}  # fmt: skip


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GroundTruth, Path]]:
    """A simulator run with two wallets, its ground truth and the archive it wrote live."""
    root = tmp_path_factory.mktemp("sim")
    config = SimulatorConfig(
        port=0, rate=3000, trades_per_block=6, users=2, user_share=0.3, seed=11,
        start_time_ms=START_MS,
        record_path=root / "gt.jsonl", archive_dir=root / "archive",
    )  # fmt: skip
    with SimulatorServer(config).start_in_thread() as sim:
        # Blocks are released on the wall clock: wait for 3.5 s worth of them.
        while sim.call(lambda ex: ex.source.next_due_ms() or 0) < 3_500:
            time.sleep(0.05)
    truth = read_ground_truth(root / "gt.jsonl")
    assert truth.stop is not None and len(truth.trades) > 5_000 and truth.fills
    yield truth, root / "archive"


def trade_rows(db: Database) -> list[tuple[Any, ...]]:
    with db.session() as s:
        rows = s.execute(
            select(
                TradeSnapshot.coin, TradeSnapshot.time, TradeSnapshot.tid, TradeSnapshot.px,
                TradeSnapshot.sz, TradeSnapshot.side, TradeSnapshot.hash, TradeSnapshot.buyer,
                TradeSnapshot.seller,
            )
        )  # fmt: skip
        return sorted(tuple(r) for r in rows)


def truth_rows(truth: GroundTruth) -> list[tuple[Any, ...]]:
    return sorted(tuple(t.to_event()) for t in truth.trades)


def bar_rows(db: Database) -> dict[tuple[str, int], dict[str, Any]]:
    with db.session() as s:
        return {
            (b.coin, b.minute): {c.key: getattr(b, c.key) for c in TradeBar.__table__.columns}
            for b in s.scalars(select(TradeBar))
        }


def expected_bars(truth: GroundTruth) -> dict[tuple[str, int], dict[str, Any]]:
    deltas = fold(
        (t.coin, t.time, t.tid, Decimal(t.px), Decimal(t.sz), t.side) for t in truth.trades
    )
    return {(d.coin, d.minute): d.as_row() for d in deltas}


def fill_rows(db: Database) -> dict[tuple[str, int], tuple[Any, ...]]:
    with db.session() as s:
        return {
            (f.user, f.tid): tuple(getattr(f, name) for name in FILL_FIELDS)
            for f in s.scalars(select(UserFill))
        }


def truth_fills(truth: GroundTruth) -> dict[tuple[str, int], tuple[Any, ...]]:
    out = {}
    for fill in truth.fills:
        values = []
        for name in FILL_FIELDS:
            value = fill[WIRE_FILL[name]]
            values.append(
                Decimal(value)
                if name in ("px", "sz", "start_position", "closed_pnl", "fee")
                else value
            )
        out[(fill["user"], fill["tid"])] = tuple(values)
    return out


def assert_activity_completed(db: Database, truth: GroundTruth, users: list[str]) -> int:
    """Every trade of a tracked wallet gave it a row, which its fill (in the same files)
    completed: one row per (user, tid), the other side as counterparty. Returns the rows."""
    expected = {}
    for t in truth.trades:
        if t.buyer in users:
            expected[(t.buyer, t.tid)] = (t.seller, "fill")
        if t.seller in users:
            expected[(t.seller, t.tid)] = (t.buyer, "fill")
    with db.session() as s:
        got = {(f.user, f.tid): (f.counterparty, f.source) for f in s.scalars(select(UserFill))}
    assert got == expected
    return len(expected)


def count(db: Database, model: type) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def import_dir(db: Database, *paths: Path, wallets=(), **kwargs: Any):
    return ArchiveImporter(db, wallets, **kwargs).run(discover(paths))


def assert_equals_truth(db: Database, truth: GroundTruth) -> None:
    stored, expected = trade_rows(db), truth_rows(truth)
    missing = set(expected) - set(stored)
    extra = set(stored) - set(expected)
    assert (len(missing), len(extra), len(stored) - len(set(stored))) == (0, 0, 0)
    assert stored == expected
    assert bar_rows(db) == expected_bars(truth)


# --- the simulator's archive ---------------------------------------------------------------


def test_given_simulator_archive_when_imported_then_database_equals_ground_truth(
    sim_run: tuple[GroundTruth, Path], pg_database: Database
) -> None:
    truth, archive = sim_run
    files = sorted(p.relative_to(archive).as_posix() for p in archive.rglob("*.lz4"))
    assert files == [
        "node_fills_by_block/hourly/20250801/23.lz4",
        "node_fills_by_block/hourly/20250802/0.lz4",
    ]
    users = truth.start["users"] if truth.start else []
    summary = import_dir(pg_database, archive, wallets=users, batch_size=2_000, read_size=16_384)

    assert summary.count("done") == 2 and summary.total("bad_lines") == 0
    assert summary.total("trades_new") == len(truth.trades)
    assert summary.total("unpaired_fills") == 0
    assert_equals_truth(pg_database, truth)
    assert fill_rows(pg_database) == truth_fills(truth)
    assert summary.total("activity") == assert_activity_completed(pg_database, truth, users)

    again = import_dir(pg_database, archive, wallets=users)
    assert again.count("skipped") == 2 and again.total("trades_new") == 0
    forced = import_dir(pg_database, archive, wallets=users, force=True)
    assert forced.total("trades_new") == 0 and forced.total("fills_new") == 0
    assert forced.total("trades_duplicate") == len(truth.trades)
    assert_equals_truth(pg_database, truth)
    assert count(pg_database, UserFill) == len(truth.fills)


def test_given_simulator_archive_when_imported_by_two_processes_then_equal_to_ground_truth(
    sim_run: tuple[GroundTruth, Path], pg_database: Database
) -> None:
    truth, archive = sim_run
    users = truth.start["users"] if truth.start else []
    summary = import_dir(pg_database, archive, wallets=users, batch_size=1_000, jobs=2)
    assert [f.status for f in summary.files] == ["done", "done"]
    assert summary.total("trades_new") == summary.total("trades") == len(truth.trades)
    assert_equals_truth(pg_database, truth)
    assert fill_rows(pg_database) == truth_fills(truth)
    # The decoding processes derived the activity; this one stored it with the new trades
    assert summary.total("activity") == assert_activity_completed(pg_database, truth, users)
    forced = import_dir(pg_database, archive, wallets=users, force=True, jobs=2)
    assert forced.total("trades_new") == 0 and forced.total("trades_duplicate") == len(truth.trades)
    assert_equals_truth(pg_database, truth)


def test_given_ground_truth_when_converted_then_same_bytes_as_written_live(
    sim_run: tuple[GroundTruth, Path], tmp_path: Path
) -> None:
    truth, archive = sim_run
    gt_path = archive.parent / "gt.jsonl"
    stats = write_from_ground_truth(gt_path, tmp_path)
    assert stats.trades == len(truth.trades) and stats.files == 2
    for live in archive.rglob("*.lz4"):
        assert (tmp_path / live.relative_to(archive)).read_bytes() == live.read_bytes()


def test_given_live_rows_stored_first_when_archive_imported_then_no_double_counting(
    sim_run: tuple[GroundTruth, Path], database: Database
) -> None:
    """What the ingester stored meets the archive on the same keys; bars stay a fold of
    the trades (the live part is not folded twice)."""
    truth, archive = sim_run
    live = [t.to_event() for t in truth.trades[::3]]
    for start in range(0, len(live), 1_000):
        with database.session() as s:
            TradeRepository(s).add_batch(live[start : start + 1_000], fold_bars=True)
    summary = import_dir(database, archive)
    assert summary.total("trades_duplicate") == len(live)
    assert summary.total("trades_new") == len(truth.trades) - len(live)
    assert_equals_truth(database, truth)


def test_given_import_interrupted_when_rerun_then_it_resumes_and_completes(
    sim_run: tuple[GroundTruth, Path], pg_database: Database
) -> None:
    truth, archive = sim_run
    calls = 0

    class Stop(Exception):
        pass

    def interrupt(progress: Progress) -> None:
        nonlocal calls
        calls += 1
        if calls == 5 and not progress.final:
            raise Stop

    with pytest.raises(Stop):
        import_dir(pg_database, archive, batch_size=50, progress=interrupt)
    with pg_database.session() as s:
        rows = {
            r.key: (r.status, r.lines_done, r.trades_new) for r in s.scalars(select(ArchiveImport))
        }
    first = rows["node_fills_by_block/hourly/20250801/23.lz4"]
    assert first[0] in ("partial", "done")
    stored_before = count(pg_database, TradeSnapshot)
    assert 0 < stored_before < len(truth.trades)
    assert sum(r[2] for r in rows.values()) == stored_before  # progress matches the rows

    summary = import_dir(pg_database, archive, batch_size=50)
    resumed = [f for f in summary.files if f.status == "done" and f.resumed_from > 0]
    assert resumed, summary.files
    assert summary.total("trades_new") == len(truth.trades) - stored_before
    assert_equals_truth(pg_database, truth)
    with pg_database.session() as s:
        total_new = s.scalar(select(func.sum(ArchiveImport.trades_new)))
    assert total_new == len(truth.trades)


# --- legacy formats ------------------------------------------------------------------------


def write(path: Path, lines: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_lz4_writer(path) as handle:
        for line in lines:
            handle.write(line + b"\n")
    return path


def test_given_node_trades_and_node_fills_when_imported_then_trades_and_fills_stored(
    tmp_path: Path, database: Database
) -> None:
    write(tmp_path / "node_trades/hourly/20250624/2.lz4", list(samples.NODE_TRADES))
    user, ask = orjson.loads(samples.NODE_FILL)
    buyer = "0x" + "12" * 20
    bid = {**ask, "side": "B", "crossed": False, "oid": 7, "dir": "Open Long"}
    write(
        tmp_path / "node_fills/hourly/20250727/8.lz4",
        [orjson.dumps([buyer, bid]), samples.NODE_FILL],
    )
    seller = "0x91853bcefbdc3447768413e6db7d6e0a81c4be56"  # of the @107 node_trades line
    summary = import_dir(database, tmp_path, wallets=[buyer, seller])
    assert [f.key for f in summary.files] == [
        "node_trades/hourly/20250624/2.lz4",
        "node_fills/hourly/20250727/8.lz4",
    ]
    assert summary.total("trades_new") == 3 and summary.total("fills_new") == 1
    with database.session() as s:
        trades = {t.coin: t for t in s.scalars(select(TradeSnapshot))}
        activity = {f.coin: f for f in s.scalars(select(UserFill))}
    assert trades["@107"].tid >= SYNTHETIC_TID_BASE and trades["BTC"].tid == 529138325283768
    assert (trades["BTC"].buyer, trades["BTC"].seller, trades["BTC"].side) == (buyer, user, "A")
    # Tracked wallets' sides of the trades: node_trades has no fills, so that row stays
    # derived; the node_fills trade's row is completed by the buyer's own fill
    assert summary.total("activity") == 2
    assert (activity["@107"].user, activity["@107"].side, activity["@107"].counterparty) == (
        seller, "A", "0xb65117c1e1006e7b2413fa90e96fcbe3fa83ed75",
    )  # fmt: skip
    assert (activity["@107"].source, activity["@107"].oid) == ("trade", None)
    assert (activity["BTC"].user, activity["BTC"].counterparty, activity["BTC"].source) == (
        buyer, user, "fill",
    )  # fmt: skip
    assert (activity["BTC"].oid, activity["BTC"].dir) == (7, "Open Long")
    assert import_dir(database, tmp_path, force=True).total("trades_new") == 0


# --- bad input -----------------------------------------------------------------------------


def block(tid: int) -> bytes:
    events = orjson.loads(samples.FILLS_BY_BLOCK)["events"]
    return orjson.dumps(
        {"local_time": "2025-08-01T00:00:01.0", "block_time": "2025-08-01T00:00:00.5",
         "block_number": tid, "events": [[u, {**f, "tid": tid}] for u, f in events]}
    )  # fmt: skip


def test_given_bad_files_and_lines_when_imported_by_the_cli_then_each_fails_alone(
    tmp_path: Path, postgres_url: str, pg_database: Database
) -> None:
    hourly = tmp_path / "node_fills_by_block" / "hourly" / "20250801"
    write(hourly / "0.lz4", [block(1), b"{torn", block(2), b"[]", block(3)])
    truncated = write(hourly / "1.lz4", [block(t) for t in range(10, 6_000)])  # 2 LZ4 blocks
    truncated.write_bytes(truncated.read_bytes()[:-300])
    (hourly / "2.lz4").write_bytes(gzip.compress(block(5)))
    write(hourly / "3.lz4", [block(7)])

    def run(*args: str):
        return CliRunner().invoke(
            cli, ["archive", "import", str(tmp_path), "--no-progress", *args],
            env={"DATABASE_URL": postgres_url}, catch_exceptions=False,
        )  # fmt: skip

    result = run()
    assert result.exit_code == 1, result.output
    out = result.output
    assert "files: 4 (2 imported, 0 already done, 2 failed)" in out
    assert "bad lines: 2" in out
    assert "node_fills_by_block/hourly/20250801/0.lz4:2: not JSON" in out
    assert "node_fills_by_block/hourly/20250801/0.lz4:4: block: expected an object, got list" in out
    assert "failed: node_fills_by_block/hourly/20250801/1.lz4: truncated" in out
    assert (
        "failed: node_fills_by_block/hourly/20250801/2.lz4: not an LZ4 frame (magic 1f 8b 08 00"
        in out
    )
    assert "2 file(s) failed; rerun to resume them" in result.output
    with pg_database.session() as s:
        tids = set(s.scalars(select(TradeSnapshot.tid)))
        rows = {r.key.rsplit("/", 1)[1]: r for r in s.scalars(select(ArchiveImport))}
    assert {1, 2, 3, 7} <= tids and 5 not in tids
    assert len(tids - {1, 2, 3, 7}) > 1_000  # the truncated file's lines before the cut
    assert rows["0.lz4"].status == "done" and rows["0.lz4"].bad_lines == 2
    assert rows["1.lz4"].status == "failed" and "truncated" in (rows["1.lz4"].error or "")
    assert rows["2.lz4"].status == "failed"

    again = run()
    assert "files: 4 (0 imported, 2 already done, 2 failed, 1 resumed)" in again.output
    assert "trades: 0 new" in again.output


def test_given_a_path_that_does_not_exist_when_imported_then_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["archive", "import", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no such file or directory" in result.output


def test_given_node_trades_hour_also_in_node_fills_when_imported_then_fills_win(
    tmp_path: Path, pg_database: Database
) -> None:
    """2025-05-25 h14-23 exist as node_trades and node_fills: storing both would keep each
    trade twice (real tid and synthetic tid)."""
    _user, ask = orjson.loads(samples.NODE_FILL)
    bid = {**ask, "side": "B", "crossed": False, "oid": 7, "dir": "Open Long"}
    fills = [orjson.dumps(["0x" + "12" * 20, bid]), samples.NODE_FILL]
    write(tmp_path / "a/node_fills/hourly/20250525/14.lz4", fills)
    write(tmp_path / "a/node_trades/hourly/20250525/14.lz4", list(samples.NODE_TRADES))
    write(tmp_path / "b/node_trades/hourly/20250525/15.lz4", list(samples.NODE_TRADES))
    summary = import_dir(pg_database, tmp_path / "a")
    assert [(f.key, f.status) for f in summary.files] == [
        ("node_trades/hourly/20250525/14.lz4", "superseded"),
        ("node_fills/hourly/20250525/14.lz4", "done"),
    ]
    assert count(pg_database, TradeSnapshot) == 1
    write(tmp_path / "c/node_trades/hourly/20250525/14.lz4", list(samples.NODE_TRADES))
    later = import_dir(pg_database, tmp_path / "b", tmp_path / "c")
    assert sorted((f.key, f.status) for f in later.files) == [
        ("node_trades/hourly/20250525/14.lz4", "superseded"),  # node_fills imported before
        ("node_trades/hourly/20250525/15.lz4", "done"),
    ]


def test_given_files_without_a_format_directory_when_imported_then_format_from_content(
    tmp_path: Path, database: Database
) -> None:
    write(tmp_path / "downloads" / "a.lz4", [b"", block(1), block(2)])
    write(tmp_path / "downloads" / "b.lz4", list(samples.NODE_TRADES))
    write(
        tmp_path / "downloads" / "c.lz4",
        [b'{"time": "2024-01-01T12:00:01.138942031", "ver_num": 1}'],
    )
    summary = import_dir(database, tmp_path / "downloads")
    by_name = {Path(f.key).name: f for f in summary.files}
    assert (by_name["a.lz4"].format, by_name["a.lz4"].trades_new) == ("node_fills_by_block", 2)
    assert (by_name["b.lz4"].format, by_name["b.lz4"].trades_new) == ("node_trades", 2)
    assert by_name["c.lz4"].status == "failed" and "unknown archive format" in (
        by_name["c.lz4"].error or ""
    )


def test_given_import_killed_mid_file_when_rerun_then_every_trade_once_and_bars_exact(
    tmp_path: Path, postgres_url: str, pg_database: Database
) -> None:
    """SIGKILL, not a polite stop: the transaction in flight is lost whole, the progress
    row with it, and the rerun resumes after the last committed batch."""
    import os
    import signal
    import subprocess
    import sys

    from workers.simulator.archive import HourlyArchiveWriter
    from workers.simulator.market import Market
    from workers.simulator.universe import Universe

    market = Market(Universe.build(("BTC", "ETH", "SOL")), seed=5, trades_per_block=5)
    writer = HourlyArchiveWriter(tmp_path / "arch", compression_level=1)
    expected = []
    for index in range(24_000):  # 120,000 trades over 28 minutes: one hour file
        block = market.make_block(START_MS + 1_500 + index * 70)  # from 00:00:00
        ordered = [t for coin_trades in block.by_coin.values() for t in coin_trades]
        writer.block(block.time, ordered)
        expected += [(t["coin"], t["time"], t["tid"]) for t in ordered]
    writer.close()
    argv = [sys.executable, "-m", "workers.cli", "archive", "import", str(tmp_path / "arch"),
            "--batch-size", "2000", "--no-progress"]  # fmt: skip
    env = {**os.environ, "DATABASE_URL": postgres_url}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and count(pg_database, TradeSnapshot) < 20_000:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stored = count(pg_database, TradeSnapshot)
    assert 0 < stored < len(expected)
    with pg_database.session() as s:
        (row,) = s.scalars(select(ArchiveImport))
        assert (row.status, row.trades_new) == ("partial", stored)

    rerun = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "1 resumed" in rerun.stdout and "0 already stored" in rerun.stdout
    with pg_database.session() as s:
        keys = sorted(s.execute(select(TradeSnapshot.coin, TradeSnapshot.time, TradeSnapshot.tid)))
        bar_count = s.scalar(select(func.sum(TradeBar.trade_count)))
        (row,) = s.scalars(select(ArchiveImport))
    assert [tuple(k) for k in keys] == sorted(expected)
    assert bar_count == len(expected)
    assert (row.status, row.trades_new, row.trades_duplicate) == ("done", len(expected), 0)


# --- gaps the archive covers ---------------------------------------------------------------


def test_given_gaps_when_the_archive_covering_them_is_imported_then_they_are_healed(
    sim_run: tuple[GroundTruth, Path], pg_database: Database
) -> None:
    truth, archive = sim_run
    users = truth.start["users"] if truth.start else []
    first, last = truth.trades[0].time, truth.trades[-1].time
    coin = truth.trades[len(truth.trades) // 2].coin
    mid = (first + last) // 2
    gap = {"source": "t", "stream": "trades", "key": coin, "ended_by": "closed"}
    with pg_database.session() as s:
        GapRepository(s).record(
            [
                {**gap, "id": "inside", "from_ms": mid - 300, "to_ms": mid + 300},
                {**gap, "id": "still-open", "from_ms": mid},
                {**gap, "id": "beyond", "from_ms": last - 100, "to_ms": last + 3_600_000},
                {**gap, "id": "fills", "stream": "userFills", "key": users[0],
                 "from_ms": mid - 300, "to_ms": mid + 300},
            ]
        )  # fmt: skip
        s.commit()

    summary = import_dir(pg_database, archive, wallets=users)

    assert summary.gaps_healed == 2
    with pg_database.session() as s:
        rows = {g.id: g for g in GapRepository(s).listing()}
        in_window = s.scalar(
            select(func.count()).where(
                TradeSnapshot.coin == coin,
                TradeSnapshot.time >= mid - 300,
                TradeSnapshot.time <= mid + 300,
            )
        )
    assert (rows["inside"].status, rows["inside"].healed_by) == ("healed", "archive")
    assert in_window and rows["inside"].filled == in_window
    assert rows["fills"].status == "healed"
    # an open gap's end is unknown, and a window past the archive's last hour is not covered
    assert rows["still-open"].status == "open" and rows["beyond"].status == "open"
