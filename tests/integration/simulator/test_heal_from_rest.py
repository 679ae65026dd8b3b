"""Healing against the simulator's /info and a real PostgreSQL and Redis: what REST still
serves fills the gap through the live repositories; what it cannot reach stays partial."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis
from sqlalchemy import func, select

from models.db import Database
from models.fill import UserFill
from models.repositories import GapRepository, TradeRepository
from runtime.rest_budget import RestBudget
from settings import load_settings
from tasks.heal import Healer
from tests.integration.simulator.conftest import http_post
from workers.simulator import SimulatorHandle

pytestmark = pytest.mark.integration


@pytest.fixture()
def cache(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


def healer(sim: SimulatorHandle, db: Database, cache: redis.Redis, weight: int = 1200) -> Healer:
    settings = load_settings(database_url=db.url, hl_info_url=sim.info_url)
    return Healer(settings, db, httpx.Client(timeout=5.0), RestBudget(cache, weight))


def gap(gid: str, stream: str, key: str, from_ms: int, to_ms: int) -> dict:
    return {"id": gid, "source": "t", "stream": stream, "key": key, "from_ms": from_ms,
            "to_ms": to_ms, "ended_by": "closed"}  # fmt: skip


def test_given_closed_gaps_when_healed_then_rest_fills_them_and_settles_each(
    start_sim: Callable[..., SimulatorHandle], pg_database: Database, cache: redis.Redis
) -> None:
    # Given a simulator whose recentTrades serves the latest 200 trades, and one wallet
    sim = start_sim(rate=100.0, replay_trades=200, users=1, user_share=0.5, coins=("BTC", "ETH"))
    time.sleep(1.5)
    _, recent = http_post(sim.info_url, {"type": "recentTrades", "coin": "BTC"})
    oldest, newest = recent[0]["time"], recent[-1]["time"]
    user = sim.exchange.config.all_users[0]
    # And three gaps: one inside REST's reach, one older than it, and a wallet's fills
    with pg_database.session() as s:
        GapRepository(s).record(
            [
                gap("inside", "trades", "BTC", oldest, newest),
                gap("too-old", "trades", "BTC", oldest - 60_000, newest),
                gap("fills", "userFills", user, 0, int(time.time() * 1000)),
            ]
        )
        s.commit()
    # When healing runs
    result = healer(sim, pg_database, cache).run()
    # Then the trades REST served inside the window are stored, exactly those
    assert result.failed == {}
    inside = {(t["coin"], t["time"], t["tid"]) for t in recent}
    with pg_database.session() as s:
        stored = TradeRepository(s).keys()
        rows = {g.id: g for g in GapRepository(s).listing()}
        fills = s.scalar(select(func.count()).select_from(UserFill).where(UserFill.user == user))
    assert inside <= stored
    assert (rows["inside"].status, rows["inside"].healed_by) == ("healed", "rest")
    # (both BTC gaps read the same recent trades: each row is counted by the gap storing it)
    assert rows["inside"].filled + rows["too-old"].filled == len(stored)
    # And the gap REST cannot reach back to stays partial, for an archive to finish
    assert rows["too-old"].status == "partial"
    # And the wallet's fills were paged in and its gap healed
    assert rows["fills"].status == "healed" and rows["fills"].filled > 0
    assert fills == rows["fills"].filled
    # When healing runs again nothing is left to do and nothing is stored twice
    again = healer(sim, pg_database, cache).run()
    assert (again.healed, again.partial, again.filled) == (0, 0, 0)


def test_given_no_budget_when_healing_then_gaps_wait_open(
    start_sim: Callable[..., SimulatorHandle], pg_database: Database, cache: redis.Redis
) -> None:
    sim = start_sim(rate=50.0)
    with pg_database.session() as s:
        GapRepository(s).record([gap("g", "trades", "BTC", 1, 2)])
        s.commit()
    result = healer(sim, pg_database, cache, weight=10).run()
    assert result.deferred == 1 and result.healed == 0
    with pg_database.session() as s:
        assert [g.id for g in GapRepository(s).to_heal()] == ["g"]


def test_given_an_exchange_error_when_healing_then_the_gap_stays_open_and_it_is_reported(
    pg_database: Database, cache: redis.Redis
) -> None:
    settings = load_settings(database_url=pg_database.url, hl_info_url="http://127.0.0.1:9/info")
    with pg_database.session() as s:
        GapRepository(s).record([gap("g", "trades", "BTC", 1, 2)])
        s.commit()
    result = Healer(settings, pg_database, httpx.Client(timeout=1.0), RestBudget(cache, 1200)).run()
    assert list(result.failed) == ["g"] and "recentTrades" in result.failed["g"]
    with pg_database.session() as s:
        assert [g.id for g in GapRepository(s).to_heal()] == ["g"]


def test_given_a_tracked_wallet_when_its_trades_and_fills_are_healed_then_one_completed_row_each(
    start_sim: Callable[..., SimulatorHandle], pg_database: Database, cache: redis.Redis
) -> None:
    # Given a simulated wallet in half the trade sides, tracked, and a trades gap REST covers
    sim = start_sim(rate=100.0, replay_trades=200, users=1, user_share=0.5, coins=("BTC",))
    time.sleep(1.5)
    _, recent = http_post(sim.info_url, {"type": "recentTrades", "coin": "BTC"})
    user = sim.exchange.config.all_users[0]
    settings = load_settings(
        database_url=pg_database.url, hl_info_url=sim.info_url, tracked_wallets=[user]
    )
    with pg_database.session() as s:
        GapRepository(s).record([gap("t", "trades", "BTC", recent[0]["time"], recent[-1]["time"])])
        s.commit()

    # When the trades gap is healed
    http = httpx.Client(timeout=5.0)
    assert Healer(settings, pg_database, http, RestBudget(cache, 1200)).run().failed == {}

    # Then the wallet's side of every healed trade it took part in is recorded
    with pg_database.session() as s:
        mine = {
            t.tid: (t.seller if t.buyer == user else t.buyer, "B" if t.buyer == user else "A")
            for t in TradeRepository(s).for_coin("BTC")
            if user in (t.buyer, t.seller)
        }
        derived = {f.tid: f for f in s.scalars(select(UserFill))}
    assert mine and {tid: (f.counterparty, f.side) for tid, f in derived.items()} == mine
    assert {f.source for f in derived.values()} == {"trade"}

    # When the wallet's fills are healed too (userFillsByTime)
    with pg_database.session() as s:
        GapRepository(s).record([gap("f", "userFills", user, 0, int(time.time() * 1000))])
        s.commit()
    assert Healer(settings, pg_database, http, RestBudget(cache, 1200)).run().failed == {}

    # Then each of those rows was completed by its fill, keeping its counterparty
    with pg_database.session() as s:
        after = {f.tid: f for f in s.scalars(select(UserFill)) if f.tid in mine}
    assert {tid: (f.counterparty, f.side, f.source) for tid, f in after.items()} == {
        tid: (other, side, "fill") for tid, (other, side) in mine.items()
    }
    assert all(f.oid is not None and f.fee is not None for f in after.values())
