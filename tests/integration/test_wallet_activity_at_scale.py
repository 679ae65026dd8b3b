"""Wallet activity at scale, as real processes: the simulator (10 wallets with fills on the
WebSocket, 2,000 more only in the public trades) → the ingester → Redis → a Celery worker →
PostgreSQL. Every trade of a tracked wallet is stored once as that wallet's activity, with
no per-wallet subscription; the 10 stream wallets' rows are completed by their own fills,
never doubled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from models.db import Database
from models.fill import FROM_FILL, FROM_TRADE, UserFill
from models.repositories import UserRepository
from models.tracked_wallet import TrackedWallet
from models.trade import TradeSnapshot
from tests.support.services import RedisServer
from tests.support.stack import Stack, StackConfig, compare, wait_until
from workers.simulator import read_ground_truth, sim_user_address, sim_wallet_address

pytestmark = pytest.mark.integration

STREAM_USERS = [sim_user_address(i) for i in range(10)]  # TRACKED_WALLETS: userFills on the WS
WALLETS = [sim_wallet_address(i) for i in range(2000)]  # tracked in the database only


@pytest.fixture()
def stack(tmp_path: Path, pg_database: Database, private_redis: RedisServer) -> Iterator[Stack]:
    config = StackConfig(
        rate=400,
        users=10,
        sim_args=("--wallets", str(len(WALLETS))),
        extra_env={"TRACKED_WALLETS": ",".join(STREAM_USERS)},
    )
    stack = Stack(tmp_path, pg_database.url, private_redis, config)
    try:
        yield stack
    finally:
        stack.close()


def stored_trades(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(TradeSnapshot)) or 0)


def test_given_2000_tracked_wallets_when_the_simulator_streams_then_each_trade_of_theirs_is_stored_once(
    stack: Stack, pg_database: Database
) -> None:
    # Given 2,000 wallets tracked in the database (beside the 10 of TRACKED_WALLETS)
    with pg_database.session() as s:
        owner = UserRepository(s).create("ops@example.com")
        s.add_all(TrackedWallet(user_id=owner.id, address=w) for w in WALLETS)
        s.commit()

    # When the pipeline runs on a stream whose trades they take part in
    try:
        stack.start_simulator()
        stack.start_worker()
        stack.start_ingester()
        wait_until(lambda: stored_trades(pg_database) >= 1_500, 90, "1,500 trades stored")
        time.sleep(1.0)
        stack.stop_all()  # the ingester flushes, the simulator closes its ground truth
        stack.wait_drained()
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop_workers()

    # Then the trades themselves are exactly the exchange's
    comparison = compare(pg_database.url, stack.truth_path)
    assert comparison.ok, comparison.summary()
    truth = read_ground_truth(stack.truth_path)
    with pg_database.session() as s:
        trades = {
            t.tid: t
            for t in s.scalars(select(TradeSnapshot))  # tids are unique in the simulator
        }
        rows = {(f.user, f.tid): f for f in s.scalars(select(UserFill))}

    # And every stored trade of a tracked wallet is that wallet's activity, once, exactly
    tracked = set(STREAM_USERS) | set(WALLETS)
    expected: dict[tuple[str, int], tuple[Any, ...]] = {}
    for t in trades.values():
        for user, side, other in ((t.buyer, "B", t.seller), (t.seller, "A", t.buyer)):
            if user in tracked:
                expected[(user, t.tid)] = (t.coin, t.time, t.px, t.sz, side, t.hash, other)
    got = {
        key: (f.coin, f.time, f.px, f.sz, f.side, f.hash, f.counterparty)
        for key, f in rows.items()
        if key in expected
    }
    assert got == expected
    by_wallets = [key for key in expected if key[0] in set(WALLETS)]
    assert len(by_wallets) > 1_000 and len({user for user, _ in by_wallets}) > 500
    # The 2,000 have no fills of their own: their rows are what the trades say, nothing more
    assert {(rows[k].source, rows[k].oid, rows[k].fee) for k in by_wallets} == {
        (FROM_TRADE, None, None)
    }

    # And nothing else is stored but the stream wallets' own fills of trades outside the
    # stored window (the subscription's snapshot of earlier fills)
    for key in rows.keys() - expected.keys():
        assert key[0] in STREAM_USERS and key[1] not in trades, key
        assert (rows[key].source, rows[key].counterparty) == (FROM_FILL, None)

    # And the stream wallets' rows were completed by their own fills, not doubled: every
    # one inside the run (away from its first and last second, where one frame of a trade
    # and its fill may fall each side of the subscription or the stop) carries the fill
    times = sorted(t.time for t in trades.values())
    inner = (times[0] + 1_000, times[-1] - 1_000)
    fills = {(f["user"], f["tid"]): f for f in truth.fills}
    streamed = [
        k for k in expected if k[0] in STREAM_USERS and inner[0] < expected[k][1] < inner[1]
    ]
    assert len(streamed) > 20
    for key in streamed:
        row, fill = rows[key], fills[key]
        assert row.source == FROM_FILL, key
        assert (row.oid, row.dir, row.crossed, row.fee, row.closed_pnl) == (
            fill["oid"], fill["dir"], fill["crossed"], Decimal(fill["fee"]),
            Decimal(fill["closedPnl"]),
        ), key  # fmt: skip
    # (one row per (user, tid) is the table's key: a second could not exist)
