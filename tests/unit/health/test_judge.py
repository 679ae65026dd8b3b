"""The health judgement: measurements in, one status per check, worst wins. Pure."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from runtime.brokers.redis import queue_keys
from runtime.health import (
    SNAPSHOT_DEFS,
    Failure,
    Measurements,
    Status,
    WorkerBeat,
    judge,
    samples,
)
from runtime.metrics import INGEST_LAG
from settings import Settings, load_settings

NOW = 1_787_052_600_000
MIB = 1024 * 1024


@pytest.fixture()
def settings() -> Settings:
    return load_settings()


def healthy(**changes: Any) -> Measurements:
    m = Measurements(
        time_ms=NOW,
        db_latency_s=0.002,
        newest_row_ms={"trade_snapshots": NOW - 1_000, "user_fills": None},
        redis_latency_s=0.001,
        broker_latency_s=None,
        queue_depths={"ingest": 3, "alerts": 0, "notify": 0, "maintenance": 1},
        last_event_ms={"trades": NOW - 2_000, "activeAssetCtx": NOW - 500},
        workers={"w1@h": WorkerBeat("w1@h", NOW - 3_000, 10, 200 * MIB)},
        beat_holder="h:1:abc",
    )
    return replace(m, **changes)


def status_of(m: Measurements, settings: Settings, name: str) -> Status:
    return next(c.status for c in judge(m, settings).checks if c.name == name)


def test_given_every_dependency_fine_when_judged_then_healthy_with_exit_code_0(
    settings: Settings,
) -> None:
    report = judge(healthy(), settings)
    assert report.status is Status.HEALTHY and int(report.status) == 0
    assert [c.name for c in report.checks] == [
        "database", "redis", "queues", "ingest", "workers", "memory", "beat",
    ]  # fmt: skip
    assert all(c.status is Status.HEALTHY for c in report.checks)


def test_given_database_unreachable_when_judged_then_unhealthy_with_the_error(
    settings: Settings,
) -> None:
    m = healthy(db_latency_s=Failure("OperationalError: connection refused"))
    report = judge(m, settings)
    database = report.checks[0]
    assert database.status is Status.UNHEALTHY
    assert "connection refused" in database.reason
    assert report.status is Status.UNHEALTHY and int(report.status) == 2


def test_given_slow_database_when_judged_then_degraded(settings: Settings) -> None:
    slow = settings.health_db_latency_degraded_ms / 1000 + 0.05
    assert status_of(healthy(db_latency_s=slow), settings, "database") is Status.DEGRADED
    assert judge(healthy(db_latency_s=slow), settings).status is Status.DEGRADED


def test_given_tables_unreadable_when_judged_then_database_unhealthy(settings: Settings) -> None:
    m = healthy(newest_row_ms=Failure("ProgrammingError: relation does not exist"))
    assert status_of(m, settings, "database") is Status.UNHEALTHY


def test_given_redis_down_when_judged_then_each_redis_backed_check_says_so(
    settings: Settings,
) -> None:
    down = Failure("ConnectionError: Error 111 connecting")
    m = healthy(
        redis_latency_s=down, queue_depths=down, last_event_ms=down, workers=down, beat_holder=down
    )
    report = judge(m, settings)
    for name in ("redis", "queues", "ingest", "workers", "memory", "beat"):
        check = next(c for c in report.checks if c.name == name)
        assert check.status is Status.UNHEALTHY, name
        assert "Error 111" in check.reason, name


def test_given_separate_broker_when_judged_then_it_is_its_own_check(settings: Settings) -> None:
    report = judge(healthy(broker_latency_s=Failure("ConnectionError: refused")), settings)
    broker = next(c for c in report.checks if c.name == "broker")
    assert broker.status is Status.UNHEALTHY


@pytest.mark.parametrize(
    ("depth", "expected"),
    [(1_000, Status.HEALTHY), (1_001, Status.DEGRADED), (100_001, Status.UNHEALTHY)],
)
def test_given_queue_depth_when_judged_then_thresholds_apply(
    settings: Settings, depth: int, expected: Status
) -> None:
    m = healthy(queue_depths={"ingest": depth, "alerts": 0, "notify": 0, "maintenance": 0})
    assert status_of(m, settings, "queues") is expected


def test_given_one_fresh_stream_when_judged_then_ingest_is_healthy_and_every_lag_reported(
    settings: Settings,
) -> None:
    # Fills of a quiet wallet can be silent for hours; the feed is alive if anything flows.
    m = healthy(last_event_ms={"userFills": NOW - 3_600_000, "activeAssetCtx": NOW - 800})
    check = next(c for c in judge(m, settings).checks if c.name == "ingest")
    assert check.status is Status.HEALTHY
    assert check.data["lag_s"] == {"activeAssetCtx": 0.8, "userFills": 3600.0}


@pytest.mark.parametrize(
    ("age_s", "expected"),
    [(29, Status.HEALTHY), (31, Status.DEGRADED), (301, Status.UNHEALTHY)],
)
def test_given_feed_silent_when_judged_then_lag_thresholds_apply(
    settings: Settings, age_s: int, expected: Status
) -> None:
    m = healthy(last_event_ms={"trades": NOW - age_s * 1000})
    assert status_of(m, settings, "ingest") is expected


def test_given_no_event_ever_recorded_when_judged_then_ingest_unhealthy(
    settings: Settings,
) -> None:
    check = next(c for c in judge(healthy(last_event_ms={}), settings).checks if c.name == "ingest")
    assert check.status is Status.UNHEALTHY and "no ingester" in check.reason


def test_given_only_stale_heartbeats_when_judged_then_no_live_worker_is_unhealthy(
    settings: Settings,
) -> None:
    stale_ms = int(settings.health_worker_heartbeat_stale_s * 1000) + 1
    m = healthy(workers={"w1@h": WorkerBeat("w1@h", NOW - stale_ms, 10, MIB)})
    report = judge(m, settings)
    assert status_of(m, settings, "workers") is Status.UNHEALTHY
    assert next(c for c in report.checks if c.name == "workers").data["alive"] == 0
    # Memory is not judged from a dead worker's last word.
    assert status_of(m, settings, "memory") is Status.HEALTHY


def test_given_worker_above_memory_limit_when_judged_then_degraded_naming_it(
    settings: Settings,
) -> None:
    big = (settings.health_memory_degraded_mb + 1) * MIB
    m = healthy(
        workers={
            "w1@h": WorkerBeat("w1@h", NOW, 1, 100 * MIB),
            "w2@h": WorkerBeat("w2@h", NOW, 2, big),
        }
    )
    check = next(c for c in judge(m, settings).checks if c.name == "memory")
    assert check.status is Status.DEGRADED and "w2@h" in check.reason and "w1@h" not in check.reason


def test_given_no_beat_holds_the_lock_when_judged_then_degraded(settings: Settings) -> None:
    m = healthy(beat_holder=None)
    assert status_of(m, settings, "beat") is Status.DEGRADED
    assert judge(m, settings).status is Status.DEGRADED


def test_given_report_when_serialised_then_checks_are_keyed_by_name(settings: Settings) -> None:
    data = judge(healthy(db_latency_s=Failure("boom")), settings).as_dict()
    assert data["status"] == "unhealthy"
    assert data["checks"]["database"] == {"status": "unhealthy", "reason": "unreachable: boom"}
    assert data["checks"]["queues"]["depth"]["ingest"] == 3


def test_given_measurements_when_sampled_then_failures_and_empty_tables_are_absent_not_zero(
    settings: Settings,
) -> None:
    m = healthy(db_latency_s=Failure("down"))
    rows = samples(m, judge(m, settings), settings)
    names = {name for name, _value, _labels in rows}
    assert "hyperwatch_db_latency_seconds" not in names
    ages = {lb["table"]: v for n, v, lb in rows if n == "hyperwatch_newest_row_age_seconds"}
    assert ages == {"trade_snapshots": 1.0}  # user_fills is empty: no sample
    lags = {lb["stream"]: v for n, v, lb in rows if n == INGEST_LAG.name}
    assert lags == {"trades": 2.0, "activeAssetCtx": 0.5}
    status = {lb["check"]: v for n, v, lb in rows if n == "hyperwatch_health_status"}
    assert status["database"] == 2.0 and status["overall"] == 2.0
    exported = {d.name for d in SNAPSHOT_DEFS}
    assert INGEST_LAG.name not in exported  # the ingester exports its own gauge


def test_queue_keys_cover_every_kombu_priority_list() -> None:
    assert queue_keys("ingest") == [
        "ingest",
        "ingest\x06\x163",
        "ingest\x06\x166",
        "ingest\x06\x169",
    ]


def test_given_feeds_when_judged_then_their_leaders_and_standbys_are_shown(
    settings: Settings,
) -> None:
    from runtime.health import FeedLeadership, IngesterSeen

    a = IngesterSeen("h1-10", NOW - 300, True, True)
    b = IngesterSeen("h2-20", NOW - 200, True, False)
    gone = IngesterSeen("h3-30", NOW - 60_000, True, False)  # stopped a minute ago
    feeds = {
        "default": FeedLeadership("7:h1-10", (a, b, gone)),
        "old": FeedLeadership(None, (gone,)),  # nobody runs it any more: not a problem
    }
    check = next(c for c in judge(healthy(feeds=feeds), settings).checks if c.name == "leaders")
    assert check.status is Status.HEALTHY
    assert check.data["feeds"] == {
        "default": {"leader": "h1-10", "standbys": ["h2-20"], "ready": 2}
    }
    # a feed whose ingesters run but none leads publishes nothing
    leaderless = {"default": FeedLeadership(None, (b,))}
    assert status_of(healthy(feeds=leaderless), settings, "leaders") is Status.DEGRADED
    assert status_of(healthy(feeds=Failure("ConnectionError: x")), settings, "leaders") is (
        Status.UNHEALTHY
    )
    # one leader and no standby is healthy, and says so
    alone = {"default": FeedLeadership("7:h1-10", (a,))}
    reason = next(
        c.reason for c in judge(healthy(feeds=alone), settings).checks if c.name == "leaders"
    )
    assert "without a standby: default" in reason
