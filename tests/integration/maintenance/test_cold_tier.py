"""The cold tier on PostgreSQL: retention exports a day to Parquet, verifies it and only then
drops the partition; the day queried back through ``hyperwatch history query`` is exactly
what was stored; an export that cannot be written keeps the partition and health says so."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from click.testing import CliRunner
from sqlalchemy import select

from domain.coldtier.export import ExportFailed, export_day
from domain.coldtier.query import query
from events import Trade
from models.cold_export import ColdExport
from models.db import Database
from models.partitions import day_of, list_partitions
from models.repositories import TradeRepository
from models.trade import TradeSnapshot
from runtime.clock import ManualClock
from runtime.health import Probe, judge, samples
from runtime.metrics import COLD_EXPORT_FAILURES
from settings import load_settings
from tasks.maintenance.retention import Retention
from workers.cli import cli

NOW = dt.datetime(2031, 3, 20, 12, 0, tzinfo=dt.UTC)
OLD = NOW - dt.timedelta(days=30)
DAY = OLD.date()
T0 = int(OLD.replace(hour=0, minute=0).timestamp() * 1000)
COLUMNS = ("coin", "time", "tid", "px", "sz", "side", "hash", "buyer", "seller")


def trades() -> list[Trade]:
    """A day's trades with what exactness must survive: long decimals, trailing zeros,
    tiny sizes, no addresses, odd hashes, the day's first and last millisecond."""
    out = [
        Trade("BTC", T0, 1, D("117342.5"), D("0.00125"), "B", "0x" + "ab" * 32,
              "0x" + "5b" * 20, "0x" + "0a" * 20),
        Trade("ETH", T0 + 1, 2, D("3000.123456789012345678"), D("1.50"), "A", "0x" + "00" * 32),
        Trade("kPEPE", T0 + 86_399_999, 3, D("0.000012345"), D("123456789012345678.9"), "A",
              "0xAB", "0x1", "h"),
    ]  # fmt: skip
    out += [
        Trade("SOL", T0 + 1_000 * i, 100 + i, D("150.01") + i, D("0.1"), "B",
              f"0x{i:064x}", f"0x{i % 7:040x}", f"0x{i % 5:040x}")
        for i in range(1, 500)
    ]  # fmt: skip
    return out


def stored_rows(database: Database) -> list[dict[str, Any]]:
    t = TradeSnapshot
    with database.engine.connect() as conn:
        rows = conn.execute(select(*(getattr(t, c) for c in COLUMNS)).order_by(t.tid))
        return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


