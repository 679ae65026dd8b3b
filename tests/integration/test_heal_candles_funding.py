"""Healing keeps REST's candles and funding rates for what it could not fill trade by trade:
a real PostgreSQL and Redis, and an /info stub serving exactly the answers under test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import func, select

from models.db import Database
from models.repositories import GapRepository, RestHistoryRepository
from models.trade import TradeBar
from runtime.rest_budget import RestBudget
from settings import load_settings
from tasks.heal import Healer
from tests.support.info_stub import InfoStub

pytestmark = pytest.mark.integration

HOUR = 3_600_000
T0 = 1_787_050_800_000  # an hour boundary
GAP_FROM, GAP_TO = T0 - 150_000, T0 + 100_000  # 2.5 min before the hour to 1.7 min after


def candle(minute: int, o: str, n: int) -> dict[str, Any]:
    return {"t": minute, "T": minute + 59_999, "s": "ETH", "i": "1m", "o": o, "c": o,
            "h": o, "l": o, "v": "2.5", "n": n}  # fmt: skip


ANSWERS: dict[str, Any] = {
    # REST's recent trades start after the gap did: it cannot reach back
    "recentTrades": [
        {
            "coin": "ETH",
            "side": "B",
            "px": "4321.5",
            "sz": "0.1",
            "time": T0 + 90_000,
            "hash": "0x" + "00" * 32,
            "tid": 7,
            "users": ["0x" + "a" * 40, "0x" + "b" * 40],
        },
    ],
    # five minutes around; only the three wholly inside the window are kept
    "candleSnapshot": [
        candle(T0 - 180_000, "1", 3),  # starts before the gap
        candle(T0 - 120_000, "2", 4),
        candle(T0 - 60_000, "3", 5),
        candle(T0, "4", 6),
        candle(T0 + 60_000, "5", 7),  # ends after the gap closed
    ],
    "fundingHistory": [
        {"coin": "ETH", "fundingRate": "0.0000125", "premium": "-0.0003", "time": T0 + 12},
        {"coin": "ETH", "fundingRate": "0.0000130", "time": T0 - HOUR + 9},  # no premium
    ],
}


@pytest.fixture()
def info() -> Iterator[InfoStub]:
    stub = InfoStub(lambda body: (200, json.dumps(ANSWERS[body["type"]]).encode()))
    yield stub
    stub.close()


@pytest.fixture()
def cache(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


def test_given_a_gap_rest_cannot_reach_back_to_when_healed_then_candles_and_funding_are_kept(
    pg_database: Database, info: InfoStub, cache: redis.Redis
) -> None:
    with pg_database.session() as s:
        GapRepository(s).record(
            [{"id": "g", "source": "t", "stream": "trades", "key": "ETH", "from_ms": GAP_FROM,
              "to_ms": GAP_TO, "ended_by": "closed"}]
        )  # fmt: skip
        s.commit()
    settings = load_settings(database_url=pg_database.url, hl_info_url=info.url)
    healer = Healer(settings, pg_database, httpx.Client(timeout=5), RestBudget(cache, 1200))

    result = healer.run()

    assert (result.partial, result.healed, result.filled) == (1, 0, 1)
    with pg_database.session() as s:
        bars = RestHistoryRepository(s).bars("ETH")
        funding = RestHistoryRepository(s).funding("ETH")
        trade_bars = s.scalar(select(func.count()).select_from(TradeBar))
    # the minutes wholly inside [GAP_FROM, GAP_TO], exact, and none in trade_bars but the
    # one the healed trade folded
    assert [(b.minute, b.open, b.trade_count) for b in bars] == [
        (T0 - 120_000, D("2"), 4),
        (T0 - 60_000, D("3"), 5),
        (T0, D("4"), 6),
    ]
    assert trade_bars == 1
    assert [(f.time, f.rate, f.premium) for f in funding] == [
        (T0 - HOUR + 9, D("0.0000130"), None),
        (T0 + 12, D("0.0000125"), D("-0.0003")),
    ]
    asked = {r["type"]: r for r in info.requests}
    assert asked["candleSnapshot"]["req"] == {
        "coin": "ETH", "interval": "1m", "startTime": T0 - 120_000, "endTime": T0 + 59_999,
    }  # fmt: skip
    # And healing again stores nothing twice
    with pg_database.session() as s:
        GapRepository(s).record(
            [{"id": "g2", "source": "t", "stream": "trades", "key": "ETH", "from_ms": GAP_FROM,
              "to_ms": GAP_TO, "ended_by": "closed"}]
        )  # fmt: skip
        s.commit()
    healer.run()
    with pg_database.session() as s:
        assert len(RestHistoryRepository(s).bars("ETH")) == 3
        assert len(RestHistoryRepository(s).funding("ETH")) == 2


def test_given_a_gap_inside_one_hour_when_healed_then_no_funding_call(
    pg_database: Database, info: InfoStub, cache: redis.Redis
) -> None:
    with pg_database.session() as s:
        GapRepository(s).record(
            [{"id": "g", "source": "t", "stream": "trades", "key": "ETH", "from_ms": T0 + 1_000,
              "to_ms": T0 + 2_000, "ended_by": "closed"}]
        )  # fmt: skip
        s.commit()
    settings = load_settings(database_url=pg_database.url, hl_info_url=info.url)
    Healer(settings, pg_database, httpx.Client(timeout=5), RestBudget(cache, 1200)).run()
    assert [r["type"] for r in info.requests] == ["recentTrades"]  # no whole minute either
