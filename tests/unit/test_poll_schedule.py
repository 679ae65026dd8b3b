"""The position poller's ranking and pacing (tasks.maintenance.poll_schedule). Pure: times
come from a ManualClock, nothing touches Redis or the database."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal as D

import pytest

from runtime.clock import ManualClock
from settings import load_settings
from tasks.maintenance.poll_schedule import (
    Cadence,
    CadenceClass,
    WalletAlert,
    WalletState,
    alert_classes,
    allowance,
    classify,
    count_classes,
    due_wallets,
    fingerprint,
    liquidation_distance_pct,
    overdue,
    polls_per_minute,
    shortfall,
    state_after_poll,
)

HOT, ACTIVE, IDLE = CadenceClass.HOT, CadenceClass.ACTIVE, CadenceClass.IDLE
CADENCE = Cadence(hot_s=10, active_s=30, idle_s=300)
TICK_S = 5.0
EARLY_MS = int(TICK_S * 500)
WINDOW_MS = 900_000
A, B, C, D_ = (f"0x{c * 40}" for c in "abcd")


@dataclass(frozen=True)
class Pos:
    coin: str
    szi: D
    liquidation_px: D | None = None
    position_value: D = D(0)


def simulate(
    classes: dict[str, CadenceClass], minutes: float, weight_per_minute: int = 1000
) -> dict[str, list[int]]:
    """Run the scheduler every TICK_S on a ManualClock as the task does (allowance from the
    time since the previous run, due wallets most urgent first); wallet → its poll times."""
    clock = ManualClock()
    states: dict[str, WalletState] = {}
    polled: dict[str, list[int]] = {w: [] for w in classes}
    previous: int | None = None
    end = clock.time_ms() + int(minutes * 60_000)
    while clock.time_ms() < end:
        now = clock.time_ms()
        elapsed = None if previous is None else (now - previous) / 1000
        previous = now
        due = due_wallets(classes, states, CADENCE, now, EARLY_MS)
        for c in due[: allowance(weight_per_minute, elapsed, TICK_S)]:
            states[c.wallet] = state_after_poll(
                states.get(c.wallet, WalletState()), c.cls, now, True, None
            )
            polled[c.wallet].append(now)
        clock.advance(TICK_S)
    return polled


def intervals(times: list[int]) -> list[float]:
    return [(b - a) / 1000 for a, b in itertools.pairwise(times)]


# --- classes ------------------------------------------------------------------------------------


def test_given_a_liquidation_alert_within_twice_its_threshold_then_the_wallet_is_hot() -> None:
    alerts = [
        WalletAlert(A, "BTC", "liquidation_distance_below", D(5)),  # 9.9 % away: near
        WalletAlert(B, "BTC", "liquidation_distance_below", D(5)),  # 10.1 %: far
        WalletAlert(C, "ETH", "liquidation_distance_below", D(5)),  # unknown distance
    ]
    distances = {(A, "BTC"): D("9.9"), (B, "BTC"): D("10.1"), (C, "ETH"): None}
    assert alert_classes(alerts, distances) == {A: HOT, B: ACTIVE, C: ACTIVE}


def test_given_any_other_alert_on_a_wallet_then_it_is_hot_whatever_its_distance() -> None:
    alerts = [
        WalletAlert(A, "BTC", "liquidation_distance_below", D(5)),
        WalletAlert(A, "ETH", "wallet_position_change", D(100_000)),
    ]
    assert alert_classes(alerts, {(A, "BTC"): D(50)}) == {A: HOT}
    # the order of the alerts does not matter: one near alert makes the wallet hot
    near_second = [
        WalletAlert(B, "ETH", "liquidation_distance_below", D(1)),
        WalletAlert(B, "BTC", "liquidation_distance_below", D(5)),
    ]
    assert alert_classes(near_second, {(B, "ETH"): D(3), (B, "BTC"): D(6)}) == {B: HOT}


def test_distance_is_the_alerts_own_measure_with_the_position_mark_as_fallback() -> None:
    short = Pos("SOL", D("-19.45"), D("199.4718"), D("3626.258"))
    # |186.44 - 199.4718| / 186.44 * 100
    assert liquidation_distance_pct(short, D("186.44")) == (
        abs(D("186.44") - D("199.4718")) / D("186.44") * 100
    )
    # no mark: value / |size| (the exchange values a position at the mark)
    assert liquidation_distance_pct(short, None) == (
        abs(D("3626.258") / D("19.45") - D("199.4718")) / (D("3626.258") / D("19.45")) * 100
    )
    assert liquidation_distance_pct(Pos("SOL", D(0), D(1), D(0)), D(1)) is None  # flat
    assert liquidation_distance_pct(Pos("SOL", D(1), None, D(5)), D(1)) is None  # no liq px
    assert liquidation_distance_pct(None, D(1)) is None


def test_given_recent_fills_or_position_changes_then_a_wallet_is_active_until_the_window_ends() -> (
    None
):
    now = ManualClock().time_ms()
    fresh, stale = now - WINDOW_MS, now - WINDOW_MS - 1
    fills = {A: fresh, B: stale}
    assert classify(A, WalletState(), {}, fills, now, WINDOW_MS) is ACTIVE
    assert classify(B, WalletState(), {}, fills, now, WINDOW_MS) is IDLE
    assert classify(C, WalletState(changed=fresh), {}, fills, now, WINDOW_MS) is ACTIVE
    assert classify(C, WalletState(changed=stale), {}, fills, now, WINDOW_MS) is IDLE
    # an alert's class wins over activity when it is hotter, never when it is colder
    assert classify(B, WalletState(), {B: HOT}, fills, now, WINDOW_MS) is HOT
    assert classify(B, WalletState(), {B: ACTIVE}, fills, now, WINDOW_MS) is ACTIVE


# --- due order ----------------------------------------------------------------------------------


def test_due_wallets_come_hot_first_then_the_longest_overdue_within_a_class() -> None:
    now = ManualClock().time_ms()
    states = {
        A: WalletState(last=now - 400_000, tried=now - 400_000),  # idle, 100 s overdue
        B: WalletState(last=now - 12_000, tried=now - 12_000),  # hot, 2 s overdue
        C: WalletState(last=now - 5_000, tried=now - 5_000),  # hot, not due for 5 s
    }
    classes = {A: IDLE, B: HOT, C: HOT, D_: IDLE}  # D_ never polled: due at once
    due = due_wallets(classes, states, CADENCE, now, EARLY_MS)
    assert [(c.wallet, c.cls) for c in due] == [(B, HOT), (D_, IDLE), (A, IDLE)]
    # half a period early: C falls due before the next run, so this run takes it
    assert C in {c.wallet for c in due_wallets(classes, states, CADENCE, now + 2_500, EARLY_MS)}


def test_a_failed_attempt_waits_its_cadence_and_keeps_the_last_success() -> None:
    now = 1_000_000
    before = WalletState(last=now - 60_000, tried=now - 60_000, cls="active", fp="x")
    after = state_after_poll(before, ACTIVE, now, ok=False, digest=None)
    assert (after.last, after.tried, after.fp) == (now - 60_000, now, "x")
    due = due_wallets({A: ACTIVE}, {A: after}, CADENCE, now + 1_000, EARLY_MS)
    assert due == []  # not hammered every run


def test_a_change_of_positions_is_noted_only_against_a_known_previous_digest() -> None:
    one = fingerprint([Pos("BTC", D("1.50")), Pos("ETH", D(0))])
    assert one == fingerprint([Pos("BTC", D("1.5"))])  # flats and trailing zeros ignored
    first = state_after_poll(WalletState(), IDLE, 1_000, ok=True, digest=one)
    assert first.changed is None  # nothing to compare with
    same = state_after_poll(first, IDLE, 2_000, ok=True, digest=one)
    assert same.changed is None
    moved = state_after_poll(same, IDLE, 3_000, ok=True, digest=fingerprint([Pos("BTC", D(2))]))
    assert moved.changed == 3_000 and moved.last == 3_000 and moved.cls == "idle"
    unknown = state_after_poll(moved, ACTIVE, 4_000, ok=True, digest=None)  # incomplete state
    assert unknown.fp == moved.fp and unknown.changed == 3_000


def test_stored_states_survive_a_round_trip_and_garbage_reads_as_never_polled() -> None:
    state = WalletState(1, 2, "hot", 3, "ab")
    assert WalletState.from_json(state.to_json()) == state
    for raw in (None, b"not json", b"[1, 2]", b'{"last": "yesterday", "tried": true}'):
        assert WalletState.from_json(raw) == WalletState()


# --- pacing -------------------------------------------------------------------------------------


def test_allowance_is_the_budget_share_accrued_since_the_previous_run() -> None:
    assert polls_per_minute(1000) == 400  # 80 % of the weight, 2 a call
    assert allowance(1000, 5.0, TICK_S) == 33
    assert allowance(1000, None, TICK_S) == 33  # first run: one period
    assert allowance(1000, 60.0, TICK_S) == 100  # a late run catches up 3 periods at most
    assert allowance(1000, 0.01, TICK_S) == 1
    assert allowance(1000, -3.0, TICK_S) == 33  # a clock step back


def test_given_more_wallets_than_the_budget_covers_then_idle_stretches_and_hot_keeps_its_cadence() -> (
    None
):
    # Given 20 hot, 100 active and 5,000 idle wallets: 120 + 200 + 1,000 polls a minute
    # wanted, 400 allowed
    classes = {f"h{i}": HOT for i in range(20)}
    classes |= {f"a{i}": ACTIVE for i in range(100)}
    classes |= {f"i{i}": IDLE for i in range(5000)}
    # When the scheduler runs for 20 minutes
    polled = simulate(classes, minutes=20)
    total = sum(len(t) for t in polled.values())
    # Then the budget share was never exceeded (400 a minute, within one run's rounding)
    assert total <= 400 * 20 + 33
    # And hot wallets kept 10 s and active ones 30 s from the first run on
    hot = [i for w, t in polled.items() if w[0] == "h" for i in intervals(t)]
    active = [i for w, t in polled.items() if w[0] == "a" for i in intervals(t)]
    assert len(hot) == 20 * 119 and max(hot) <= 10.0
    assert len(active) == 100 * 39 and max(active) <= 30.0
    # While idle wallets stretched to what is left: (400 - 320) a minute for 5,000 wallets
    idle_polled = sum(len(t) for w, t in polled.items() if w[0] == "i")
    assert 80 * 20 * 0.5 <= idle_polled <= 80 * 20 + 400


def test_given_a_budget_that_covers_everyone_then_every_class_keeps_its_cadence() -> None:
    classes = {A: HOT, B: ACTIVE, C: IDLE}
    polled = simulate(classes, minutes=12)
    assert max(intervals(polled[A])) <= 10.0 and min(intervals(polled[A])) >= 5.0
    assert max(intervals(polled[B])) <= 30.0
    assert max(intervals(polled[C])) <= 300.0 and len(polled[C]) >= 3


def test_the_shortfall_names_the_idle_cadence_the_budget_can_keep() -> None:
    counts = {HOT: 20, ACTIVE: 100, IDLE: 5000}
    short = shortfall(counts, CADENCE, 1000)
    assert short is not None
    assert (short.needed_per_minute, short.capacity_per_minute) == (1320, 400)
    assert short.idle_every_s == pytest.approx(5000 * 60 / 80)
    text = short.message(counts, CADENCE)
    assert "5120 polled wallets" in text and "every 3750 s instead of 300 s" in text
    assert shortfall({HOT: 10, ACTIVE: 10, IDLE: 100}, CADENCE, 1000) is None
    starved = shortfall({HOT: 100}, CADENCE, 1000)
    assert starved is not None and "even hot wallets" in starved.message({HOT: 100}, CADENCE)
    none_left = shortfall({ACTIVE: 200, IDLE: 10}, CADENCE, 1000)
    assert none_left is not None and "not polled at all" in none_left.message({}, CADENCE)


def test_overdue_counts_what_the_run_left_past_its_due_time() -> None:
    now = 1_000_000
    states = {A: WalletState(last=now - 20_000), B: WalletState(last=now - 8_000)}
    classes = {A: HOT, B: HOT, C: IDLE, D_: IDLE}
    due = due_wallets(classes, states, CADENCE, now, EARLY_MS)
    # B is due early (within half a period), not overdue; C polled; A and D_ left
    assert overdue(due, [C], now) == {"hot": 1, "active": 0, "idle": 1}
    assert count_classes(classes.values()) == {HOT: 2, ACTIVE: 0, IDLE: 2}


def test_the_cadence_comes_from_the_settings_and_the_run_period_is_half_the_hot_one() -> None:
    settings = load_settings(
        position_poll_hot_s=8, position_poll_interval_s=20, position_poll_idle_s=600
    )
    cadence = Cadence.from_settings(settings)
    assert (cadence.seconds(HOT), cadence.seconds(ACTIVE), cadence.seconds(IDLE)) == (8, 20, 600)
    assert settings.position_poll_tick_s == 4
    assert load_settings(position_poll_hot_s=1).position_poll_tick_s == 1.0
