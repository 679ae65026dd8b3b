"""Position polling beyond the WS limit: a real HTTP /info stub, PostgreSQL and Redis."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import httpx
import pytest
import redis

from events import Position
from models.db import Database
from models.repositories import PositionRepository, TrackedWalletRepository, UserRepository
from runtime.clock import ManualClock
from runtime.rest_budget import RestBudget
from settings import Settings, load_settings
from tasks.maintenance.positions_poll import PollFailed, PositionPoller, poll_positions
from tests.support.info_stub import InfoStub as SharedInfoStub

A, B, C = (f"0x{c * 40}" for c in "abc")
T = 1_787_052_702_115

ETH = {
    "type": "oneWay",
    "position": {
        "coin": "ETH", "szi": "0.3421", "entryPx": "4316.58", "positionValue": "1478.4806",
        "unrealizedPnl": "1.785762", "returnOnEquity": "0.0120928", "liquidationPx": None,
        "leverage": {"type": "cross", "value": 10}, "marginUsed": "147.84806", "maxLeverage": 25,
        "cumFunding": {"allTime": "12.904417", "sinceOpen": "0.045123", "sinceChange": "0.045123"},
    },
}  # fmt: skip
SOL = {
    "type": "oneWay",
    "position": {
        "coin": "SOL", "szi": "-19.45", "entryPx": "186.12", "positionValue": "3626.258",
        "unrealizedPnl": "-6.224", "returnOnEquity": "-0.0223512", "liquidationPx": "199.4718",
        "leverage": {"type": "isolated", "value": 13, "rawUsd": "3904.1193"},
        "marginUsed": "277.8613", "maxLeverage": 20,
        "cumFunding": {"allTime": "-3.110284", "sinceOpen": "0.0", "sinceChange": "0.0"},
    },
}  # fmt: skip


def state(*entries: Any, time_ms: int = T) -> bytes:
    return json.dumps(
        {
            "marginSummary": {"accountValue": "1", "totalNtlPos": "0", "totalRawUsd": "1",
                              "totalMarginUsed": "0"},
            "crossMaintenanceMarginUsed": "0", "withdrawable": "1",
            "assetPositions": list(entries), "time": time_ms,
        }
    ).encode()  # fmt: skip


class InfoStub(SharedInfoStub):
    """POST /info answering per user from ``replies``; records every request body."""

    def __init__(self) -> None:
        self.replies: dict[str, tuple[int, bytes]] = {}
        super().__init__(lambda body: self.replies.get(str(body.get("user")), (200, state())))

    def users(self) -> list[str]:
        return [r["user"] for r in self.requests]


@pytest.fixture()
def info() -> Iterator[InfoStub]:
    stub = InfoStub()
    yield stub
    stub.close()


@pytest.fixture()
def cache(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture()
def settings(pg_database: Database, redis_url: str, info: InfoStub) -> Settings:
    # A is the ingester's (TRACKED_WALLETS); B and C come from a subscriber's list.
    with pg_database.session() as s:
        user = UserRepository(s).create("poll@example.com")
        TrackedWalletRepository(s).track(user.id, B)
        TrackedWalletRepository(s).track(user.id, C)
    return load_settings(
        database_url=pg_database.url,
        redis_url=redis_url,
        hl_info_url=info.url,
        tracked_wallets=f"{A}",
        ws_user_limit=1,
    )


def latest(database: Database, user: str, coin: str) -> Any:
    with database.session() as s:
        return PositionRepository(s).latest(user, coin)


def alerts_batches(cache: redis.Redis) -> list[dict[str, Any]]:
    """The positions batches waiting on the alerts queue (kombu JSON envelope)."""
    out = []
    for raw in cache.lrange("alerts", 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == "hyperwatch.alerts.evaluate"
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        out.append(args[0])
    return out


def poller(
    settings: Settings, database: Database, cache: redis.Redis, sent: list, weight: int = 1000
) -> PositionPoller:
    budget = RestBudget(cache, weight, clock=ManualClock(wall_ms=600_000))
    http = httpx.Client(timeout=5.0)
    _clients.append(http)
    return PositionPoller(
        settings, database, http, budget, sent.append, clock=ManualClock(wall_ms=0)
    )


_clients: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def test_given_wallets_beyond_ws_when_the_task_runs_then_positions_are_stored_and_evaluated(
    settings: Settings, pg_database: Database, info: InfoStub, cache: redis.Redis, make_app: Any
) -> None:
    info.replies[B] = (200, state(ETH, SOL))
    info.replies[C] = (200, state())
    make_app(settings)
    outcome = poll_positions()
    # Only the wallets the WebSocket does not follow were asked, with the documented body
    assert sorted(info.users()) == [B, C]
    assert info.requests[0] == {
        "type": "clearinghouseState",
        "user": info.requests[0]["user"],
        "dex": "",
    }
    assert outcome == {"polled": 2, "deferred": 0, "positions": 2, "stored": 2}
    # Decimals exactly as the wire's strings, nulls kept as None
    eth, sol = latest(pg_database, B, "ETH"), latest(pg_database, B, "SOL")
    assert (eth.szi, eth.entry_px, eth.liquidation_px, eth.time) == (
        D("0.3421"),
        D("4316.58"),
        None,
        T,
    )
    assert (sol.szi, sol.leverage_type, sol.leverage_value) == (D("-19.45"), "isolated", 13)
    # And alerts got the same positions as one batch on their queue
    (batch,) = alerts_batches(cache)
    assert batch["kind"] == "positions" and batch["source"] == "poll_positions"
    assert [(e["coin"], e["szi"]) for e in batch["events"]] == [
        ("ETH", "0.3421"),
        ("SOL", "-19.45"),
    ]


def test_given_a_coin_gone_from_a_complete_state_when_polled_then_it_is_stored_flat(
    settings: Settings, pg_database: Database, info: InfoStub, cache: redis.Redis
) -> None:
    before = Position(
        C, "BTC", T - 30_000, D(2), D(100), D(200), D(1), D(0), None, "cross", 5, D(40)
    )
    with pg_database.session() as s:
        PositionRepository(s).add_batch([before])
    info.replies[C] = (200, state(ETH))
    sent: list[dict[str, Any]] = []
    poller(settings, pg_database, cache, sent).run()
    flat = latest(pg_database, C, "BTC")
    assert (flat.time, flat.szi, flat.entry_px, flat.margin_used) == (T, D(0), None, D(0))
    assert {(e["coin"], e["szi"]) for e in sent[0]["events"]} == {("ETH", "0.3421"), ("BTC", "0")}


def test_given_a_state_with_a_bad_entry_when_polled_then_no_coin_is_declared_flat(
    settings: Settings, pg_database: Database, info: InfoStub, cache: redis.Redis
) -> None:
    before = Position(
        C, "BTC", T - 30_000, D(2), D(100), D(200), D(1), D(0), None, "cross", 5, D(40)
    )
    with pg_database.session() as s:
        PositionRepository(s).add_batch([before])
    info.replies[C] = (200, state(ETH, {"type": "oneWay", "position": {"coin": "BTC"}}))
    poller(settings, pg_database, cache, []).run()
    assert latest(pg_database, C, "BTC").szi == D(2)  # unknown, not zero
    assert latest(pg_database, C, "ETH").szi == D("0.3421")


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ((500, b"upstream timeout"), "HTTP 500"),
        ((200, b"<html>maintenance</html>"), "not JSON"),
        ((200, b'{"assetPositions": []}'), "malformed clearinghouse state"),
        ((200, b"null"), "malformed clearinghouse state"),
    ],
)
def test_given_an_api_error_when_polled_then_it_fails_loudly_and_the_others_are_kept(
    settings: Settings,
    pg_database: Database,
    info: InfoStub,
    cache: redis.Redis,
    reply: tuple[int, bytes],
    error: str,
) -> None:
    info.replies[B] = reply
    info.replies[C] = (200, state(SOL))
    sent: list[dict[str, Any]] = []
    with pytest.raises(PollFailed, match=error) as failure:
        poller(settings, pg_database, cache, sent).run()
    assert B in str(failure.value) and C not in str(failure.value)
    # B is not "flat" or "empty": nothing stored for it; C's positions went through
    assert latest(pg_database, B, "SOL") is None
    assert latest(pg_database, C, "SOL").szi == D("-19.45")
    assert [e["user"] for e in sent[0]["events"]] == [C]


def test_given_the_budget_allows_one_call_when_polled_then_the_rest_wait_without_error(
    settings: Settings, pg_database: Database, info: InfoStub, cache: redis.Redis
) -> None:
    info.replies[B] = (200, state(ETH))
    info.replies[C] = (200, state(ETH))
    # position polling may fill 80 % of the minute (runtime.rest_budget.SHARE): 2 of 3
    result = poller(settings, pg_database, cache, [], weight=3).run()
    assert (len(result.polled), len(result.deferred)) == (1, 1)
    assert len(info.requests) == 1
    assert cache.get("hw:rest:weight:10") == b"2"  # minute 600 s // 60, shared via Redis
