"""``hyperwatch replay --into db``: straight into the database, parsing over processes.

The same rows as the pipeline path would store (what the player sends to the persist tasks),
the same rows and sessions whether one process parses or two share the coins, nothing
added by a second replay, and a live gap inside what the recording held healed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from events import decode_batch
from models import Base
from models.db import Database
from models.repositories import GapRepository
from models.trade import TRADES_AS_READ
from runtime import recording
from runtime.metrics import Metrics
from tests.unit.ingester import frames
from workers.cli import cli
from workers.ingester.broker import Target
from workers.replay.direct import DirectReplay
from workers.replay.healing import heal_replayed
from workers.replay.player import Player
from workers.replay.reading import records

pytestmark = pytest.mark.integration
T0 = 1_787_052_600_000  # 2026-08-18T11:30:00Z in ms


def trades(coin: str, first_tid: int, time_ms: int, n: int = 3) -> bytes:
    return orjson.dumps(
        {"channel": "trades", "data": [
            {"coin": coin, "side": "B" if i % 2 else "A", "px": f"{100 + i}.5", "sz": "0.25",
             "time": time_ms + i, "hash": f"0x{first_tid:x}", "tid": first_tid + i,
             "users": ["0xa", "0xb"]}
            for i in range(n)
        ]}
    )  # fmt: skip


def ns(ms: int) -> int:
    return ms * 1_000_000


def line(ms: int, conn: str, payload: bytes) -> bytes:
    return recording.frame_line(ns(ms), conn, payload)


OPEN = recording.opened_payload("ws://x", 0)
# Three coins over two connections: a recorded close, a drop from the recording (D), the
# exchange's replay on resubscribe (duplicates), contexts, mids and a malformed frame.
LINES = [
    recording.marker_line(ns(T0), "0.1", "O", OPEN),
    line(T0 + 10, "0.1", trades("BTC", 100, T0)),
    line(T0 + 20, "0.1", trades("ETH", 200, T0 + 5)),
    line(T0 + 30, "0.1", frames.ASSET_CTX),
    line(T0 + 40, "0.1", frames.ALL_MIDS),
    line(T0 + 50, "0.1", trades("SOL", 300, T0 + 40)),
    line(T0 + 60, "0.1", b"{broken"),
    line(T0 + 1_000, "0.1", trades("BTC", 110, T0 + 990)),
    recording.marker_line(ns(T0 + 1_500), "0.1", "C", b"server_close"),
    recording.marker_line(ns(T0 + 2_000), "0.2", "O", OPEN),
    line(T0 + 2_010, "0.2", trades("BTC", 110, T0 + 990)),  # the exchange's replay
    line(T0 + 2_020, "0.2", trades("BTC", 120, T0 + 2_000)),
    line(T0 + 2_030, "0.2", trades("ETH", 220, T0 + 2_005)),
    line(T0 + 2_040, "0.2", trades("SOL", 320, T0 + 2_010)),
    recording.marker_line(ns(T0 + 3_000), "0.2", "D", b"7"),
    line(T0 + 4_000, "0.2", trades("ETH", 240, T0 + 3_990)),
    line(T0 + 4_010, "0.2", trades("BTC", 140, T0 + 4_000)),
    line(T0 + 12_000, "0.2", trades("SOL", 340, T0 + 11_990)),
    line(T0 + 12_010, "0.2", frames.ASSET_CTX),
]


def write_recording(path: Path, lines: list[bytes]) -> Path:
    header = recording.header_line("main", "host-7", ns(T0))
    path.write_bytes(recording.compress(header) + recording.compress(b"".join(lines)))
    return path


TABLES = {
    "trade_snapshots": ("coin", "time", "tid", "px", "sz", "side", "hash", "buyer", "seller"),
    "trade_bars": ("coin", "minute", "open", "high", "low", "close", "volume", "trade_count"),
    "asset_context_snapshots": ("coin", "time", "funding", "mark_px"),
    "gaps": ("id", "source", "stream", "key", "from_ms", "to_ms", "ended_by", "status"),
    "sessions": (
        "id", "source", "started_at", "ended_at", "end_reason", "frames", "events",
        "malformed", "duplicates", "gap_count",
    ),
}  # fmt: skip


def rows(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with database.engine.connect() as conn:
        for table, names in TABLES.items():
            # Trades as readers see them: the addresses through the wallet dictionary.
            source = TRADES_AS_READ if table == "trade_snapshots" else Base.metadata.tables[table]
            columns = [source.c[name] for name in names]
            out[table] = [tuple(r) for r in conn.execute(select(*columns).order_by(*columns))]
    return out


def empty(database: Database) -> None:
    with database.engine.begin() as conn:
        for table in ("trade_snapshots", "trade_bars", "asset_context_snapshots", "gaps",
                      "sessions"):  # fmt: skip
            conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names


def pipeline_messages(path: Path) -> tuple[set[tuple[str, int, int]], set[tuple[Any, ...]]]:
    """What the pipeline path sends to the persist tasks: trade keys and gap spans."""
    sent: list[tuple[str, bytes]] = []

    def send(target: Target, body: bytes, argsrepr: str) -> None:
        sent.append((target.task, body))

    Player("main", send, Metrics(), 1000, 100, 1000).play(records([path], None, None, []))
    keys = {
        (t.coin, t.time, t.tid)
        for task, body in sent
        if task == "hyperwatch.persist.trades"
        for t in decode_batch(body).events
    }
    gaps: dict[str, tuple[Any, ...]] = {}
    for task, body in sent:
        if task == "hyperwatch.persist.session":
            for g in orjson.loads(body)["gaps"]:
                if g["id"] not in gaps or gaps[g["id"]][3] is None:
                    gaps[g["id"]] = (g["stream"], g["key"], g["from_ms"], g["to_ms"], g["ended_by"])
    return keys, set(gaps.values())


def test_two_processes_store_what_one_does_and_what_the_pipeline_sends_and_twice_adds_nothing(
    tmp_path: Path, pg_database: Database
) -> None:
    path = write_recording(tmp_path / "r.hwrec.lz4", LINES)
    # Given the recording replayed by one process
    one = DirectReplay(pg_database, "main", jobs=1).run([path], None, None)
    by_one = rows(pg_database)
    empty(pg_database)
    # When two processes share its coins, and then replay it again
    two = DirectReplay(pg_database, "main", jobs=2).run([path], None, None)
    by_two = rows(pg_database)
    again = DirectReplay(pg_database, "main", jobs=2).run([path], None, None)
    # Then the rows are the same, the pipeline path's, and the second replay added none
    assert by_two == by_one
    assert rows(pg_database) == by_two
    assert (one.trades_new, two.trades_new, again.trades_new) == (30, 30, 0)
    assert again.trades_duplicate == 30 and again.rows_new == 0
    assert (two.frames, two.malformed, two.sessions) == (15, 1, 3)
    keys, gaps = pipeline_messages(path)
    assert {(c, t, tid) for c, t, tid, *_ in by_two["trade_snapshots"]} == keys
    assert {(s, k, f, t, e) for _i, _src, s, k, f, t, e, _st in by_two["gaps"]} == gaps
    assert {g[1] for g in gaps} == {"BTC", "ETH", "SOL"} and len(gaps) == 6
    assert sum(r[-1] for r in by_two["trade_bars"]) == 30
    frames_counted = sum(r[5] for r in by_two["sessions"])
    assert frames_counted == 15  # each frame counted once, by the process that parsed it


def gap(gap_id: str, key: str, from_ms: int, to_ms: int | None) -> dict[str, Any]:
    return {"id": gap_id, "source": "live", "stream": "trades", "key": key,
            "from_ms": from_ms, "to_ms": to_ms, "ended_by": "buffer_overflow"}  # fmt: skip


def test_the_command_heals_live_gaps_inside_what_the_recording_held(
    tmp_path: Path, pg_database: Database
) -> None:
    path = write_recording(tmp_path / "r.hwrec.lz4", LINES)
    with pg_database.session() as session:
        GapRepository(session).record(
            [
                gap("inside", "BTC", T0 + 1, T0 + 990),  # BTC played without a hole here
                gap("open", "BTC", T0 + 1, None),  # its end unknown: stays open
                gap("past-end", "SOL", T0 + 2_010, T0 + 20_000),  # beyond what was played
                gap("over-hole", "ETH", T0 + 2_006, T0 + 3_990),  # the recording's own drop
                gap("eth-inside", "ETH", T0 + 5, T0 + 7),
            ]
        )
    result = CliRunner().invoke(
        cli, ["replay", str(path), "--into", "db", "--jobs", "2"],
        env={"DATABASE_URL": pg_database.url, "DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "30 trades (30 new, 0 already stored;" in result.output
    assert "2 gap(s) healed" in result.output
    with pg_database.session() as session:
        settled = {g.id: (g.status, g.healed_by, g.filled) for g in GapRepository(session).list()}
    assert settled["inside"] == ("healed", "replay", 3)  # tids 101, 102 and 110
    assert settled["eth-inside"] == ("healed", "replay", 3)
    for still in ("open", "past-end", "over-hole"):
        assert settled[still] == ("open", None, 0), still


def test_the_pipeline_path_heals_the_same_gaps_from_what_its_player_saw(
    tmp_path: Path, pg_database: Database
) -> None:
    path = write_recording(tmp_path / "r.hwrec.lz4", LINES)
    with pg_database.session() as session:
        GapRepository(session).record(
            [
                gap("inside", "BTC", T0 + 1, T0 + 990),
                gap("over-hole", "ETH", T0 + 2_006, T0 + 3_990),
            ]
        )
    player = Player("main", lambda *_: None, Metrics(), 1000, 100, 1000)
    result = player.play(records([path], None, None, []))
    # (the rows themselves would come from the workers; the healing counts what is stored)
    assert heal_replayed(pg_database, result.seen, result.gaps.values()) == 1
    with pg_database.session() as session:
        settled = {g.id: g.status for g in GapRepository(session).list()}
    assert settled == {"inside": "healed", "over-hole": "open"}


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # PostgreSQL: the first test
def test_sqlite_takes_one_process_and_stores_the_same(tmp_path: Path, database: Database) -> None:
    path = write_recording(tmp_path / "r.hwrec.lz4", LINES)
    replayer = DirectReplay(database, "main", jobs=2)
    first = replayer.run([path], None, None)
    again = DirectReplay(database, "main", jobs=2).run([path], None, None)
    assert replayer.jobs == 1
    assert (first.trades_new, again.trades_new, again.trades_duplicate) == (30, 0, 30)
    stored = rows(database)
    assert len(stored["trade_snapshots"]) == 30 and len(stored["gaps"]) == 6
    assert sum(r[-1] for r in stored["trade_bars"]) == 30
