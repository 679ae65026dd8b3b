"""The shared REST budget on a real Redis: one window for every process, with priorities."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from runtime.clock import ManualClock
from runtime.rest_budget import Priority, RestBudget, items_weight

pytestmark = pytest.mark.integration


@pytest.fixture()
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    c.flushdb()
    yield c
    c.close()


def test_given_two_processes_when_taking_then_they_share_one_window(client: redis.Redis) -> None:
    clock = ManualClock(wall_ms=600_000)
    a, b = RestBudget(client, 100, clock), RestBudget(client, 100, clock)
    assert a.take(40, Priority.HEAL) and b.take(40, Priority.HEAL)
    assert not a.take(40, Priority.HEAL)  # 120 > 100: refused, nothing taken
    assert client.get("hw:rest:weight:10") == b"80"
    clock.advance(60)  # a new minute, a new window
    assert b.take(100, Priority.HEAL)


def test_lower_priorities_leave_room_for_healing(client: redis.Redis) -> None:
    budget = RestBudget(client, 100, ManualClock(wall_ms=0))
    assert budget.take(60, Priority.ROUTINE) and not budget.take(1, Priority.ROUTINE)
    assert budget.take(20, Priority.POSITIONS) and not budget.take(1, Priority.POSITIONS)
    assert budget.take(20, Priority.HEAL) and not budget.take(1, Priority.HEAL)


def test_charged_weight_is_never_refused_and_counts_against_everyone(client: redis.Redis) -> None:
    budget = RestBudget(client, 100, ManualClock(wall_ms=0))
    budget.charge(items_weight(2000))  # a 2,000-fill answer: 100 extra
    assert not budget.take(1, Priority.HEAL)
    assert int(client.get("hw:rest:weight:0") or 0) == 100
    assert client.ttl("hw:rest:weight:0") > 0
