"""Position polling beyond the WS limit: a real HTTP /info stub, PostgreSQL and Redis; the
clock that ranks and paces the runs is a ManualClock."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from decimal import Decimal as Dec
from typing import Any

import httpx
import pytest
import redis

from domain.alerts.shared_state import SharedMarket
from events import AssetContext, Fill, Position
from models.alert import Alert
from models.db import Database
from models.repositories import (
    AlertRepository,
    FillRepository,
    PositionRepository,
    TrackedWalletRepository,
    UserRepository,
)
from runtime.clock import ManualClock
from runtime.metrics import WALLET_POLL_INTERVAL
from runtime.metrics_export import POLL_GAUGES_KEY, read_snapshot, task_metrics
from runtime.rest_budget import RestBudget
from settings import Settings, load_settings
from tasks.maintenance.beat_guard import ScheduleLock
from tasks.maintenance.poll_schedule import WalletState
from tasks.maintenance.positions_poll import (
    LOCK_KEY,
    WALLETS_KEY,
    PollFailed,
    PositionPoller,
    poll_positions,
)
from tests.support.info_stub import InfoStub as SharedInfoStub

A, B, C, D = (f"0x{c * 40}" for c in "abcd")
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
    settings: Settings,
    database: Database,
    cache: redis.Redis,
    sent: list,
    weight: int = 1000,
    clock: ManualClock | None = None,
) -> PositionPoller:
    clock = clock or ManualClock(wall_ms=600_000)
    budget = RestBudget(cache, weight, clock=clock)
    http = httpx.Client(timeout=5.0)
    _clients.append(http)
    return PositionPoller(settings, database, http, budget, sent.append, cache, clock=clock)


def states(cache: redis.Redis) -> dict[str, WalletState]:
    return {k.decode(): WalletState.from_json(v) for k, v in cache.hgetall(WALLETS_KEY).items()}


def interval_count(cadence_class: str) -> float:
    value = task_metrics().registry.get_sample_value(
        f"{WALLET_POLL_INTERVAL.name}_count", {"class": cadence_class}
    )
    return value or 0.0


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
    assert outcome == {
        "polled": 2,
        "deferred": 0,
        "failed": 0,
        "positions": 2,
        "stored": 2,
        "skipped": 0,
    }
    # Decimals exactly as the wire's strings, nulls kept as None
    eth, sol = latest(pg_database, B, "ETH"), latest(pg_database, B, "SOL")
    assert (eth.szi, eth.entry_px, eth.liquidation_px, eth.time) == (
        Dec("0.3421"),
        Dec("4316.58"),
        None,
        T,
    )
    assert (sol.szi, sol.leverage_type, sol.leverage_value) == (Dec("-19.45"), "isolated", 13)
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
        C, "BTC", T - 30_000, Dec(2), Dec(100), Dec(200), Dec(1), Dec(0), None, "cross", 5, Dec(40)
    )
    with pg_database.session() as s:
        PositionRepository(s).add_batch([before])
    info.replies[C] = (200, state(ETH))
    sent: list[dict[str, Any]] = []
    poller(settings, pg_database, cache, sent).run()
    flat = latest(pg_database, C, "BTC")
    assert (flat.time, flat.szi, flat.entry_px, flat.margin_used) == (T, Dec(0), None, Dec(0))
    assert {(e["coin"], e["szi"]) for e in sent[0]["events"]} == {("ETH", "0.3421"), ("BTC", "0")}


def test_given_a_state_with_a_bad_entry_when_polled_then_no_coin_is_declared_flat(
    settings: Settings, pg_database: Database, info: InfoStub, cache: redis.Redis
) -> None:
    before = Position(
        C, "BTC", T - 30_000, Dec(2), Dec(100), Dec(200), Dec(1), Dec(0), None, "cross", 5, Dec(40)
    )
    with pg_database.session() as s:
        PositionRepository(s).add_batch([before])
    info.replies[C] = (200, state(ETH, {"type": "oneWay", "position": {"coin": "BTC"}}))
    poller(settings, pg_database, cache, []).run()
    assert latest(pg_database, C, "BTC").szi == Dec(2)  # unknown, not zero
    assert latest(pg_database, C, "ETH").szi == Dec("0.3421")


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
    assert latest(pg_database, C, "SOL").szi == Dec("-19.45")
    assert [e["user"] for e in sent[0]["events"]] == [C]
    # And B counts as tried (it waits its cadence, not hammered every run), never as polled
    after = states(cache)
    assert after[B].last is None and after[B].tried == 600_000
    assert after[C].last == after[C].tried == 600_000


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


# --- cadence classes, single runner, state ------------------------------------------------------

START_MS = 1_787_052_600_000


def cadence_settings(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={
            "position_poll_hot_s": 10.0,
            "position_poll_interval_s": 30.0,
            "position_poll_idle_s": 300.0,
            **overrides,
        }
    )


def seed_classes(database: Database, cache: redis.Redis) -> None:
    """B hot (a liquidation alert, 8 % away with a 5 % threshold), C active (a fill a minute
    ago), D idle (tracked, nothing happening)."""
    with database.session() as s:
        user = UserRepository(s).by_email("poll@example.com")
        assert user is not None
        TrackedWalletRepository(s).track(user.id, D)
        AlertRepository(s).add(
            Alert(user_id=user.id, coin="SOL", kind="liquidation_distance_below",
                  threshold=Dec(5), wallet=B)
        )  # fmt: skip
        FillRepository(s).add_batch(
            [Fill(C, "ETH", START_MS - 60_000, 7, 8, Dec(1), Dec(1), "B", "Open Long", Dec(0),
                  Dec(0), Dec(0), "USDC", True, "0x" + "0" * 64)]
        )  # fmt: skip
    market = SharedMarket(cache)
    liquidation = Dec("200")
    market.apply("positions", [Position(B, "SOL", START_MS, Dec(-10), Dec(180), Dec(1850),
                                        Dec(0), Dec(0), liquidation, "cross", 5, Dec(370))])  # fmt: skip
    # mark 185: |185 - 200| / 185 = 8.1 %, within twice the 5 % threshold
    market.apply("asset_contexts", [AssetContext("SOL", START_MS, Dec(0), Dec(1), Dec(185),
                                                 Dec(185), None, None, Dec(0), Dec(185))])  # fmt: skip


def test_given_hot_active_and_idle_wallets_when_runs_go_by_then_each_is_polled_at_its_cadence(
    settings: Settings, pg_database: Database, info: InfoStub, cache: redis.Redis
) -> None:
    # Given B hot, C active and D idle
    seed_classes(pg_database, cache)
    clock = ManualClock(wall_ms=START_MS)
    run = poller(cadence_settings(settings), pg_database, cache, [], clock=clock)
    hot_before = interval_count("hot")

    def polled_after(seconds: float) -> list[str]:
        clock.advance(seconds)
        info.requests.clear()
        run.run()
        return sorted(info.users())

    # When runs go by: the first polls all, then each wallet when its cadence is due
    assert polled_after(0) == [B, C, D]
    assert polled_after(5) == []
    assert polled_after(5) == [B]  # 10 s: hot
    assert polled_after(10) == [B]  # 20 s
    assert polled_after(10) == [B, C]  # 30 s: hot and active
    for _ in range(26):
        polled_after(10)
    assert polled_after(10) == [B, C, D]  # 300 s: all three again

    # Then the state says each one's class and last poll, and the intervals were exported
    after = states(cache)
    assert {w: s.cls for w, s in after.items()} == {B: "hot", C: "active", D: "idle"}
    assert after[D].last == START_MS + 300_000
    assert interval_count("hot") - hot_before == 30
    gauges = {(n, lb["class"]): v for n, v, lb in read_snapshot(cache, POLL_GAUGES_KEY)}
    assert gauges[("hyperwatch_wallet_poll_wallets", "hot")] == 1.0
    assert gauges[("hyperwatch_wallet_poll_overdue", "idle")] == 0.0


def test_given_the_liquidation_distance_grows_then_the_wallet_cools_to_active(
    settings: Settings, pg_database: Database, info: InfoStub, cache: redis.Redis
) -> None:
    seed_classes(pg_database, cache)
    clock = ManualClock(wall_ms=START_MS)
    run = poller(cadence_settings(settings), pg_database, cache, [], clock=clock)
    assert B in run.run().polled
    # When the mark moves away: 150 → |150 - 200| / 150 = 33 %, over twice the threshold
    SharedMarket(cache).apply("asset_contexts", [AssetContext(
        "SOL", START_MS + 1, Dec(0), Dec(1), Dec(150), Dec(150), None, None, Dec(0), Dec(150))])  # fmt: skip
    clock.advance(10)
    result = run.run()
    # Then B is active: not due at 10 s any more
    assert result.classes[B].value == "active" and B not in result.polled


def test_given_a_run_in_progress_when_another_starts_then_it_polls_nothing(
    settings: Settings, pg_database: Database, info: InfoStub, cache: redis.Redis
) -> None:
    # Given another run holding the lock
    other = ScheduleLock(cache, 60, "other-run", key=LOCK_KEY)
    assert other.hold()
    # When a run starts beside it
    result = poller(settings, pg_database, cache, []).run()
    # Then it skips, polls nothing and writes no state
    assert result.skipped and info.requests == [] and cache.hlen(WALLETS_KEY) == 0
    # And once the other run is done, the next one polls and leaves the lock free
    other.release()
    assert len(poller(settings, pg_database, cache, []).run().polled) == 2
    assert cache.get(LOCK_KEY) is None


def test_given_a_wallet_no_longer_tracked_then_its_state_is_dropped(
    settings: Settings, pg_database: Database, info: InfoStub, cache: redis.Redis
) -> None:
    clock = ManualClock(wall_ms=START_MS)
    poller(settings, pg_database, cache, [], clock=clock).run()
    assert set(states(cache)) == {B, C}
    with pg_database.session() as s:
        user = UserRepository(s).by_email("poll@example.com")
        assert user is not None
        TrackedWalletRepository(s).untrack(user.id, C)
    clock.advance(60)
    poller(settings, pg_database, cache, [], clock=clock).run()
    assert set(states(cache)) == {B}


def test_given_too_small_a_budget_then_one_warning_says_what_cadence_it_keeps_every_ten_minutes(
    settings: Settings,
    pg_database: Database,
    info: InfoStub,
    cache: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given 2 idle wallets wanting a poll every 10 s (12 a minute) and a budget of 4 a minute
    tight = cadence_settings(
        settings,
        position_poll_interval_s=10.0,
        position_poll_idle_s=10.0,
        rest_weight_per_minute=10,
    )
    clock = ManualClock(wall_ms=START_MS)
    run = poller(tight, pg_database, cache, [], weight=10, clock=clock)
    with caplog.at_level(logging.WARNING, logger="tasks.maintenance.positions_poll"):
        for _ in range(12):  # a minute of runs
            run.run()
            clock.advance(5)
        clock.advance(600)
        run.run()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("2 polled wallets (hot 0, active 0, idle 2) need 12")
    assert "the REST budget allows 4" in warnings[0] and "every 30 s instead of 10 s" in warnings[0]


class SlowReadsClock(ManualClock):
    """Every wall-clock reading finds a second gone: a run whose database reads take time."""

    def time_ms(self) -> int:
        self.advance(1.0)
        return super().time_ms()


def test_a_runs_share_of_the_budget_is_measured_from_the_previous_runs_first_reading(
    settings: Settings, pg_database: Database, info: InfoStub, cache: redis.Redis
) -> None:
    # Given a run whose clock moves while it reads the database and Redis
    clock = SlowReadsClock(wall_ms=START_MS)
    poller(settings, pg_database, cache, [], clock=clock).run()
    # Then its recorded start is the reading it ranked the wallets with (the first), so the
    # next run's elapsed time — its share of the budget — loses nothing to those reads
    recorded = int(cache.hget("hw:poll:run", "started_ms") or 0)
    assert recorded == START_MS + 1_000
    assert states(cache)[B].tried == recorded