def test_given_an_old_day_when_retained_with_a_cold_dir_then_history_returns_it_exactly(
    pg_database: Database, tmp_path: Path
) -> None:
    # Given a day of trades older than retention, stored as the workers store them
    with pg_database.session() as s:
        TradeRepository(s).add_batch(trades())
    before = stored_rows(pg_database)
    cold = tmp_path / "cold"
    settings = load_settings(database_url=pg_database.url, cold_dir=cold)
    # When retention runs with a cold tier
    result = Retention(pg_database, settings, clock=ManualClock.at(NOW)).run("trade_snapshots")
    # Then the day was exported, verified, recorded and only then dropped
    partition = f"trade_snapshots_p{DAY:%Y%m%d}"
    # (with the empty partitions the migration made around the real today, no file each)
    assert partition in result.dropped_partitions and result.export_failures == ()
    assert sorted(p.name for p in (cold / "trade_snapshots").iterdir()) == [f"{DAY}.parquet"]
    with pg_database.engine.connect() as conn:
        assert partition not in list_partitions(conn, "trade_snapshots")
    assert stored_rows(pg_database) == []
    path = cold / "trade_snapshots" / f"{DAY:%Y-%m-%d}.parquet"
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == len(before)
    assert meta.row_group(0).column(0).compression == "ZSTD"
    with pg_database.session() as s:
        record = s.get(ColdExport, ("trade_snapshots", DAY))
        assert record is not None and record.status == "dropped"
        assert record.rows == len(before) and record.bytes == path.stat().st_size
    # And the rows come back through `history query` exactly, Decimal for Decimal
    out = CliRunner().invoke(
        cli,
        ["history", "query", f"SELECT {', '.join(COLUMNS)} FROM trade_snapshots ORDER BY tid",  # noqa: S608
         "--json"],
        env={"DATABASE_URL": pg_database.url, "COLD_DIR": str(cold)},
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    back = json.loads(out.output)
    for row in back:
        row["px"], row["sz"] = D(row["px"]), D(row["sz"])
    assert back == before
    # And the file is sorted by coin then time (what compresses and prunes best)
    table = pq.read_table(path, columns=["coin", "time"]).to_pylist()
    assert table == sorted(table, key=lambda r: (r["coin"], r["time"]))
    # And a second run (nothing old left) and a rerun of the export by hand change nothing
    again = Retention(pg_database, settings, clock=ManualClock.at(NOW)).run("trade_snapshots")
    assert again.dropped_partitions == () and again.export_failures == ()
    by_hand = CliRunner().invoke(
        cli, ["export", "--table", "trade_snapshots", "--day", f"{DAY}"],
        env={"DATABASE_URL": pg_database.url, "COLD_DIR": str(cold)},
    )  # fmt: skip
    assert by_hand.exit_code == 0 and "already exported and verified" in by_hand.output


def test_given_an_unwritable_cold_dir_when_retained_then_the_partition_stays_and_health_says_so(
    pg_database: Database, tmp_path: Path, redis_url: str
) -> None:
    # Given an old day, and a cold tier path that cannot be a directory (under a plain file:
    # refused even to root)
    with pg_database.session() as s:
        TradeRepository(s).add_batch(trades()[:3])
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    settings = load_settings(database_url=pg_database.url, cold_dir=blocker / "cold")
    # When retention runs
    result = Retention(pg_database, settings, clock=ManualClock.at(NOW)).run("trade_snapshots")
    # Then nothing is dropped, the rows are all there, the failure is recorded and reported
    assert result.dropped_partitions == () and not result.complete
    assert len(result.export_failures) == 1 and "NotADirectoryError" in result.export_failures[0]
    with pg_database.engine.connect() as conn:
        assert f"trade_snapshots_p{day_of(T0):%Y%m%d}" in list_partitions(conn, "trade_snapshots")
    assert len(stored_rows(pg_database)) == 3
    with pg_database.session() as s:
        record = s.get(ColdExport, ("trade_snapshots", DAY))
        assert record is not None and record.status == "failed"
        assert "NotADirectoryError" in (record.error or "")
    # And health, measured for real, reports the cold tier degraded (and the gauge counts it)
    probe = Probe.from_settings(settings.model_copy(update={"redis_url": redis_url}))
    try:
        measured = probe.measure()
        report = judge(measured, settings)
        check = {c.name: c for c in report.checks}["cold"]
        assert str(check.status) == "degraded" and "partitions kept" in check.reason
        assert f"trade_snapshots {DAY}: NotADirectoryError" in check.reason
        assert (COLD_EXPORT_FAILURES.name, 1.0, {}) in samples(measured, report, settings)
        # And once the directory can be written, the next run exports and drops the day
        blocker.unlink()
        fixed = Retention(pg_database, settings, clock=ManualClock.at(NOW)).run("trade_snapshots")
        assert fixed.export_failures == () and len(fixed.dropped_partitions) == 1
        assert (blocker / "cold" / "trade_snapshots" / f"{DAY}.parquet").exists()
        check = {c.name: c for c in judge(probe.measure(), settings).checks}["cold"]
        assert str(check.status) == "healthy"
    finally:
        probe.close()


def test_given_a_day_exported_but_kept_when_queried_with_hot_rows_then_counted_once(
    pg_database: Database, tmp_path: Path
) -> None:
    # Given an old day exported (its partition not dropped) and a newer day only in the database
    newer = Trade("BTC", T0 + 3 * 86_400_000, 9, D("1.25"), D("2"), "B", "0x" + "cd" * 32)
    with pg_database.session() as s:
        TradeRepository(s).add_batch([*trades()[:3], newer])
    export_day(pg_database, tmp_path, "trade_snapshots", DAY)
    # When queried over the files and the database's rows
    result = query(
        tmp_path, "SELECT tid, px FROM trade_snapshots ORDER BY tid", pg_database, hot_since_ms=0
    )
    # Then each trade is there once, amounts exact
    assert [r[0] for r in result.rows] == [1, 2, 3, 9]
    assert result.rows[1][1] == D("3000.123456789012345678") and result.rows[3][1] == D("1.25")
    # And the files alone hold the exported day only
    assert [r[0] for r in query(tmp_path, "SELECT tid FROM trade_snapshots ORDER BY 1").rows] == [
        1, 2, 3,
    ]  # fmt: skip


def test_given_rows_back_for_a_dropped_day_when_retained_again_then_the_file_keeps_both(
    pg_database: Database, tmp_path: Path
) -> None:
    # Given a day exported and dropped
    first = trades()[:3]
    with pg_database.session() as s:
        TradeRepository(s).add_batch(first)
    settings = load_settings(database_url=pg_database.url, cold_dir=tmp_path)
    retain = Retention(pg_database, settings, clock=ManualClock.at(NOW))
    assert f"trade_snapshots_p{DAY:%Y%m%d}" in retain.run("trade_snapshots").dropped_partitions
    # When rows of that day come back (an archive import of old hours: one trade already in
    # the file, one new) and retention runs again
    late = Trade("ETH", T0 + 5, 50, D("2999.5"), D("0.25"), "B", "0x" + "ef" * 32)
    with pg_database.session() as s:
        TradeRepository(s).add_batch([first[0], late])
    again = retain.run("trade_snapshots")
    # Then the day's file holds the union, each trade once, and the partition is gone again
    assert again.export_failures == () and len(again.dropped_partitions) == 1
    back = query(tmp_path, "SELECT tid, px FROM trade_snapshots ORDER BY tid").rows
    assert back == [(1, D("117342.5")), (2, D("3000.123456789012345678")), (3, D("0.000012345")),
                    (50, D("2999.5"))]  # fmt: skip
    assert stored_rows(pg_database) == []
    with pg_database.session() as s:
        record = s.get(ColdExport, ("trade_snapshots", DAY))
        assert record is not None and record.status == "dropped" and record.rows == 4


def test_given_a_day_when_exported_with_copy_then_the_file_equals_the_sqlalchemy_paths(
    pg_database: Database, tmp_path: Path
) -> None:
    # Given a day of trades with every exactness case (long decimals, trailing zeros, NULL
    # and odd addresses, non-hex hashes) and an empty-string-free NULL
    with pg_database.session() as s:
        TradeRepository(s).add_batch(trades())
    # When the day is exported through COPY (the PostgreSQL default) and through SQLAlchemy
    fast = export_day(pg_database, tmp_path / "copy", "trade_snapshots", DAY)
    slow = export_day(pg_database, tmp_path / "rows", "trade_snapshots", DAY, via_copy=False)
    # Then both files hold the same rows in the same order, value for value, same schema
    a, b = pq.read_table(fast.path), pq.read_table(slow.path)
    assert a.schema == b.schema and a.num_rows == b.num_rows == len(trades())
    assert a.to_pylist() == b.to_pylist()
    assert fast.checksum == slow.checksum
    rows = {r["tid"]: r for r in a.to_pylist()}
    assert rows[2]["px"] == D("3000.123456789012345678") and rows[2]["buyer"] is None
    assert (rows[3]["hash"], rows[3]["buyer"], rows[3]["seller"]) == ("0xAB", "0x1", "h")
    assert rows[1]["hash"] == "0x" + "ab" * 32


def test_given_a_decimal_the_file_cannot_hold_when_exported_with_copy_then_it_fails(
    pg_database: Database, tmp_path: Path
) -> None:
    # Given a trade whose size has more decimals than decimal128(38, 18) holds
    with pg_database.session() as s:
        TradeRepository(s).add_batch(
            [Trade("BTC", T0, 1, D("1.5"), D("0.0000000000000000001"), "B", "0x" + "ab" * 32)]
        )
    # When exported through COPY, then it fails rather than rounding, and nothing is written
    try:
        export_day(pg_database, tmp_path, "trade_snapshots", DAY)
    except ExportFailed as exc:
        assert "Rescal" in str(exc) or "data loss" in str(exc), exc
    else:
        raise AssertionError("a value that would be rounded was exported")
    finally:  # the failed record would degrade health for the tests after this one
        with pg_database.session() as s:
            record = s.get(ColdExport, ("trade_snapshots", DAY))
            assert record is not None and record.status == "failed"
            s.delete(record)
    assert not (tmp_path / "trade_snapshots" / f"{DAY}.parquet").exists()
    assert stored_rows(pg_database)  # the rows stay
