"""Reconnect policy: jittered exponential backoff inside the connects-per-minute cap."""

from __future__ import annotations

import random

from runtime.clock import ManualClock
from workers.ingester.backoff import ConnectWindow, ReconnectPolicy


def policy(clock: ManualClock, per_minute: int = 30) -> ReconnectPolicy:
    return ReconnectPolicy(0.25, 30.0, per_minute, clock, random.Random(7))


def fail(p: ReconnectPolicy) -> None:
    p.on_attempt()
    p.on_closed()


def test_first_connect_is_immediate() -> None:
    assert policy(ManualClock()).delay_s() == 0.0


def test_backoff_doubles_within_jitter_and_is_capped() -> None:
    clock = ManualClock()
    p = policy(clock, per_minute=1000)
    ceilings = []
    for _ in range(12):
        fail(p)
        ceiling = min(30.0, 0.25 * 2 ** (p.failures - 1))
        delay = p.backoff_s()
        assert ceiling / 2 <= delay <= ceiling
        ceilings.append(ceiling)
    assert ceilings[:4] == [0.25, 0.5, 1.0, 2.0] and ceilings[-1] == 30.0


def test_jitter_spreads_delays() -> None:
    p = policy(ManualClock())
    for _ in range(5):
        fail(p)
    assert len({round(p.backoff_s(), 6) for _ in range(20)}) > 10


def test_a_long_healthy_connection_resets_the_streak() -> None:
    # Given a failure streak
    clock = ManualClock()
    p = policy(clock)
    for _ in range(6):
        fail(p)
    # When a connection then lives longer than the backoff ceiling and drops
    p.on_attempt()
    p.on_connected()
    clock.advance(31.0)
    p.on_closed()
    # Then the next delay is the first step's again
    assert p.failures == 1 and p.backoff_s() <= 0.25


def test_connects_per_minute_cap_makes_the_next_attempt_wait() -> None:
    # Given 30 connects inside 15 seconds
    clock = ManualClock()
    p = policy(clock, per_minute=30)
    for _ in range(30):
        p.on_attempt()
        p.on_connected()
        clock.advance(0.5)
    # Then a 31st must wait until the first leaves the 60 s window
    assert p.limit_wait_s() == 45.0
    assert p.delay_s() >= 45.0
    clock.advance(45.0)
    assert p.limit_wait_s() == 0.0


def test_a_subscribed_delivering_connection_ends_the_streak_however_short() -> None:
    # Given a failure streak of six
    clock = ManualClock()
    p = policy(clock)
    for _ in range(6):
        fail(p)
    # When a connection is subscribed and delivering, then drops after 3 s
    p.on_attempt()
    p.on_connected()
    p.on_healthy()
    clock.advance(3.0)
    p.on_closed()
    # Then the next delay is the first step's again: within a quarter second
    assert p.failures == 1 and p.backoff_s() <= 0.25


def test_a_connection_that_never_became_healthy_keeps_the_streak_growing() -> None:
    clock = ManualClock()
    p = policy(clock)
    fail(p)
    p.on_attempt()
    p.on_connected()
    clock.advance(3.0)
    p.on_closed()
    assert p.failures == 2
    # and health does not carry over to the next attempt
    p.on_attempt()
    p.on_healthy()
    p.on_attempt()
    p.on_closed()
    assert p.failures == 3


def test_sockets_sharing_a_window_stay_inside_one_per_ip_cap_together() -> None:
    # Given three sockets' policies sharing one window of 5 connects a minute
    clock = ManualClock()
    window = ConnectWindow(5, clock)
    sockets = [ReconnectPolicy(0.25, 30.0, 5, clock, random.Random(i), window) for i in range(3)]
    # When each tries to connect twice at once
    taken = [p.try_attempt() == 0.0 for _ in range(2) for p in sockets]
    # Then five attempts got a slot and the sixth is told to wait a minute, recording nothing
    assert taken.count(True) == 5 and taken[-1] is False
    assert sockets[2].try_attempt() == 60.0
    assert all(p.limit_wait_s() == 60.0 for p in sockets)
    clock.advance(60.0)
    assert sockets[2].try_attempt() == 0.0
    # And each socket keeps its own backoff streak
    sockets[0].on_closed()
    sockets[0].try_attempt()
    sockets[0].on_closed()
    assert sockets[0].failures == 2 and sockets[1].failures == 0
