"""The backtest's in-memory grouping (``GroupModel``) decides exactly as the Lua scripts in
Redis (``Gate``): the same random arrivals, windows and budgets through both, decision for
decision."""

from __future__ import annotations

import random

import pytest
import redis

from domain.notify.budgets import BUDGETS
from domain.notify.grouping import Gate, GroupModel, Windows

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("seed", range(6))
def test_the_model_and_the_scripts_agree(redis_client: redis.Redis, seed: int) -> None:
    rng = random.Random(seed)
    windows = Windows(
        group_wait_ms=rng.choice([0, 0, 2_000]),
        group_interval_ms=rng.choice([0, 5_000, 30_000]),
        repeat_interval_ms=rng.choice([0, 60_000]),
        budget=rng.choice([None, *BUDGETS.values()]),
    )
    gate, model = Gate(redis_client), GroupModel(windows)
    channel = 1_000 + seed
    now = 1_760_000_000_000
    for notification_id in range(1, 200):
        now += rng.choice([0, 50, 300, 1_000, 4_000, 20_000])
        alert_id = rng.randint(1, 8)
        # Digests due by now run first, as their scheduled tasks would.
        while model.flush_at is not None and model.flush_at <= now:
            at = model.flush_at
            expected = model.flush(at)
            assert gate.flush(channel, windows, at) == expected
            if expected.go:
                alerts = [a for a in expected.members]  # any ids: both record the same
                gate.settled(channel, expected.members, alerts, at)
                model.settled(expected.members, alerts, at)
        expected_admission = model.admit(notification_id, alert_id, now)
        assert gate.admit(channel, windows, notification_id, alert_id, now) == expected_admission
