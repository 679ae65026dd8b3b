"""Record a live run, replay it into an empty database: the same rows, twice adds nothing.

Given a simulator that drops every socket every few seconds and sends malformed frames, an
ingester recording to RECORD_DIR and a worker storing into database A; when the recording
is replayed (``hyperwatch replay --max``) into an empty database B, twice; then B holds
exactly A's trades, bars and asset contexts and the same gap spans, and the second replay
stored nothing new. The same for ``--into db`` (no workers) into an empty database C.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from models import Base, migrate
from models.trade import TRADES_AS_READ
from settings import load_settings
from tests.integration.celery.support import WorkerProcess
from tests.support.services import PostgresDatabase, RedisServer, free_port
from tests.support.stack import QUEUES, Stack, StackConfig

pytestmark = [pytest.mark.e2e, pytest.mark.heavy]  # 17 s: runs in make test-heavy

COLUMNS = {
    "trade_snapshots": ("coin", "time", "tid", "px", "sz", "side", "hash", "buyer", "seller"),
    "trade_bars": (
        "coin", "minute", "open", "high", "low", "close", "open_time", "open_tid",
        "close_time", "close_tid", "volume", "buy_volume", "sell_volume", "volume_delta",
        "trade_count",
    ),
    "asset_context_snapshots": (
        "coin", "time", "funding", "open_interest", "mark_px", "oracle_px", "mid_px",
        "premium", "day_ntl_vlm", "prev_day_px",
    ),
    "gaps": ("stream", "key", "from_ms", "to_ms", "ended_by"),  # ids, sources, healing differ
}  # fmt: skip


@pytest.fixture()
def databases() -> Iterator[tuple[str, str, str]]:
    live, replayed, direct = PostgresDatabase(), PostgresDatabase(), PostgresDatabase()
    try:
        for db in (live, replayed, direct):
            migrate.upgrade(load_settings(database_url=db.url))
        yield live.url, replayed.url, direct.url
    finally:
        live.close()
        replayed.close()
        direct.close()


def rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            out = {}
            for table, names in COLUMNS.items():
                # Trades read as every reader sees them: addresses, not wallet ids (0012).
                source = (
                    TRADES_AS_READ if table == "trade_snapshots" else Base.metadata.tables[table]
                )
                columns = [source.c[name] for name in names]
                out[table] = [tuple(r) for r in conn.execute(select(*columns).order_by(*columns))]
            return out
    finally:
        engine.dispose()


def replay(
    stack: Stack, files: list[Path], *args: str, database_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = stack.env()
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", "replay", *map(str, files), *args],
        env=env, cwd=stack.workdir, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_replay_into_an_empty_database_stores_what_the_live_run_stored(
    tmp_path: Path, databases: tuple[str, str, str]
) -> None:
    live_url, replay_url, direct_url = databases
    recordings = tmp_path / "recordings"
    redis_server = RedisServer().start()
    config = StackConfig(
        rate=300, coins="BTC,ETH", replay_trades=3000,  # reconnect replays cover the drops
        sim_args=("--drop-every", "2.5", "--malformed-rate", "0.02"),
    )  # fmt: skip
    stack = Stack(tmp_path, live_url, redis_server, config)
    try:
        # Given a live run with drops and malformed frames, recorded
        stack.start_simulator()
        stack.start_worker()
        stack.start_ingester(record_dir=recordings)
        time.sleep(7)
        assert stack.stop_all()["ingester"] == 0
        stack.wait_drained()
        stack.stop_workers()
        files = sorted(recordings.iterdir())
        assert files, "nothing recorded"
        live = rows(live_url)
        stats = json.loads(replay(stack, files, "--stats", "--json").stdout)
        assert stats["reconnects"] >= 2 and stats["malformed"] > 0, stats
        assert stats["dropped_from_recording"] == 0
        # When it is replayed into an empty database, twice
        stack.database_url = replay_url
        stack.simulator = None  # nothing to heal from: the replay must stand on its own
        env = stack.env(hl_info_url=f"http://127.0.0.1:{free_port()}/info")
        worker = WorkerProcess(tmp_path, env, name="replay-worker", queues=",".join(QUEUES))
        stack.workers["replay-worker"] = worker.wait_ready(60)
        first = replay(stack, files, "--max")
        assert first.returncode == 0, first.stderr + first.stdout
        replayed = rows(replay_url)
        second = replay(stack, files, "--max")
        assert second.returncode == 0, second.stderr + second.stdout
        twice = rows(replay_url)
        direct = replay(stack, files, "--into", "db", "--jobs", "2", database_url=direct_url)
        assert direct.returncode == 0, direct.stderr + direct.stdout
        direct_rows = rows(direct_url)
        direct_again = replay(stack, files, "--into", "db", database_url=direct_url)
        assert direct_again.returncode == 0, direct_again.stderr + direct_again.stdout
    finally:
        stack.close()
        redis_server.close()
    # Then the replay stored exactly what the live run did, and the second replay nothing new
    assert len(live["trade_snapshots"]) > 1000
    assert len(live["gaps"]) >= 2
    for table in COLUMNS:
        assert replayed[table] == live[table], table
    assert twice == replayed
    assert "stored: every batch confirmed" in first.stdout
    for table in COLUMNS:
        assert direct_rows[table] == live[table], f"--into db: {table}"
    assert "(0 new, " in direct_again.stdout and rows(direct_url) == direct_rows
